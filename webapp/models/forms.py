"""Forms: a name, an owner and the ingest token that guards the webhook URL."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.crypto import token_digest, token_matches
from webapp.extensions import db
from webapp.models.base import UTCDateTime, new_uid, secret_box, utcnow
from webapp.models.users import User


class Form(db.Model):
    """A form whose submissions arrive at its webhook URL.

    The ingest token is stored twice, neither in clear: a SHA-256 digest to
    check senders in constant time, and an encrypted copy so staff can see it.
    """

    __tablename__ = "forms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_uid("a"))
    name: Mapped[str] = mapped_column(String(255))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    ingest_token_hash: Mapped[str] = mapped_column(String(64))
    ingest_token_encrypted: Mapped[str] = mapped_column(String(512))
    date_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    date_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship()
    hooks = relationship(
        "Hook", back_populates="form", cascade="all, delete-orphan", passive_deletes=True
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if not self.ingest_token_hash:
            self.regenerate_ingest_token()

    def regenerate_ingest_token(self) -> str:
        """Replace the ingest token; the old one stops working at once."""
        token = secrets.token_urlsafe(24)
        self.ingest_token_hash = token_digest(token)
        self.ingest_token_encrypted = secret_box().encrypt(token)
        return token

    @property
    def ingest_token(self) -> str:
        return secret_box().decrypt(self.ingest_token_encrypted)

    def check_ingest_token(self, candidate: str) -> bool:
        return token_matches(candidate, self.ingest_token_hash)

    def __repr__(self) -> str:
        return f"<Form {self.uid} {self.name!r}>"
