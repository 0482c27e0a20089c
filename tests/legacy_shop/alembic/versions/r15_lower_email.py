"""emails are stored in lower case

Revision ID: r15_lower_email
Revises: r14_names
Create Date: 2024-10-14 11:11:11.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r15_lower_email'
down_revision = 'r14_names'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.email := lower(NEW.email);
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER accounts_lower_email BEFORE INSERT OR UPDATE OF email ON accounts "
        "FOR EACH ROW EXECUTE FUNCTION lower_email()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER accounts_lower_email ON accounts")
    op.execute("DROP FUNCTION lower_email()")
