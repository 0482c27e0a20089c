"""Benchmark: what every command costs when one module has many revisions.

Not a test (nothing asserted); it prints figures. Run: `make bench` (N=2000 by default).
Uses TEST_DATABASE_URL's server when set, otherwise an embedded PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from tests import pg
from tests.conftest import BIN, copy_project

TEMPLATE = '''"""bench {i}"""
from alembic import op

revision = {rev!r}
down_revision = {parent!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    pass
'''


def make_project(root: Path, count: int) -> None:
    copy_project(root)
    versions = root / "services/users/migrations"
    parent = next(versions.glob("fe95*")).name.split("_")[0]
    for i in range(count):
        rev = f"b{i:011d}"
        (versions / f"{rev}_bench.py").write_text(TEMPLATE.format(i=i, rev=rev, parent=parent))
        parent = rev


def timed(root: Path, url: str, *argv: str) -> float:
    env = {**os.environ, "DATABASE_URL": url}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[1:])} failed: {done.stderr.strip()}")
    return elapsed


def main() -> None:
    count = int(os.environ.get("N", "2000"))
    server = os.environ.get("TEST_DATABASE_URL")
    handle = None
    if not server:
        from shared import devserver

        server, handle = devserver.start(Path(tempfile.mkdtemp()) / "pgdata", keep_running=False)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    pg.execute(server, f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    migrate, alembic = str(BIN / "migrate"), str(BIN / "alembic")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_project(root, count)
            rows = [
                ("migrate --help", timed(root, url, migrate, "--help")),
                ("migrate heads", timed(root, url, migrate, "heads")),
                (f"migrate up ({count + 6} revisions)", timed(root, url, migrate, "up")),
                ("migrate up (nothing to do)", timed(root, url, migrate, "up")),
                ("migrate status", timed(root, url, migrate, "status")),
                (
                    "alembic upgrade heads (nothing to do)",
                    timed(root, url, alembic, "upgrade", "heads"),
                ),
            ]
    finally:
        pg.execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if handle is not None:
            handle.cleanup()
    bytecode = "off" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"
    print(f"{count} extra revisions in one module; .pyc writing {bytecode}")
    for label, seconds in rows:
        print(f"{label:<45} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
