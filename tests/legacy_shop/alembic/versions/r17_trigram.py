"""find books by a part of their title

Revision ID: r17_trigram
Revises: r16_audit
Create Date: 2024-12-09 09:30:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r17_trigram'
down_revision = 'r16_audit'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_books_title_trgm", "books", ["title"], schema="catalog", postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_books_title_trgm", table_name="books", schema="catalog")
    op.execute("DROP EXTENSION pg_trgm")
