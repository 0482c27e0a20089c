"""merge categories and tickets

Revision ID: r08_merge
Revises: r07_categories, r07_tickets
Create Date: 2024-04-05 09:12:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r08_merge'
down_revision = ('r07_categories', 'r07_tickets')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
