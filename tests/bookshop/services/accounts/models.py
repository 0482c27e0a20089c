import enum
import uuid
from datetime import datetime

from sqlalchemy import ARRAY, DateTime, Enum, ForeignKey, String, Text, func
from sqlalchemy.dialects.postgresql import DOMAIN, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

EmailAddress = DOMAIN("email_address", String(320), check=r"VALUE ~ '^[^@\s]+@[^@\s]+$'")


class AccountStatus(enum.Enum):
    active = "active"
    locked = "locked"


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    email: Mapped[str] = mapped_column(EmailAddress, unique=True)
    status: Mapped[AccountStatus] = mapped_column(Enum(AccountStatus, name="account_status"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AccountSettings(Base):
    __tablename__ = "account_settings"
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    prefs: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class Session(Base):
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
