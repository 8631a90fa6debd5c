"""Accounts: users and their preferences, invites, personal API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from set2tracks.database import TimestampMixin, utcnow
from set2tracks.extensions import db

if TYPE_CHECKING:
    from set2tracks.sets.models import BrowsingHistory

THEMES = ("system", "light", "dark")


class User(UserMixin, TimestampMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(80))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_premium: Mapped[bool] = mapped_column(Boolean, default=False)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Rotated on password change, reset and disable: it is what Flask-Login stores in the
    # session and remember cookie, so rotating it logs every other session out.
    session_token: Mapped[str] = mapped_column(String(64), unique=True)
    # Part of every "keep me signed in" cookie; cleared when a remembered browser signs out,
    # so a copy of that cookie dies with it while other signed-in sessions carry on.
    remember_token: Mapped[str | None] = mapped_column(String(64))
    # None while a self-service registration waits for its owner to open the emailed link:
    # until then nobody can sign in to it, so registering tells nothing about an address.
    email_confirmed_at: Mapped[datetime | None]
    # When the registration's confirmation link was last emailed (a re-send waits 10 minutes).
    confirmation_sent_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]

    preferences: Mapped[UserPreferences] = relationship(
        back_populates="user", cascade="all, delete-orphan", uselist=False
    )
    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    history: Mapped[list[BrowsingHistory]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:
        return not self.is_disabled

    @property
    def is_confirmed(self) -> bool:
        return self.email_confirmed_at is not None

    def __repr__(self) -> str:
        return f"<User {self.id}>"


# Case-insensitive uniqueness: "Ada@Example.com" and "ada@example.com" are one account.
Index("uq_users_email_lower", func.lower(User.email), unique=True)


class UserPreferences(db.Model):  # type: ignore[name-defined]
    __tablename__ = "user_preferences"
    __table_args__ = (CheckConstraint(f"theme IN {THEMES!r}", name="theme_allowed"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    email_when_ready: Mapped[bool] = mapped_column(Boolean, default=True)
    play_sound_when_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    theme: Mapped[str] = mapped_column(String(16), default="system")

    user: Mapped[User] = relationship(back_populates="preferences")


class Invite(db.Model):  # type: ignore[name-defined]
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    revoked_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    used_by: Mapped[User | None] = relationship(foreign_keys=[used_by_id])


class ApiToken(db.Model):  # type: ignore[name-defined]
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, shown in lists so people can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")
