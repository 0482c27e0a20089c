"""Benchmark: what each command costs, beside plain Alembic and the floors, in one run.

Not a test (nothing is asserted): it prints figures. `make bench` runs it. Shapes:
`small` (the example repository), `wide` (50 modules of 100 revisions), `deep` (one module of
5,000), `plugin` (the pytest plugin's built-in tests, per test, on the example modules and on
a module of 100, 200 and 400 revisions), `squash` (a build from empty before and after
squashing a module of 300 revisions that another depends on in the middle), and `fleet`
(`up --databases` over FLEET_DATABASES databases, default 200, one pending revision each, with
the server's connections watched). Every figure is the median of REPEAT runs (default 5; full
applies: FULL_REPEAT, 3; fleets: one run each). Uses TEST_DATABASE_URL's server when set,
otherwise an embedded PostgreSQL.

    python -m tests.bench [small,wide,deep,plugin,squash,fleet]
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from sqlalchemy.engine import make_url

from tests import long_history, pg
from tests.conftest import BIN, copy_project

SHAPES = {"small": (0, 0), "wide": (50, 100), "deep": (1, 5000)}
PLUGIN_SIZES = (100, 200, 400)  # revisions of the generated module the built-in tests walk

MODELS = '''"""Generated for the benchmark."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class Item(Base):
    __tablename__ = "{name}_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50), index=True)
'''

FIRST = '''"""create {name} items

Revision ID: {rev}
Revises:
Create Date: 2026-11-25 00:00:00

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = {rev!r}
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ({name!r},)
depends_on: str | Sequence[str] | None = {depends!r}


def upgrade() -> None:
    op.create_table('{name}_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=50), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_{name}_items'))
    )


def downgrade() -> None:
    op.drop_table('{name}_items')
'''

NEXT = '''"""step {i} of {name}

Revision ID: {rev}
Revises: {parent}
Create Date: 2026-11-25 00:00:00

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = {rev!r}
down_revision: str | Sequence[str] | None = {parent!r}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("{up}")


def downgrade() -> None:
    op.execute("{down}")
'''


def make_project(root: Path, modules: int, per_module: int) -> int:
    """The repository plus `modules` generated modules of `per_module` revisions each."""
    copy_project(root)
    users_base = next((root / "services/users/migrations").glob("a2aa*")).name.split("_")[0]
    manifest = root / "migrations.yaml"
    entries = []
    for m in range(modules):
        name = f"g{m:02d}"
        package = root / "services" / name
        (package / "migrations").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "models.py").write_text(MODELS.format(name=name))
        parent = None
        for i in range(per_module):
            rev = f"{name}{i:010d}"
            template = FIRST if i == 0 else NEXT
            # later revisions create and drop the label's index in turn, ending with it made
            create = f"CREATE INDEX ix_{name}_items_label ON {name}_items (label)"
            drop = f"DROP INDEX ix_{name}_items_label"
            up, down = (create, drop) if i % 2 else (drop, create)
            text = template.format(
                name=name, rev=rev, parent=parent, i=i, depends=users_base, up=up, down=down
            )
            (package / "migrations" / f"{rev}_step.py").write_text(text)
            parent = rev
        # lint is right that the index is made without CONCURRENTLY on a table that exists; the
        # history is what is timed, so the finding is a warning here (the plugin's test_lint)
        entries.append(
            f"  - name: {name}\n    depends_on: [users]\n"
            "    lint: {require-concurrent-index-creation: warning, "
            "require-concurrent-index-deletion: warning}\n"
        )
    manifest.write_text(manifest.read_text() + "".join(entries))
    from shared.migrate.history.config import write_locations
    from shared.migrate.manifest import load_manifest

    write_locations(load_manifest(manifest))
    return 6 + modules * per_module


@dataclass
class Bench:
    root: Path
    server: str
    repeat: int
    env: dict[str, str]

    def database(self) -> str:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        pg.execute(self.server, f'CREATE DATABASE "{name}"')
        return make_url(self.server).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        pg.execute(self.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def run(
        self,
        argv: list[str],
        url: str,
        extra: dict[str, str] | None = None,
        ok: tuple[int, ...] = (0,),
    ) -> float:
        env = {**self.env, "DATABASE_URL": url, **(extra or {})}
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode not in ok:
            sys.exit(f"{' '.join(argv)} failed: {done.stderr.strip()[-400:]}")
        return elapsed

    def median(
        self,
        argv: list[str],
        url: str,
        after: Callable[[], None] | None = None,
        extra: dict[str, str] | None = None,
        repeat: int | None = None,
        ok: tuple[int, ...] = (0,),
    ) -> float:
        times = []
        for _ in range(repeat or self.repeat):
            times.append(self.run(argv, url, extra, ok))
            if after:
                after()
        return statistics.median(times)


@dataclass
class Changed:
    """A model change for `create` to find (a new nullable column)."""

    path: Path

    def apply(self) -> None:
        text = self.path.read_text()
        if "extra:" not in text:
            self.path.write_text(
                text + "    extra: Mapped[str | None] = mapped_column(String(20))\n"
            )


def new_files(root: Path) -> Callable[[], None]:
    """A clean-up that removes the revision files a command wrote."""
    before = set(root.glob("services/*/migrations/*.py"))

    def clean() -> None:
        for path in set(root.glob("services/*/migrations/*.py")) - before:
            path.unlink()

    return clean


@contextmanager
def server_url() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    from shared import devserver

    url, handle = devserver.start(Path(tempfile.mkdtemp()) / "pgdata", keep_running=False)
    try:
        yield url
    finally:
        handle.cleanup()


def no_pyc(root: Path) -> None:
    for cache in root.glob("services/*/migrations/__pycache__"):
        for path in cache.glob("*.pyc"):
            path.unlink()


def no_index(root: Path) -> None:
    for path in root.glob("services/*/migrations/__pycache__/migrate-index*"):
        path.unlink()


def versus(mine: float, other: float) -> str:
    """`mine` beside `other` as the larger over the smaller: '3.1x faster' or '1.2x slower'."""
    if mine <= other:
        return f"{other / mine:5.1f}x faster"
    return f"{mine / other:5.1f}x slower"


def round_trips(bench: Bench, argv: list[str], url: str) -> int:
    """Messages sent to the server by one command (strace counts sendto calls)."""
    if not shutil.which("strace"):
        return -1
    env = {**bench.env, "DATABASE_URL": url}
    done = subprocess.run(
        ["strace", "-f", "-c", "-e", "trace=sendto", *argv],
        cwd=bench.root,
        env=env,
        capture_output=True,
        text=True,
    )
    # strace -c's table: % time, seconds, usecs/call, calls, [errors], syscall
    for line in done.stderr.splitlines():
        fields = line.split()
        if fields and fields[-1] == "sendto":
            return int(fields[3])
    return -1


def max_rss_mb(bench: Bench, argv: list[str], url: str) -> float:
    env = {**bench.env, "DATABASE_URL": url}
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv],
        cwd=bench.root,
        env=env,
        capture_output=True,
        text=True,
    )
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def shape(name: str, server: str, repeat: int, full_repeat: int) -> list[tuple[str, str]]:
    modules, per_module = SHAPES[name]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        count = make_project(root, modules, per_module)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        bench = Bench(root, server, repeat, env)
        migrate, alembic, python = str(BIN / "migrate"), str(BIN / "alembic"), sys.executable
        module = "g00" if modules else "users"
        url = bench.database()
        try:
            bench.run([migrate, "heads"], url)  # the first run reads every file (and caches)
            full_ours = bench.median([migrate, "up"], url, repeat=1)
            floor_connect = bench.median(
                [
                    python,
                    "-c",
                    "import asyncio, asyncpg, os\n"
                    "async def main():\n"
                    "    c = await asyncpg.connect(os.environ['DATABASE_URL'])\n"
                    "    await c.fetchval('SELECT 1')\n"
                    "    await c.close()\n"
                    "asyncio.run(main())",
                ],
                url.replace("+asyncpg", ""),
            )
            floor_pass = bench.median([python, "-c", "pass"], url)
            floor_import = bench.median(
                [python, "-c", "import alembic.runtime.migration, sqlalchemy, asyncpg, typer"], url
            )
            pairs = [
                ("up (nothing to do)", [migrate, "up"], [alembic, "upgrade", "heads"], None),
                ("status", [migrate, "status"], [alembic, "current"], None),
                ("current", [migrate, "current"], [alembic, "current"], None),
                ("heads", [migrate, "heads"], [alembic, "heads"], None),
                ("history", [migrate, "history"], [alembic, "history"], None),
                (
                    "create --no-autogenerate",
                    [migrate, "create", "x", "--module", module, "--no-autogenerate"],
                    [alembic, "revision", "-m", "x", "--head", f"{module}@head"],
                    new_files(root),
                ),
                ("check", [migrate, "check"], [alembic, "check"], None),
            ]
            changed = Changed(root / "services" / module / "models.py")
            pairs.append(
                (
                    "create (autogenerate)",
                    [migrate, "create", "x", "--module", module],
                    [alembic, "revision", "--autogenerate", "-m", "x", "--head", f"{module}@head"],
                    new_files(root),
                )
            )
            rows.append((f"{name}: {count} revisions in {modules or 3} modules", ""))
            floors = {"pass": floor_pass, "connect": floor_connect, "import": floor_import}
            for label, ours, theirs, after in pairs:
                if label == "create (autogenerate)":
                    changed.apply()
                if label == "check":
                    # the first check builds the history once and keeps it as a template
                    first = bench.run(ours, url)
                    rows.append(("  check, first run (builds the template)", f"{first:7.3f} s"))
                mine = bench.median(ours, url, after)
                other = bench.median(theirs, url, after)
                floor = (
                    floors["connect"]
                    if label in ("up (nothing to do)", "status", "current")
                    else None
                )
                ratio = versus(mine, other)
                against = f"  floor x{mine / floor:4.1f}" if floor else ""
                rows.append(
                    (f"  {label}", f"{mine:7.3f} s  alembic {other:7.3f} s  {ratio}{against}")
                )
            extra = {"PYTHONDONTWRITEBYTECODE": "1"}
            for label, cold in (
                ("no .pyc", lambda: no_pyc(root)),
                ("no .pyc, no index cache", lambda: (no_pyc(root), no_index(root))),
            ):
                cold()
                mine = bench.median([migrate, "up"], url, cold, extra)
                other = bench.median([alembic, "upgrade", "heads"], url, cold, extra)
                rows.append(
                    (
                        f"  up (nothing to do), {label}",
                        f"{mine:7.3f} s  alembic {other:7.3f} s  {versus(mine, other)}",
                    )
                )
            bench.run([migrate, "heads"], url)  # the index again, for what follows
            rows += lint_rows(bench, url, module, per_module)
            help_time = bench.median([migrate, "--help"], url)
            rows.append(
                ("  --help", f"{help_time:7.3f} s  python -c pass x{help_time / floor_pass:4.1f}")
            )
            completion = bench.median(
                [migrate],
                url,
                extra={
                    "_MIGRATE_COMPLETE": "complete_bash",
                    "COMP_WORDS": "migrate u",
                    "COMP_CWORD": "1",
                },
            )
            rows.append(
                (
                    "  shell completion",
                    f"{completion:7.3f} s  python -c pass x{completion / floor_pass:4.1f}",
                )
            )
            rows.append(
                (
                    "  floors",
                    f"python -c pass {floor_pass:.3f} s; connect + SELECT 1 {floor_connect:.3f} s; "
                    f"imports {floor_import:.3f} s",
                )
            )
        finally:
            bench.drop(url)
        rows += full_apply(bench, count, full_ours, full_repeat)
    return rows


def lint_rows(bench: Bench, url: str, module: str, per_module: int) -> list[tuple[str, str]]:
    """`migrate lint`: static over every revision, with nothing pending, and one pending
    revision measured on the shadow beside `check` walking the same revision."""
    migrate = str(BIN / "migrate")
    rows = []
    static = bench.median([migrate, "lint", "--static"], url, ok=(0, 1))
    rows.append(("  lint --static, every revision", f"{static:7.3f} s"))
    idle = bench.median([migrate, "lint"], url)
    rows.append(("  lint, nothing pending", f"{idle:7.3f} s"))
    if per_module:
        parent, table = f"{module}{per_module - 1:010d}", f"{module}_items"
    else:
        parent, table = "fe95ecace8c3", "users"
    path = bench.root / "services" / module / "migrations" / "ffffffffffff_lint.py"
    path.write_text(
        NEXT.format(
            name=module,
            rev="ffffffffffff",
            parent=parent,
            i="bench",
            up=f"ALTER TABLE {table} ADD COLUMN bench_note text",
            down=f"ALTER TABLE {table} DROP COLUMN bench_note",
        )
    )
    try:
        bench.run([migrate, "check"], url, ok=(0, 1))  # the template below the pending one
        measured = bench.median([migrate, "lint"], url)
        check = bench.median([migrate, "check"], url, ok=(0, 1))
        rows.append(
            (
                "  lint, 1 pending revision (measured)",
                f"{measured:7.3f} s  check (same revision) {check:7.3f} s  "
                f"x{measured / check:4.2f}",
            )
        )
    finally:
        path.unlink()
    return rows


def full_apply(bench: Bench, count: int, first: float, repeat: int) -> list[tuple[str, str]]:
    migrate, alembic = str(BIN / "migrate"), str(BIN / "alembic")
    sql_path = bench.root / "up.sql"
    with open(sql_path, "w") as out:
        subprocess.run(
            [migrate, "--database-url", "postgresql://x@127.0.0.1:9/x", "up", "--sql"],
            cwd=bench.root,
            env=bench.env,
            stdout=out,
            check=True,
        )

    def fresh(argv: list[str]) -> float:
        return from_empty(bench, argv, repeat)

    psql_url = bench.server.replace("+asyncpg", "")
    parsed = make_url(psql_url)
    psql = ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(sql_path)]

    def psql_argv(url: str) -> list[str]:
        return [*psql, make_url(url).set(drivername="postgresql").render_as_string(False)]

    times = []
    for _ in range(repeat):
        url = bench.database()
        try:
            started = time.perf_counter()
            subprocess.run(psql_argv(url), check=True, capture_output=True, env=bench.env)
            times.append(time.perf_counter() - started)
        finally:
            bench.drop(url)
    floor = statistics.median(times)
    ours = fresh([migrate, "up"])
    theirs = fresh([alembic, "upgrade", "heads"])
    url = bench.database()
    try:
        trips = round_trips(bench, [migrate, "up"], url)
    finally:
        bench.drop(url)
    url = bench.database()
    try:
        psql_trips = round_trips(bench, psql_argv(url), url)
    finally:
        bench.drop(url)
    url = bench.database()
    try:
        rss = max_rss_mb(bench, [migrate, "up"], url)
    finally:
        bench.drop(url)
    del parsed
    return [
        (
            f"  full apply from empty ({count})",
            f"{ours:7.3f} s  alembic {theirs:7.3f} s  {versus(ours, theirs)}  "
            f"psql x{ours / floor:4.2f} (psql {floor:.3f} s)",
        ),
        (
            "  messages sent per revision",
            f"migrate {trips / count:5.1f}  psql {psql_trips / count:5.1f}",
        ),
        ("  memory of the full apply", f"{rss:7.1f} MB"),
    ]


def from_empty(bench: Bench, argv: list[str], repeat: int) -> float:
    """The median time of `argv` on a new empty database each time."""
    times = []
    for _ in range(repeat):
        url = bench.database()
        try:
            times.append(bench.run(argv, url))
        finally:
            bench.drop(url)
    return statistics.median(times)


def squashing(server: str, repeat: int) -> list[tuple[str, str]]:
    """A module of 300 revisions that another depends on in the middle (tests/long_history.py):
    a build from empty before `migrate squash` and after it."""
    from shared.migrate.history.config import write_locations
    from shared.migrate.manifest import load_manifest

    migrate, alembic = str(BIN / "migrate"), str(BIN / "alembic")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        copy_project(root)
        long_history.write(root, 300)
        write_locations(load_manifest(root / "migrations.yaml"))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        bench = Bench(root, server, repeat, env)
        url = bench.database()
        try:
            bench.run([migrate, "heads"], url)  # the index, read once
            before = from_empty(bench, [migrate, "up"], repeat)
            before_alembic = from_empty(bench, [alembic, "upgrade", "heads"], repeat)
            took = bench.run([migrate, "squash", "-b", "ledger"], url)
            bench.run([migrate, "heads"], url)
            after = from_empty(bench, [migrate, "up"], repeat)
            after_alembic = from_empty(bench, [alembic, "upgrade", "heads"], repeat)
        finally:
            bench.drop(url)
    return [
        ("squash: ledger (300 revisions), reports on its 150th", ""),
        (
            "  full apply from empty (307), before",
            f"{before:7.3f} s  alembic {before_alembic:7.3f} s",
        ),
        ("  migrate squash -b ledger (build, write, prove)", f"{took:7.3f} s"),
        (
            "  full apply from empty (8), after",
            f"{after:7.3f} s  alembic {after_alembic:7.3f} s  {versus(after, before)} than before",
        ),
    ]


def plugin(server: str) -> list[tuple[str, str]]:
    """The built-in tests' time per test (pytest's own junit timings), as another team runs them:
    `pytest --migrate-tests` in a project that has only the manifest, alembic/ and services/."""
    rows: list[tuple[str, str]] = [("plugin: pytest --migrate-tests, seconds per test", "")]
    for size in PLUGIN_SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_project(root, 1, size)
            report = root / "junit.xml"
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["MIGRATE_TEST_DATABASE_URL"] = server
            started = time.perf_counter()
            done = subprocess.run(
                [
                    *(str(BIN / "pytest"), "--migrate-tests", "-q", "-p", "no:cacheprovider"),
                    *("--rootdir", str(root), f"--junitxml={report}"),
                ],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"pytest --migrate-tests failed: {done.stdout.strip()[-600:]}")
            times: dict[str, dict[str, float]] = {}
            for case in ElementTree.parse(report).iter("testcase"):
                test, module = re.fullmatch(r"(\w+)\[(\w+)\]", case.get("name", "")).groups()  # type: ignore[union-attr]
                times.setdefault(module, {})[test.removeprefix("test_")] = float(
                    case.get("time", 0)
                )
            modules = ["users", "agents", "billing", "g00"] if size == PLUGIN_SIZES[0] else ["g00"]
            for module in modules:
                label = f"{module} ({size} revisions)" if module == "g00" else module
                figures = "  ".join(f"{t} {v:.2f}" for t, v in sorted(times[module].items()))
                rows.append((f"  {label}", figures))
            rows.append((f"  whole run with g00 at {size}", f"{wall:7.3f} s"))
    return rows


def fleet(server: str) -> list[tuple[str, str]]:
    """`up --databases` over many databases on the server, one pending revision each (billing's
    last): the wall time with --jobs 1 and with the default, and the most connections the
    server had to them while it ran (pg_stat_activity, sampled), beside what the jobs imply:
    a session each, and the monitor a revision running longer than a second opens."""
    from shared.migrate.commands.fleet import default_jobs

    count = int(os.environ.get("FLEET_DATABASES", "200"))
    migrate = str(BIN / "migrate")
    prefix = f"bench_fleet_{uuid.uuid4().hex[:6]}"
    template = f"{prefix}_template"
    names = [f"{prefix}_{i:04d}" for i in range(count)]
    rows = [(f"fleet: {count} databases, one pending revision each", "")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        copy_project(root)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        bench = Bench(root, server, 1, env)
        url = make_url(server).set(database=template).render_as_string(hide_password=False)
        pg.execute(server, f'CREATE DATABASE "{template}"')
        try:
            bench.run([migrate, "up"], url)
            bench.run([migrate, "down", "--branch", "billing"], url)  # its last one pending
            for name in names:
                pg.execute(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            (root / "fleet.txt").write_text(
                "".join(
                    make_url(server).set(database=n).render_as_string(hide_password=False) + "\n"
                    for n in names
                )
            )
            up = [migrate, "up", "--databases", "fleet.txt"]
            for jobs in (1, default_jobs()):
                seconds, peak = watched(bench, [*up, "--jobs", str(jobs)], server, prefix)
                rows.append(
                    (
                        f"  up --databases, --jobs {jobs:<2}"
                        + (" (the default)" if jobs == default_jobs() else "              "),
                        f"{seconds:7.1f} s  {seconds / count:.3f} s a database  server "
                        f"connections at most {peak} (the jobs imply {2 * jobs})",
                    )
                )
                if jobs == 1:  # pending again, for the run with the default
                    bench.run([migrate, "down", "--databases", "fleet.txt", "-b", "billing"], url)
            again, peak = watched(bench, up, server, prefix)
            rows.append(
                (
                    "  up --databases, nothing left to do",
                    f"{again:7.1f} s  {again / count:.3f} s a database  server connections at "
                    f"most {peak}",
                )
            )
        finally:
            for name in [*names, template]:
                pg.execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows


def watched(bench: Bench, argv: list[str], server: str, prefix: str) -> tuple[float, int]:
    """Run `argv`: its wall time, and the most sessions the server had on databases named
    `prefix*` meanwhile (pg_stat_activity, every 20 ms)."""
    peak = 0
    done = threading.Event()
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE $1"

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, int(pg.fetch(server, query, f"{prefix}%")[0][0]))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        seconds = bench.run(argv, server)
    finally:
        done.set()
        sampler.join()
    return seconds, peak


def main() -> None:
    chosen = (sys.argv[1] if len(sys.argv) > 1 else "small,wide,deep,plugin,squash,fleet").split(
        ","
    )
    repeat = int(os.environ.get("REPEAT", "5"))
    full_repeat = int(os.environ.get("FULL_REPEAT", "3"))
    with server_url() as server:
        for name in chosen:
            if name == "plugin":
                rows = plugin(server)
            elif name == "squash":
                rows = squashing(server, full_repeat)
            elif name == "fleet":
                rows = fleet(server)
            else:
                rows = shape(name, server, repeat, full_repeat)
            for label, figures in rows:
                print(f"{label:<44} {figures}", flush=True)


if __name__ == "__main__":
    main()
