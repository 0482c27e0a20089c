"""totals with tax, ticket labels

Revision ID: r13_tax
Revises: r12_search
Create Date: 2024-08-19 13:13:13.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r13_tax'
down_revision = 'r12_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column(
            "total_with_tax", sa.Numeric(12, 2), sa.Computed("total * 1.2", persisted=True),
            nullable=True,
        ),
    )
    op.add_column(
        "tickets",
        sa.Column("labels", postgresql.ARRAY(sa.String(40)), server_default="{}", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("tickets", "labels")
    op.drop_column("orders", "total_with_tax")
