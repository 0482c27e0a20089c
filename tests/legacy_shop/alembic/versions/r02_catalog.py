"""the catalog schema: publishers, authors, books

Revision ID: r02_catalog
Revises: r01_accounts
Create Date: 2024-01-15 16:03:11.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r02_catalog'
down_revision = 'r01_accounts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA catalog")
    op.create_table(
        "publishers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_publishers"),
        sa.UniqueConstraint("name", name="uq_publishers_name"),
        schema="catalog",
    )
    op.create_table(
        "authors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_authors"),
        schema="catalog",
    )
    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("publisher_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["publisher_id"], ["catalog.publishers.id"], name="fk_books_publisher_id_publishers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_books"),
        schema="catalog",
    )


def downgrade() -> None:
    op.drop_table("books", schema="catalog")
    op.drop_table("authors", schema="catalog")
    op.drop_table("publishers", schema="catalog")
    op.execute("DROP SCHEMA catalog")
