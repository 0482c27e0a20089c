"""One mechanism under adopt, baseline and squash: a revision that replaces others (Django's
`replaces`). Here by hand: users' two revisions squashed into one, the old files kept in
services/users/migrations/replaced/ where plain Alembic does not look.

A database at the last replaced revision is at the replacing one (moved, no DDL); one in the
middle runs the rest of the old revisions first; an empty one runs only the replacing one. All
three end with one catalog, one `status`, and a version table plain Alembic agrees with."""

from __future__ import annotations

import json
import shutil

import pytest

from tests import pg
from tests.conftest import Project

pytestmark = pytest.mark.deploy

FIRST, SECOND = "a2aac9be69fc", "fe95ecace8c3"  # users' revisions, replaced
SQUASH = "5a0a5e000001"

SQUASHED_USERS = f'''"""users, squashed"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = {SQUASH!r}
down_revision = None
branch_labels = ("users", {FIRST!r})  # {FIRST}: agents and billing depend on it
depends_on = None
replaces = ({SECOND!r},)


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('active', 'suspended', name='user_status'),
              server_default='active', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
              nullable=False),
    sa.Column('preferences', postgresql.JSONB(astext_type=sa.Text()), server_default='{{}}',
              nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_index(op.f('ix_users_created_at'), 'users', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_users_created_at'), table_name='users')
    op.drop_table('users')
    op.execute('DROP TYPE IF EXISTS "user_status"')
'''


def squash_users(project: Project) -> None:
    """What `migrate squash -b users` leaves, written by hand."""
    versions = project.root / "services" / "users" / "migrations"
    (versions / "replaced").mkdir()
    for path in versions.glob("*.py"):
        shutil.move(path, versions / "replaced" / path.name)
    (versions / f"{SQUASH}_users_squashed.py").write_text(SQUASHED_USERS)


def state(project: Project) -> tuple[object, ...]:
    status = json.loads(project.migrate("status", "--json").out)
    return (
        pg.schema_snapshot(project.database_url),
        [(m["module"], m["current"], m["state"]) for m in status["modules"]],
        pg.version_rows(project.database_url),
    )


def test_three_databases_reach_one_state(
    project: Project, other_database: str, third_database: str
) -> None:
    at_head, middle, empty = project.database_url, other_database, third_database
    assert project.migrate("up").code == 0  # the old history, all of it
    assert project.migrate("up", "-r", FIRST, env={"DATABASE_URL": middle}, url=False).code == 0
    squash_users(project)

    # an empty database runs only the squash, never the replaced revisions
    project.database_url = empty
    result = project.migrate("up")
    assert result.code == 0, result.err
    assert f"Applying users {SQUASH} users, squashed... OK" in result.out
    assert FIRST not in result.out and SECOND not in result.out
    fresh = state(project)
    assert fresh[1] == [
        ("users", SQUASH, "up to date"),
        ("agents", "a9b40a91187e", "up to date"),
        ("billing", "b55cb3778da2", "up to date"),
    ]

    # the one at the old head is moved: no DDL, its rows and log say the squash
    project.database_url = at_head
    before = pg.schema_snapshot(at_head)
    status = json.loads(project.migrate("status", "--json").out)["modules"]
    assert (status[0]["current"], status[0]["state"]) == (SECOND, "behind, via old revisions")
    moved = project.migrate("up")
    assert moved.code == 0, moved.err
    assert moved.out.startswith(f"Moving onto {SQUASH} (they replace revisions the database ran)")
    assert pg.schema_snapshot(at_head) == before
    assert state(project) == fresh
    log = json.loads(project.migrate("log", "--json").out)["entries"]
    assert (log[0]["revision"], log[0]["action"]) == (SQUASH, "replaced")
    assert project.migrate("up").out == "No migrations to apply.\n"

    # the one in the middle runs the rest of the old revisions, then is moved
    project.database_url = middle
    result = project.migrate("up")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].startswith(f"Applying users {SECOND} add preferences")
    assert f"Moving onto {SQUASH}" in result.out.splitlines()[1]
    assert state(project) == fresh


def test_a_database_inside_the_range_runs_the_rest_first(project: Project) -> None:
    assert project.migrate("up", "-r", FIRST).code == 0
    squash_users(project)
    status = json.loads(project.migrate("status", "--json").out)["modules"]
    assert (status[0]["current"], status[0]["state"]) == (FIRST, "behind, via old revisions")
    down = project.migrate("down", "-b", "users")
    assert down.code == 2 and "run `migrate up` first" in down.err
    result = project.migrate("up")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"Applying users {SECOND} add preferences to users... OK")
    assert lines[1].startswith(f"Moving onto {SQUASH} ")
    assert "preferences" in pg.columns(project.database_url, "users")
    # users at the squash, which agents and billing depend on: no row of its own, as plain
    # Alembic writes it; the log says the database was moved onto it
    assert pg.version_rows(project.database_url) == {"a9b40a91187e", "b55cb3778da2"}
    log = json.loads(project.migrate("log", "--json").out)["entries"]
    [moved] = [e for e in log if e["revision"] == SQUASH]
    assert (moved["direction"], moved["action"]) == ("up", "replaced")
    assert not [e for e in log if e["revision"] == FIRST and e["direction"] == "down"]
    status = json.loads(project.migrate("status", "--json").out)["modules"]
    assert (status[0]["current"], status[0]["state"]) == (SQUASH, "up to date")


def test_plain_alembic_refuses_until_migrate_moved_the_database(project: Project) -> None:
    assert project.migrate("up").code == 0
    squash_users(project)
    refused = project.alembic("upgrade", "heads")
    assert refused.code != 0
    [line] = [x for x in refused.err.splitlines() if x.strip()][-1:]
    assert (
        f"the database is at revision {SECOND}, which {SQUASH} replaced; run `migrate up`" in line
    )
    assert project.migrate("up").code == 0
    current = project.alembic("current")  # the squash shows as users' (effective) head
    assert current.code == 0, current.err
    modules = json.loads(project.migrate("current", "--json").out)["modules"]
    assert {line.split()[0] for line in current.out.splitlines()} == {m["current"] for m in modules}
    assert project.alembic("upgrade", "heads").code == 0
    heads = project.alembic("heads")
    assert heads.code == 0 and SQUASH in heads.out


def test_a_database_that_differs_is_not_moved(project: Project) -> None:
    assert project.migrate("up").code == 0
    squash_users(project)
    kept = project.root / "services/users/migrations" / f"{SQUASH}_users_squashed.catalog.json"
    fresh_url = project.database_url
    pg.execute(fresh_url, "ALTER TABLE users ADD COLUMN nickname text")
    objects = [
        ["column", "public.users.email", "character varying(320) not null"],
        ["table", "public.users", ""],
    ]
    kept.write_text(json.dumps({"format": 1, "objects": objects}))
    rows = pg.version_rows(fresh_url)
    result = project.migrate("up")
    assert result.code == 1
    assert "the database is not what revision 5a0a5e000001" in result.err
    assert "+ column users.nickname" in result.err and "nothing was changed" in result.err
    assert pg.version_rows(fresh_url) == rows


def test_rows_that_mean_a_replaced_revision_are_read_with_the_log(project: Project) -> None:
    """Agents and billing depend on users' first revision: with users there and no further,
    the version table holds only their rows (as plain Alembic writes it). Once users is
    squashed, the same rows would read "users at the squash": the log says it never moved."""
    for module in ("agents", "billing"):  # users' first revision comes with them, not more
        assert project.migrate("up", "-b", module).code == 0
    assert pg.version_rows(project.database_url) == {"a9b40a91187e", "b55cb3778da2"}
    squash_users(project)
    status = json.loads(project.migrate("status", "--json").out)["modules"]
    assert (status[0]["current"], status[0]["state"]) == (FIRST, "behind, via old revisions")
    refused = project.alembic("upgrade", "heads")  # it would take users for squashed
    assert refused.code != 0 and f"at revision {FIRST}, which {SQUASH} replaced" in refused.err
    assert "preferences" not in pg.columns(project.database_url, "users")
    result = project.migrate("up")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].startswith(f"Applying users {SECOND} add preferences")
    assert "preferences" in pg.columns(project.database_url, "users")
    assert project.alembic("upgrade", "heads").code == 0
    assert project.migrate("status", "--check").code == 0
