"""categories of books

Revision ID: r07_categories
Revises: r06_titles
Create Date: 2024-04-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'r07_categories'
down_revision = 'r06_titles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["catalog.categories.id"], name="fk_categories_parent_id_categories"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        schema="catalog",
    )
    op.add_column("books", sa.Column("category_id", sa.Integer(), nullable=True), schema="catalog")
    op.create_foreign_key(
        "fk_books_category_id_categories", "books", "categories", ["category_id"], ["id"],
        source_schema="catalog", referent_schema="catalog",
    )


def downgrade() -> None:
    op.drop_constraint("fk_books_category_id_categories", "books", schema="catalog")
    op.drop_column("books", "category_id", schema="catalog")
    op.drop_table("categories", schema="catalog")
