from decimal import Decimal

from sqlalchemy import Computed, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

SCHEMA = {"schema": "catalog"}


class Publisher(Base):
    __tablename__ = "publishers"
    __table_args__ = SCHEMA
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Author(Base):
    __tablename__ = "authors"
    __table_args__ = SCHEMA
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = SCHEMA
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("catalog.categories.id"))
    name: Mapped[str] = mapped_column(String(100))


class Book(Base):
    __tablename__ = "books"
    __table_args__ = (Index("ix_books_search", "search", postgresql_using="gin"), SCHEMA)
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    publisher_id: Mapped[int | None] = mapped_column(ForeignKey("catalog.publishers.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("catalog.categories.id"))
    search = mapped_column(
        TSVECTOR,
        Computed("to_tsvector('english', title || ' ' || coalesce(summary, ''))", persisted=True),
    )


class BookAuthor(Base):
    __tablename__ = "book_authors"
    __table_args__ = SCHEMA
    book_id: Mapped[int] = mapped_column(ForeignKey("catalog.books.id"), primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("catalog.authors.id"), primary_key=True)
