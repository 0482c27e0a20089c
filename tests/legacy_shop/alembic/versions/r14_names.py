"""currency names as ISO 4217 writes them, and the yen

Revision ID: r14_names
Revises: r13_tax
Create Date: 2024-09-02 10:45:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r14_names'
down_revision = 'r13_tax'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # data migration on reference rows
    op.execute("UPDATE currencies SET name = 'US Dollar' WHERE code = 'USD'")
    op.execute("INSERT INTO currencies (code, name, minor_units) VALUES ('JPY', 'Yen', 0)")


def downgrade() -> None:
    op.execute("DELETE FROM currencies WHERE code = 'JPY'")
    op.execute("UPDATE currencies SET name = 'US dollar' WHERE code = 'USD'")
