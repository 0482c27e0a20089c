"""a view of books with their publisher

Revision ID: r18_book_list
Revises: r17_trigram
Create Date: 2025-01-20 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r18_book_list'
down_revision = 'r17_trigram'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE VIEW catalog.book_list AS
        SELECT b.id, b.title, b.price, p.name AS publisher
        FROM catalog.books b LEFT JOIN catalog.publishers p ON p.id = b.publisher_id
        """
    )
    op.execute("COMMENT ON COLUMN catalog.books.summary IS 'the back cover text'")


def downgrade() -> None:
    op.execute("COMMENT ON COLUMN catalog.books.summary IS NULL")
    op.execute("DROP VIEW catalog.book_list")
