import enum
import uuid
from decimal import Decimal

from sqlalchemy import Computed, Enum, ForeignKey, Integer, Numeric
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class OrderStatus(enum.Enum):
    open = "open"
    paid = "paid"
    shipped = "shipped"


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, name="order_status"), server_default="open"
    )
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    total_with_tax: Mapped[Decimal] = mapped_column(
        Numeric(12, 2), Computed("total * 1.2", persisted=True)
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    book_id: Mapped[int] = mapped_column(ForeignKey("catalog.books.id"))
    quantity: Mapped[int] = mapped_column(Integer, server_default="1")


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
