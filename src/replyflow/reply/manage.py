"""What the ``replyflow users`` and ``replyflow corrections`` commands do, on the configured database.

Each function opens the ticket database of the settings (creating missing tables, so the first
admin can be made before the service ever ran), does one thing, and closes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from replyflow.reply.accounts import Account
from replyflow.reply.store import Store
from replyflow.settings import Settings


@contextmanager
def opened(settings: Settings) -> Iterator[Store]:
    store = Store.from_settings(settings)
    try:
        store.create_all()
        yield store
    finally:
        store.dispose()


def add_user(settings: Settings, username: str, password: str, role: str) -> Account:
    with opened(settings) as store:
        return store.accounts.add(username, password, role)


def list_users(settings: Settings) -> list[Account]:
    with opened(settings) as store:
        return store.accounts.list()


def set_user_active(settings: Settings, username: str, active: bool) -> Account:
    """Enable or disable; disabling ends the user's open sessions at their next request."""
    with opened(settings) as store:
        return store.accounts.set_active(username, active)


def reset_password(settings: Settings, username: str, password: str) -> Account:
    with opened(settings) as store:
        return store.accounts.reset_password(username, password)


def export_corrections(settings: Settings, path: Path) -> int:
    """The latest correction per tweet as CSV (``replyflow train`` reads it as extra training rows)."""
    with opened(settings) as store:
        return store.corrections.export_csv(path)
