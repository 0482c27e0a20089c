"""an audit trail of order status changes

Revision ID: r16_audit
Revises: r15_lower_email
Create Date: 2024-11-04 16:20:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r16_audit'
down_revision = 'r15_lower_email'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA audit")
    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_events"),
        schema="audit",
        comment="every status an order went through",
    )
    op.execute(
        """
        CREATE FUNCTION audit.log_order_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO audit.order_events (order_id, status) VALUES (NEW.id, NEW.status::text);
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER orders_audit AFTER INSERT OR UPDATE OF status ON orders "
        "FOR EACH ROW EXECUTE FUNCTION audit.log_order_event()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER orders_audit ON orders")
    op.execute("DROP FUNCTION audit.log_order_event()")
    op.drop_table("order_events", schema="audit")
    op.execute("DROP SCHEMA audit")
