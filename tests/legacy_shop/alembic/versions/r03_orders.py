"""orders and their lines

Revision ID: r03_orders
Revises: r02_catalog
Create Date: 2024-02-02 09:41:57.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r03_orders'
down_revision = 'r02_catalog'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TYPE order_status AS ENUM ('open', 'paid')")
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM("open", "paid", name="order_status", create_type=False),
            server_default="open",
            nullable=False,
        ),
        sa.Column("total", sa.Numeric(12, 2), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_orders_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
    )
    op.create_index("ix_orders_account_id", "orders", ["account_id"])
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("book_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_order_lines_order_id_orders", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["book_id"], ["catalog.books.id"], name="fk_order_lines_book_id_books"),
        sa.PrimaryKeyConstraint("id", name="pk_order_lines"),
    )


def downgrade() -> None:
    op.drop_table("order_lines")
    op.drop_index("ix_orders_account_id", table_name="orders")
    op.drop_table("orders")
    op.execute("DROP TYPE order_status")
