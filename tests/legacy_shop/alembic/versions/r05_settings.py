"""rename customer_settings to account_settings

Revision ID: r05_settings
Revises: r04_currencies
Create Date: 2024-03-04 14:55:30.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r05_settings'
down_revision = 'r04_currencies'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.rename_table("customer_settings", "account_settings")
    op.alter_column("account_settings", "settings", new_column_name="prefs")
    op.execute("ALTER TABLE account_settings RENAME CONSTRAINT pk_customer_settings TO pk_account_settings")
    op.execute(
        "ALTER TABLE account_settings RENAME CONSTRAINT fk_customer_settings_account_id_accounts "
        "TO fk_account_settings_account_id_accounts"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE account_settings RENAME CONSTRAINT fk_account_settings_account_id_accounts "
        "TO fk_customer_settings_account_id_accounts"
    )
    op.execute("ALTER TABLE account_settings RENAME CONSTRAINT pk_account_settings TO pk_customer_settings")
    op.alter_column("account_settings", "prefs", new_column_name="settings")
    op.rename_table("account_settings", "customer_settings")
