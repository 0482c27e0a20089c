"""book search, and books by several authors

Revision ID: r12_search
Revises: r11_payments
Create Date: 2024-07-08 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r12_search'
down_revision = 'r11_payments'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "books",
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english', title || ' ' || coalesce(summary, ''))", persisted=True),
            nullable=True,
        ),
        schema="catalog",
    )
    op.create_index("ix_books_search", "books", ["search"], postgresql_using="gin", schema="catalog")
    op.create_table(
        "book_authors",
        sa.Column("book_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["book_id"], ["catalog.books.id"], name="fk_book_authors_book_id_books"),
        sa.ForeignKeyConstraint(
            ["author_id"], ["catalog.authors.id"], name="fk_book_authors_author_id_authors"
        ),
        sa.PrimaryKeyConstraint("book_id", "author_id", name="pk_book_authors"),
        schema="catalog",
    )


def downgrade() -> None:
    op.drop_table("book_authors", schema="catalog")
    op.drop_index("ix_books_search", table_name="books", schema="catalog")
    op.drop_column("books", "search", schema="catalog")
