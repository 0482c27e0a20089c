"""books have titles, up to 300 characters

Revision ID: r06_titles
Revises: r05_settings
Create Date: 2024-03-11 08:30:12.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r06_titles'
down_revision = 'r05_settings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("books", "name", new_column_name="title", schema="catalog")
    op.alter_column(
        "books", "title", type_=sa.String(300), existing_type=sa.String(200), schema="catalog"
    )


def downgrade() -> None:
    op.alter_column(
        "books", "title", type_=sa.String(200), existing_type=sa.String(300), schema="catalog"
    )
    op.alter_column("books", "title", new_column_name="name", schema="catalog")
