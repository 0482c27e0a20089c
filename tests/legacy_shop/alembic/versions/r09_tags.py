"""account tags (backfilled), emails as a checked domain

Revision ID: r09_tags
Revises: r08_merge
Create Date: 2024-05-13 12:30:44.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r09_tags'
down_revision = 'r08_merge'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=True))
    # data migration: every existing account gets its tags from its status
    op.execute("UPDATE accounts SET tags = ARRAY[status::text]")
    op.alter_column("accounts", "tags", nullable=False, server_default="{}")
    op.execute(r"CREATE DOMAIN email_address AS VARCHAR(320) CHECK (VALUE ~ '^[^@\s]+@[^@\s]+$')")
    op.execute("ALTER TABLE accounts ALTER COLUMN email TYPE email_address")


def downgrade() -> None:
    op.execute("ALTER TABLE accounts ALTER COLUMN email TYPE VARCHAR(320)")
    op.execute("DROP DOMAIN email_address")
    op.drop_column("accounts", "tags")
