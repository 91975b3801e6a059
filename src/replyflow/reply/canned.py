"""Reply templates in the database: the bodies of automatic replies and agents' canned responses.

Seeded once, when the tables are created, from :func:`replyflow.reply.render.template_slots` (the
texts replyflow shipped with); a marker row in ``replyflow_meta`` says so, so a template an admin
deleted or rewrote is never put back by a restart.  A template with a ``slot`` is the body of
one kind of automatic reply: admins may rewrite it but not delete it.  Templates without a slot
are canned responses only (agents pick one on the ticket page and may edit it before sending).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from replyflow.core.times import as_utc, utcnow
from replyflow.reply.db import Database
from replyflow.reply.render import template_slots
from replyflow.reply.worktables import Meta, ReplyTemplate

#: Longest body: the handle, ticket ID and signature need the rest of the 280 characters.
MAX_BODY_CHARS = 200
SEEDED_KEY = "reply_templates_seeded"


class TemplateError(ValueError):
    """A template that cannot be stored (empty, too long, duplicate name, a slot template deleted)."""


@dataclass(frozen=True)
class Template:
    id: int
    name: str
    slot: str | None
    body: str
    updated_by: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, row: ReplyTemplate) -> Template:
        return cls(row.id, row.name, row.slot, row.body, row.updated_by, as_utc(row.updated_at))


def _checked(name: str, body: str) -> tuple[str, str]:
    name, body = " ".join(name.split()), " ".join(body.split())
    if not name or len(name) > 80:
        raise TemplateError("the name must have 1 to 80 characters")
    if not body or len(body) > MAX_BODY_CHARS:
        raise TemplateError(f"the text must have 1 to {MAX_BODY_CHARS} characters (the handle, ticket ID and "
                            "signature need the rest of the post)")
    if "\x00" in name + body:
        raise TemplateError("NUL characters are not allowed")
    return name, body


class ReplyTemplates:
    """The ``reply_templates`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def seed(self) -> int:
        """Insert the shipped templates once per database; returns how many were inserted.

        Two instances starting together: the marker's primary key lets one of them win."""
        try:
            with self.db.write() as session:
                if session.get(Meta, SEEDED_KEY) is not None:
                    return 0
                existing = set(session.scalars(select(ReplyTemplate.slot).where(ReplyTemplate.slot.is_not(None))).all())
                rows = [ReplyTemplate(name=name, slot=slot, body=body, updated_at=utcnow())
                        for slot, (name, body) in template_slots().items() if slot not in existing]
                session.add_all(rows)
                session.add(Meta(key=SEEDED_KEY, value=utcnow().isoformat()))
                return len(rows)
        except IntegrityError:
            return 0

    def list(self) -> list[Template]:
        """Slot templates first (in the order of the slots), then canned responses by name."""
        order = {slot: i for i, slot in enumerate(template_slots())}
        with self.db.read() as session:
            rows = [Template.of(r) for r in session.scalars(select(ReplyTemplate)).all()]
        return sorted(rows, key=lambda t: (t.slot is None, order.get(t.slot or "", 0), t.name.lower()))

    def get(self, template_id: int) -> Template | None:
        with self.db.read() as session:
            row = session.get(ReplyTemplate, template_id)
            return Template.of(row) if row else None

    def save(self, template_id: int | None, name: str, body: str, actor: str) -> Template:
        """Create (``template_id`` None) or rewrite a template."""
        name, body = _checked(name, body)
        try:
            with self.db.write() as session:
                if template_id is None:
                    row = ReplyTemplate(name=name, body=body)
                    session.add(row)
                else:
                    found = session.get(ReplyTemplate, template_id)
                    if found is None:
                        raise TemplateError(f"no template {template_id}")
                    row = found
                    row.name, row.body = name, body
                row.updated_by, row.updated_at = actor, utcnow()
                session.flush()
                return Template.of(row)
        except IntegrityError:
            raise TemplateError(f"a template named {name!r} exists already") from None

    def delete(self, template_id: int) -> None:
        with self.db.write() as session:
            row = session.get(ReplyTemplate, template_id)
            if row is None:
                raise TemplateError(f"no template {template_id}")
            if row.slot is not None:
                raise TemplateError("this template is the text of an automatic reply: edit it, it cannot be deleted")
            session.delete(row)
