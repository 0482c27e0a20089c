"""orders can be shipped

Revision ID: r10_shipped
Revises: r09_tags
Create Date: 2024-06-01 15:02:18.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r10_shipped'
down_revision = 'r09_tags'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TYPE order_status ADD VALUE 'shipped'")


def downgrade() -> None:
    pass  # PostgreSQL cannot drop an enum value
