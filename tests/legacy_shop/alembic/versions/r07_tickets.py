"""support tickets and their messages

Revision ID: r07_tickets
Revises: r06_titles
Create Date: 2024-04-03 17:45:09.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r07_tickets'
down_revision = 'r06_titles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("last_message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_tickets_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
    )
    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_ticket_messages_ticket_id_tickets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_messages"),
    )
    op.create_foreign_key(
        "fk_tickets_last_message_id_ticket_messages", "tickets", "ticket_messages",
        ["last_message_id"], ["id"],
    )


def downgrade() -> None:
    op.drop_constraint("fk_tickets_last_message_id_ticket_messages", "tickets")
    op.drop_table("ticket_messages")
    op.drop_table("tickets")
