"""Workspace accounts: agents and admins, their password hashes, lockout and session versions.

Why each piece:

* Passwords are hashed with Argon2id (argon2-cffi's defaults); a hash made with older
  parameters is upgraded at the next successful login.
* An unknown user name costs the same hash verification as a wrong password, so response
  times do not tell which names exist.
* Lockout lives in the database, not in a process: after ``lockout_failures`` wrong passwords in
  a row an account refuses every login (even the right password) for ``lockout_minutes``, on
  every instance of the service.  The per-address rate limit is the web layer's (Flask-Limiter).
* ``session_version`` is stored in each login session and checked on every request; disabling
  a user, resetting the password or "log out everywhere" bumps it, which ends every session
  of that user at once (the cookie itself cannot be recalled).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from replyflow.core.times import as_utc, utcnow
from replyflow.reply.db import Database
from replyflow.reply.worktables import ROLES, User

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """A request about accounts that cannot be done (unknown or duplicate user, weak password)."""


@dataclass(frozen=True)
class Account:
    """What the workspace knows about a signed-in (or listed) user; never the password hash."""

    id: int
    username: str
    role: str
    active: bool
    session_version: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, user: User) -> Account:
        return cls(user.id, user.username, user.role, user.active, user.session_version, as_utc(user.locked_until),
                   as_utc(user.last_login_at), as_utc(user.created_at))


@dataclass(frozen=True)
class LoginResult:
    """``outcome``: ``ok``, ``invalid`` (unknown user or wrong password), ``locked`` or ``disabled``."""

    outcome: str
    account: Account | None = None


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise AccountError(f"invalid user name {username!r}: 2-64 characters a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    if "\x00" in password:
        raise AccountError("password must not contain NUL characters")
    return password


class Accounts:
    """The ``users`` table: add, list, disable, reset passwords, authenticate, check sessions."""

    def __init__(self, db: Database, lockout_failures: int = 5, lockout_minutes: float = 15.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.lockout_failures = max(1, lockout_failures)
        self.lockout = timedelta(minutes=lockout_minutes)
        self.clock = clock
        self.hasher = PasswordHasher()
        self._dummy_hash = self.hasher.hash("not-a-real-password")

    # --- administration (CLI and admin pages) ----------------------------------------------
    def add(self, username: str, password: str, role: str = "agent") -> Account:
        name = check_username(username)
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        password_hash = self.hasher.hash(check_password(password))
        try:
            with self.db.write() as session:
                user = User(username=name, password_hash=password_hash, role=role, active=True, session_version=1,
                            failed_logins=0, created_at=self.clock())
                session.add(user)
                session.flush()
                return Account.of(user)
        except IntegrityError:
            raise AccountError(f"user {name} already exists") from None

    def list(self) -> list[Account]:
        with self.db.read() as session:
            return [Account.of(u) for u in session.scalars(select(User).order_by(User.username)).all()]

    def get(self, username: str) -> Account | None:
        with self.db.read() as session:
            user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
            return Account.of(user) if user else None

    def set_active(self, username: str, active: bool) -> Account:
        """Enable or disable a user; disabling ends the user's sessions at once."""
        return self._change(username, active=active, **({} if active else {"bump": True}))

    def reset_password(self, username: str, password: str) -> Account:
        """New password, lockout cleared, every session of the user ended."""
        return self._change(username, password_hash=self.hasher.hash(check_password(password)), failed_logins=0,
                            locked_until=None, bump=True)

    def end_sessions(self, user_id: int) -> None:
        """"Log out everywhere": every session of this user stops working on its next request."""
        with self.db.write() as session:
            session.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))

    def _change(self, username: str, bump: bool = False, **values: object) -> Account:
        with self.db.write() as session:
            user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
            if user is None:
                raise AccountError(f"no user {username}")
            for name, value in values.items():
                setattr(user, name, value)
            if bump:
                user.session_version += 1
            session.flush()
            return Account.of(user)

    # --- sign-in ---------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> LoginResult:
        """Check a login; counts failures and locks the account after too many in a row."""
        now = self.clock()
        with self.db.read() as session:
            user = session.scalars(select(User).where(User.username == username.strip().lower()[:64])).first()
            stored = (user.id, user.password_hash, user.active, as_utc(user.locked_until)) if user else None
        if stored is None:
            self._verify(self._dummy_hash, password)  # same cost as a wrong password
            return LoginResult("invalid")
        user_id, password_hash, active, locked_until = stored
        if locked_until is not None and locked_until > now:
            return LoginResult("locked")
        if not self._verify(password_hash, password):
            self._count_failure(user_id, now)
            return LoginResult("invalid")
        if not active:
            return LoginResult("disabled")
        new_hash = self.hasher.hash(password) if self.hasher.check_needs_rehash(password_hash) else None
        with self.db.write() as session:
            user = session.get(User, user_id)
            assert user is not None
            user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
            if new_hash:
                user.password_hash = new_hash
            session.flush()
            return LoginResult("ok", Account.of(user))

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _count_failure(self, user_id: int, now: datetime) -> None:
        """One more failure, counted in the database (atomic across instances); lock at the limit."""
        with self.db.write() as session:
            user = session.scalars(select(User).where(User.id == user_id).with_for_update()).first()
            if user is None:
                return
            user.failed_logins += 1
            if user.failed_logins >= self.lockout_failures:
                user.failed_logins, user.locked_until = 0, now + self.lockout

    def session_user(self, user_id: object, version: object) -> Account | None:
        """The account of a login session if it is still valid: the user exists, is active and
        the session's version is the user's current one."""
        if not isinstance(user_id, int) or not isinstance(version, int):
            return None
        with self.db.read() as session:
            user = session.get(User, user_id)
            if user is None or not user.active or user.session_version != version:
                return None
            return Account.of(user)

    def agents(self) -> list[Account]:
        """Active users tickets can be assigned to."""
        return [a for a in self.list() if a.active]
