"""`migrate adopt`: the bookshop as it was, one application with one plain-Alembic history
(tests/legacy_shop: 19 revisions with renames, a merge, enums, data migrations, functions,
triggers, a view, an extension, three schemas), adopted into tests/bookshop's four modules.

Databases the old project built with plain Alembic (one at its head, one in its middle) and an
empty one all reach one catalog and one `status` with `migrate up`; plain Alembic agrees."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import holders, pg
from tests.conftest import BIN, REPO, Project
from tests.test_cli import undocumented

LEGACY = REPO / "tests" / "legacy_shop"
HEAD, MIDDLE = "r18_book_list", "r09_tags"
ASSIGN = ("--assign", "currencies=orders", "--assign", "audit.order_events=orders")
MODULES = ("accounts", "catalog", "orders", "support")


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """The single application's project, beside the monorepo."""
    root = tmp_path / "shop"
    shutil.copytree(LEGACY, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def plain_alembic(project: Project, legacy: Path, url: str, *args: str) -> None:
    """The old project's own `alembic`, on `url`."""
    ini = str(legacy / "alembic.ini")
    result = project.run([str(BIN / "alembic"), "-c", ini, *args], env={"DATABASE_URL": url})
    assert result.code == 0, result.err


def adopt(project: Project, legacy: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = project.migrate("adopt", "--from", str(legacy / "alembic.ini"), *extra)
    return subprocess.CompletedProcess([], result.code, result.out, result.err)


def state(project: Project, url: str) -> tuple[object, ...]:
    status = project.migrate("status", "--json", env={"DATABASE_URL": url}, url=False)
    assert status.code == 0, status.err
    modules = json.loads(status.out)["modules"]
    currencies = pg.fetch(url, "SELECT code, name, minor_units FROM currencies ORDER BY code")
    return (
        pg.schema_snapshot(url),
        [(m["module"], m["current"], m["state"]) for m in modules],
        currencies,
    )


def written_files(project: Project) -> list[Path]:
    return sorted(
        p for m in MODULES for p in (project.root / "services" / m / "migrations").iterdir()
    )


@pytest.mark.console_script
def test_a_single_application_history_adopted_into_four_modules(
    bookshop: Project, legacy: Path, other_database: str, third_database: str
) -> None:
    project = bookshop
    at_head, middle, empty = project.database_url, other_database, third_database
    plain_alembic(project, legacy, at_head, "upgrade", "head")
    plain_alembic(project, legacy, middle, "upgrade", MIDDLE)
    ini = (project.root / "alembic.ini").read_bytes()

    result = adopt(project, legacy, *ASSIGN)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"Wrote 4 baselines; together they replace {HEAD}, the head of the 19 ")
    assert "  + 4 rows of currencies" in out  # seed rows, carried into their owner's baseline
    assert "  catalog: - index ix_books_title_trgm on catalog.books" in out  # a model drifted
    assert "  orders: - table currencies (no model: it was assigned)" in out
    assert out.rstrip().splitlines()[-1].startswith("Adopted: proved on a shadow database")
    baselines = {p.parent.parent.name: p for p in written_files(project) if p.suffix == ".py"}
    assert sorted(baselines) == list(MODULES)
    for path in baselines.values():
        text = path.read_text()
        assert f"replaces: tuple[str, ...] = ('{HEAD}',)" in text
        assert path.with_name(path.stem + ".catalog.json").is_file()
    orders = baselines["orders"].read_text()
    assert "op.create_table('orders'," in orders and "INSERT INTO currencies" in orders
    assert len(list((project.root / "adopted" / "legacy").glob("*.py"))) == 19
    assert (
        "adopted:\n  name: legacy\n  versions: adopted/legacy\n"
        in (project.root / "migrations.yaml").read_text()
    )
    assert (project.root / "alembic.ini").read_bytes() == ini  # untouched

    # plain Alembic will not guess where a database inside the old history stands
    refused = project.alembic("upgrade", "heads")
    assert refused.code != 0
    assert f"the database is at revision {HEAD}, which " in refused.err
    assert "run `migrate up` first" in refused.err

    # the database at the old head is moved: no DDL, one move, logged as adopted
    before = pg.schema_snapshot(at_head)
    status = json.loads(project.migrate("status", "--json").out)["modules"]
    assert {(m["current"], m["state"]) for m in status} == {(HEAD, "behind, via old revisions")}
    moved = project.migrate("up")
    assert moved.code == 0, moved.err
    assert moved.out.splitlines()[0].startswith("Moving onto ")
    assert len(moved.out.splitlines()) == 2
    assert pg.schema_snapshot(at_head) == before
    log = json.loads(project.migrate("log", "--json").out)["entries"]
    assert sorted((e["module"], e["action"]) for e in log) == [(m, "adopted") for m in MODULES]
    fresh = state(project, at_head)

    # the one in the middle runs the old revisions it lacks, then is moved
    result = project.migrate("up", env={"DATABASE_URL": middle}, url=False)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("Applying legacy r10_shipped orders can be shipped... OK")
    assert lines[-2].startswith("Moving onto ")
    assert state(project, middle) == fresh

    # the empty one runs only the baselines
    result = project.migrate("up", env={"DATABASE_URL": empty}, url=False)
    assert result.code == 0, result.err
    assert [line.split()[1] for line in result.out.splitlines()[:-1]] == list(MODULES)
    assert state(project, empty) == fresh
    assert fresh[1] == [(m, baselines[m].name.split("_")[0], "up to date") for m in MODULES]
    assert ("USD", "US Dollar", 2) in fresh[2]  # the data migration's last word

    # plain Alembic agrees with migrate on every one of them, and has nothing to do
    current = json.loads(project.migrate("current", "--json").out)["modules"]
    for url in (at_head, middle, empty):
        project.database_url = url
        heads = project.alembic("current")
        assert heads.code == 0, heads.err
        assert {line.split()[0] for line in heads.out.splitlines()} == {
            m["current"] for m in current
        }
        assert project.alembic("upgrade", "heads").code == 0
        assert state(project, url) == fresh

    # check: the baselines still build what they replace; no database here needs the old files
    check = json.loads(project.migrate("check", "--json").out)
    assert not [f for f in check["findings"] if f["kind"] == "replaces"]
    [note] = check["notes"]
    assert note["kind"] == "replaced folder" and "does not need adopted/legacy/" in note["detail"]


def test_a_history_with_two_heads_is_refused(bookshop: Project, legacy: Path) -> None:
    versions = legacy / "alembic" / "versions"
    fork = (versions / "r18_book_list.py").read_text().replace("r18_book_list", "r18_fork")
    (versions / "r18_fork.py").write_text(fork.replace("CREATE VIEW catalog.book_list", "SELECT"))
    manifest = (bookshop.root / "migrations.yaml").read_text()
    result = adopt(bookshop, legacy, *ASSIGN)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"error: --from {legacy / 'alembic.ini'}: the old history has 2 heads (r18_book_list, "
        "r18_fork); adopt takes one history: merge them in the old project first"
    )
    assert (bookshop.root / "migrations.yaml").read_text() == manifest
    assert not (bookshop.root / "adopted").exists() and not written_files(bookshop)


def test_tables_no_model_claims_are_listed_not_dropped(bookshop: Project, legacy: Path) -> None:
    # --from takes the versions directory as well as the alembic.ini
    versions = str(legacy / "alembic" / "versions")
    run = bookshop.migrate("adopt", "--from", versions)
    result = subprocess.CompletedProcess([], run.code, run.out, run.err)
    assert result.returncode == 2
    assert (
        "the old head has 2 object(s) no module's models claim: table audit.order_events, "
        "table currencies; settle each with --assign NAME=MODULE" in result.stderr
    )
    assert not (bookshop.root / "adopted").exists() and not written_files(bookshop)


def test_a_table_two_modules_claim_is_refused(bookshop: Project, legacy: Path) -> None:
    currency = (
        "\n\nclass Currency(Base):\n    __tablename__ = 'currencies'\n"
        "    code: Mapped[str] = mapped_column(primary_key=True)\n"
    )
    for module in ("orders", "support"):
        path = bookshop.root / "services" / module / "models.py"
        path.write_text(path.read_text() + currency)
    result = adopt(bookshop, legacy, "--assign", "audit.order_events=orders")
    assert result.returncode == 2
    assert (
        "table 'currencies' is defined by the models of both 'orders' and 'support'; one "
        "module must own it" in result.stderr
    )
    assert not (bookshop.root / "adopted").exists() and not written_files(bookshop)


def test_a_database_at_a_revision_the_old_history_does_not_know(
    bookshop: Project, legacy: Path
) -> None:
    url = bookshop.database_url
    plain_alembic(bookshop, legacy, url, "upgrade", "head")
    pg.execute(url, "UPDATE alembic_version SET version_num = 'r99_hotfix'")
    adopted = adopt(bookshop, legacy, *ASSIGN, "--json")
    assert adopted.returncode == 0, adopted.stderr
    document = json.loads(adopted.stdout)
    assert not undocumented("adopt", document)
    assert (document["replaces"], document["replaced"]) == ([HEAD], 19)
    assert [b["module"] for b in document["baselines"]] == list(MODULES)
    before = pg.schema_snapshot(url)
    result = bookshop.migrate("up")
    assert result.code == 2
    assert result.err.startswith(
        "error: the database is at revision r99_hotfix, which no module's migrations contain"
    )
    assert pg.version_rows(url) == {"r99_hotfix"} and pg.schema_snapshot(url) == before
    status = json.loads(bookshop.migrate("status", "--json").out)
    assert status["modules"][-1]["state"] == "unknown revision"


def test_a_database_that_differs_from_the_old_head_is_not_moved(
    bookshop: Project, legacy: Path
) -> None:
    url = bookshop.database_url
    plain_alembic(bookshop, legacy, url, "upgrade", "head")
    pg.execute(url, "ALTER TABLE accounts ADD COLUMN nickname text")  # a change made by hand
    assert adopt(bookshop, legacy, *ASSIGN).returncode == 0
    result = bookshop.migrate("up")
    assert result.code == 1
    assert result.err.startswith("error: module 'accounts': the database is not what revision ")
    assert "+ column accounts.nickname; nothing was changed" in result.err
    assert pg.version_rows(url) == {HEAD}


HOLD_VERSION_TABLE = """
import asyncio, sys
import asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1], server_settings={"application_name": "holder"})
    async with conn.transaction():
        await conn.execute("LOCK TABLE alembic_version IN SHARE MODE")
        await asyncio.sleep(float(sys.argv[2]))
asyncio.run(main())
"""


@pytest.mark.deploy
def test_a_run_killed_while_moving_the_rows_leaves_them_as_they_were(
    bookshop: Project, legacy: Path
) -> None:
    """SIGKILL while the move's one transaction waits to write the version rows: nothing of
    it stays, and the next `migrate up` moves the database whole."""
    url = bookshop.database_url
    plain_alembic(bookshop, legacy, url, "upgrade", "head")
    assert adopt(bookshop, legacy, *ASSIGN).returncode == 0
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_VERSION_TABLE, plain, "60"])
    try:
        holders.wait_for(lambda: bool(pg.fetch(url, WAITING, "holder", "granted")))
        victim = bookshop.spawn("up", "--lock-timeout", "60s")
        holders.wait_for(lambda: bool(pg.fetch(url, WAITING, "migrate up", "waiting")))
        victim.kill()
        victim.communicate(timeout=holders.WATCHDOG)
    finally:
        holder.kill()
        holder.wait(timeout=holders.WATCHDOG)
    assert pg.version_rows(url) == {HEAD}
    assert not [e for e in pg.fetch(url, "SELECT action FROM migrate_log") if e[0] == "adopted"]
    again = bookshop.migrate("up", "--lock-wait", "60")
    assert again.code == 0, again.err
    assert again.out.startswith("Moving onto ")
    assert bookshop.migrate("status", "--check").code == 0
    actions = pg.fetch(url, "SELECT module, action FROM migrate_log ORDER BY module")
    assert actions == [(m, "adopted") for m in MODULES]


# a session of `application` holding a lock on alembic_version ("granted"), or waiting for one
WAITING = """
SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE a.application_name = $1 AND l.relation = to_regclass('alembic_version')
  AND l.granted = ($2 = 'granted')
"""


def test_a_squash_over_an_adopted_baseline_is_refused(bookshop: Project, legacy: Path) -> None:
    """With the other modules' baselines it replaces the old history: one module's squash
    cannot (a database at the old head would be left with nothing to move it)."""
    assert adopt(bookshop, legacy, *ASSIGN).returncode == 0
    bookshop.write_revision("accounts", "acc000000002", "op.execute('SELECT 1')")
    before = written_files(bookshop)
    result = bookshop.migrate("squash", "-b", "accounts")
    assert (result.code, result.out) == (2, "")
    assert "replaces the adopted history (" in result.err
    assert result.err.strip().endswith(
        "once no database is inside that history (migrate check says so), delete it and the "
        "manifest's `adopted:` key, then squash"
    )
    assert written_files(bookshop) == before


def test_static_lint_leaves_the_adopted_history_alone(bookshop: Project, legacy: Path) -> None:
    """Files kept only to carry databases through are not judged again without a database
    (they can never be edited); --all-revisions still takes them in."""
    assert adopt(bookshop, legacy, *ASSIGN).returncode == 0
    old = {p.stem for p in (legacy / "alembic" / "versions").glob("r*.py")}
    static = bookshop.migrate("lint", "--static", "--json", url=False)
    assert static.code == 0, static.out  # the baselines' findings are warnings
    assert not {f["revision"] for f in json.loads(static.out)["findings"]} & old
    every = bookshop.migrate("lint", "--static", "--all-revisions", "--json", url=False)
    assert every.code == 1  # renames and drops in the old history
    assert {f["revision"] for f in json.loads(every.out)["findings"]} & old
