"""Other sessions a deploy meets, each run in a process of its own:

python -m tests.holders advisory URL SECONDS APPLICATION   the migration lock
python -m tests.holders table URL TABLE SECONDS APPLICATION   a share lock on a table
python -m tests.holders shadow URL NAME SECONDS APPLICATION   the key of a shadow database's owner
python -m tests.holders exclusive URL TABLE SECONDS APPLICATION   reads pass, writes wait
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable

import asyncpg

from shared.migrate.database.session import LOCK_CLASS, lock_key
from shared.migrate.schema.shadow import OWNER_LOCK
from tests import pg
from tests.conftest import REPO

WATCHDOG = 120  # seconds any process a test starts may take before the test gives up on it
# in every holder's query text: what another session runs must never be quoted in output
SECRET = "card-4111-1111-1111-1111"


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    import pytest

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the condition")
        time.sleep(0.05)


async def hold(
    kind: str, url: str, seconds: float, application: str, table: str = "", after: float = 0
) -> None:
    conn = await asyncpg.connect(
        **pg._connect_args(url), server_settings={"application_name": application}
    )
    await asyncio.sleep(after)  # connected this long before it takes the lock
    try:
        if kind == "advisory":
            await conn.execute(
                f"/* {SECRET} */ SELECT pg_advisory_lock($1, $2)",
                LOCK_CLASS,
                lock_key("alembic_version"),
            )
            await asyncio.sleep(seconds)
        elif kind == "shadow":
            await conn.execute("SELECT pg_advisory_lock($1, $2)", OWNER_LOCK, lock_key(table))
            await asyncio.sleep(seconds)
        else:
            mode = "EXCLUSIVE" if kind == "exclusive" else "ACCESS SHARE"
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {table} IN {mode} MODE -- {SECRET}")
                await asyncio.sleep(seconds)
    finally:
        await conn.close()


def start(
    kind: str, url: str, seconds: float, application: str, table: str = "", after: float = 0
) -> subprocess.Popen[str]:
    """Start a holder and return once it holds its lock (taken `after` seconds after it
    connected)."""
    args = (
        [url, table, str(seconds), application, str(after)]
        if kind in ("table", "shadow", "exclusive")
        else [url, str(seconds), application, str(after)]
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.holders", kind, *args], cwd=REPO, text=True
    )
    deadline = time.monotonic() + 30 + after
    query = (
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.application_name = $1 AND l.granted AND l.locktype = $2 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )  # this database's: tests on other databases may name their holders alike
    locktype = "relation" if kind in ("table", "exclusive") else "advisory"
    while pg.fetch(url, query, application, locktype) == [(0,)]:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"the {kind} holder did not take its lock")
        time.sleep(0.05)
    return process


if __name__ == "__main__":
    kind, url = sys.argv[1], sys.argv[2]
    if kind in ("table", "shadow", "exclusive"):
        table, seconds, application, after = sys.argv[3:7]
    else:
        table, (seconds, application, after) = "", sys.argv[3:6]
    asyncio.run(hold(kind, url, float(seconds), application, table, float(after)))
