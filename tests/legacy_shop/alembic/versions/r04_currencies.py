"""currencies, with the ones we sell in

Revision ID: r04_currencies
Revises: r03_orders
Create Date: 2024-02-20 11:20:05.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r04_currencies'
down_revision = 'r03_orders'
branch_labels = None
depends_on = None


def upgrade() -> None:
    currencies = op.create_table(
        "currencies",
        sa.Column("code", sa.CHAR(3), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("minor_units", sa.SmallInteger(), server_default="2", nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_currencies"),
    )
    op.bulk_insert(
        currencies,
        [
            {"code": "EUR", "name": "Euro", "minor_units": 2},
            {"code": "USD", "name": "US dollar", "minor_units": 2},
            {"code": "GBP", "name": "Pound sterling", "minor_units": 2},
        ],
    )


def downgrade() -> None:
    op.drop_table("currencies")
