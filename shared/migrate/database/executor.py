"""Running revisions: one transaction per revision, Alembic's operations inside it, and the
version rows and log entry written by the recorder's one statement before the commit
(Django's executor).

A revision is reported done only once its commit succeeded. The same executor renders offline
SQL (`up --sql`), so online and offline runs are the same plan. Everything here goes through
Alembic's and SQLAlchemy's public interfaces: the environment is configured with
`EnvironmentContext.configure`, a revision's transaction is `begin_transaction()`, and an
`autocommit_block()` is noticed through SQLAlchemy's `set_connection_execution_options` event.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from shared.migrate.database import recorder
from shared.migrate.database.holders import Holder
from shared.migrate.database.progress import Progress
from shared.migrate.database.session import Watch
from shared.migrate.database.translate import (
    is_lost_connection,
    lost_reason,
    server_message,
    sqlstate,
)
from shared.migrate.errors import ConfigError, MigrateError, shown
from shared.migrate.history.graph import Revision, RevisionGraph
from shared.migrate.history.plans import MOVE, Step
from shared.migrate.history.scripts import load_script

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
INSUFFICIENT_PRIVILEGE = "42501"
SYNTAX_ERROR = "42601"


class Writable(Protocol):
    """Where offline SQL goes: anything with write() (a StringIO, lint's capture)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


# where a revision stands while it runs (for what an interruption left behind)
RUNNING, IN_BLOCK, COMMITTING = "running", "autocommit block", "committing"


class RevisionFailed(MigrateError):
    """A revision that did not commit. The message says what is applied and what to do;
    `retryable`: it hit lock_timeout with nothing of it committed, and may be tried again."""

    def __init__(
        self,
        graph: RevisionGraph,
        step: Step,
        cause: BaseException,
        note: str,
        *,
        retryable: bool = False,
        locked: bool = False,
    ) -> None:
        info = graph.revisions[step.revision]
        where = f"module '{info.module}' revision {info.revision} ({graph.relative(info.path)})"
        self.where = where
        code = sqlstate(cause)
        self.reason = server_message(cause)
        self.retryable = retryable
        if is_lost_connection(cause):
            lock = " (and with it the migration lock)" if locked else ""
            why = lost_reason(cause)
            message = (
                f"lost the connection{lock} while running {where} ({why}); it was rolled "
                f"back; {note}; run the command again"
            )
        else:
            reason = (
                f"{type(cause).__name__}: {shown(str(cause), 300)}"
                if code is None and not hasattr(cause, "orig")
                else server_message(cause)
            )
            if code == QUERY_CANCELED:
                reason += (
                    " (raise it with --statement-timeout, or SET LOCAL statement_timeout in "
                    "the revision)"
                )
            elif code == SYNTAX_ERROR and "multiple commands" in reason:
                reason += (
                    " (asyncpg prepares each statement, and one prepared statement holds one "
                    "command: give each its own op.execute())"
                )
            message = f"{where} failed: {reason}; {note}"
            self.reason = reason
        super().__init__(message)
        self.module = info.module


def lock_timeout_note(blockers: list[Holder], attempts: int) -> str:
    waited = (
        "it waited on " + "; ".join(b.describe() for b in blockers[:3])
        if blockers
        else "the session holding the table lock had ended by the time it was looked up"
    )
    tries = f" (tried {attempts} times)" if attempts > 1 else ""
    return (
        f"a table lock was not free within lock_timeout{tries}; {waited}; nothing of this "
        "revision was applied; let that transaction finish (or end it), then run the command "
        "again, or allow more with --lock-timeout / --retries"
    )


class Executor:
    """Applies or unapplies revisions on one connection (or renders them as SQL)."""

    def __init__(
        self,
        graph: RevisionGraph,
        env: EnvironmentContext,
        rows: set[str],
        *,
        progress: Progress | None = None,
        watch: Watch | None = None,
    ) -> None:
        self.graph = graph
        self.env = env
        self.context: MigrationContext = env.get_context()
        self.rows = set(rows)  # the version table's rows as they are in the database now
        self.applied = graph.ancestors(rows)
        self.normal = graph.maximal(self.applied)  # the rows it should hold (none implied)
        self.progress = progress or Progress()
        self.watch = watch or Watch()
        self.settings = graph.manifest.settings
        self.done: list[Step] = []
        self.total = 0
        self.locked = False  # the session holds the migration lock (`up`, `down`)
        self.current: Step | None = None  # the revision in progress, if any
        self.phase: str | None = None  # RUNNING, IN_BLOCK or COMMITTING while it runs

    @classmethod
    def online(cls, conn: Connection, graph: RevisionGraph, rows: set[str], **kw: Any) -> Executor:
        """An executor on `conn`, each revision in a transaction of its own."""
        if conn.in_transaction():
            conn.commit()  # what was read before stays out of the first revision's transaction
        env = _environment(graph)
        env.configure(connection=conn, **_options(graph))
        return cls(graph, env, rows, **kw)

    @classmethod
    def offline(cls, graph: RevisionGraph, buffer: Writable, rows: set[str]) -> Executor:
        """An executor that writes each revision's SQL to `buffer` (`up --sql`)."""
        env = _environment(graph, as_sql=True)
        env.configure(
            dialect_name="postgresql",
            literal_binds=True,
            output_buffer=cast("TextIO", buffer),  # Alembic only calls write() and flush()
            **_options(graph),
        )
        return cls(graph, env, rows)

    # ---- the loop ------------------------------------------------------------------------

    def run(self, plan: list[Step]) -> list[Step]:
        """Every step of `plan`, in order, each tried once; what was done (with its time)."""
        self.total = len(plan)
        with self.contexts():
            return [self.step(step) for step in plan]

    @contextmanager
    def contexts(self) -> Iterator[None]:
        """Alembic's `op` and `context` as revision files expect them, for any number of
        `step` calls; and the watch for `autocommit_block()`."""
        from alembic.operations import Operations
        from sqlalchemy import event

        conn = self.context.connection
        with Operations.context(self.context), self.env:
            if conn is None or self.context.as_sql:  # offline
                yield
                return
            event.listen(conn, "set_connection_execution_options", self._options_set)
            try:
                yield
            finally:
                event.remove(conn, "set_connection_execution_options", self._options_set)

    def _options_set(self, conn: Connection, options: dict[str, Any]) -> None:
        """Alembic's autocommit_block() switches the connection to AUTOCOMMIT, having committed
        what the revision ran before it: from here on it cannot be rolled back whole."""
        if options.get("isolation_level") == "AUTOCOMMIT" and self.phase is not None:
            self.phase = IN_BLOCK

    def step(self, step: Step, attempt: int = 1) -> Step:
        """Apply or unapply one revision in its own transaction (inside `contexts()`): one
        attempt; RevisionFailed (`retryable` on a lock timeout) when it does not commit."""
        number = len(self.done) + 1
        total = max(self.total, number)
        if attempt == 1:
            self.progress.started(step, number, total)
        finished = self._apply(step, self._note(total), attempt)
        self.done.append(finished)
        self.progress.finished(finished, number, total)
        return finished

    def tidy(self) -> tuple[str, ...]:
        """Write the version rows no other row implies (one statement, its own transaction)."""
        change = recorder.record(self.rows, self.normal)
        if change:
            with self.context.begin_transaction():
                self._write(change)
            self.rows = set(self.normal)
        return change.gone

    def _note(self, total: int) -> str:
        done = len(self.done)
        if not done:
            return "no earlier revision of this run was committed"
        return f"the {done} revision(s) before it in this run are committed (of {total})"

    def _apply(self, step: Step, note: str, attempt: int) -> Step:
        if step.kind == MOVE:
            return self._move(step)
        info = self.graph.revisions[step.revision]
        fn = self._function(info, step.direction)
        rows = self._rows_after(step)
        # SQLAlchemy remembers, per DDL runner (Alembic's impl), which enum and domain types it
        # created; a revision run again after its downgrade must create them again
        self.context.impl.memo.clear()
        self.current, self.phase = step, RUNNING
        started = time.monotonic()
        self.watch.start()
        try:
            with self.context.begin_transaction():
                fn()
                entry = recorder.Entry(
                    info.module,
                    info.revision,
                    step.direction,
                    info.checksum,
                    int((time.monotonic() - started) * 1000),
                )
                self._write(recorder.record(self.rows, rows, (entry,)))
                if self.phase == RUNNING:
                    self.phase = COMMITTING
        except Exception as exc:
            self.watch.stop()
            in_block = self.phase == IN_BLOCK
            self.phase = None
            code = sqlstate(exc)
            if code == LOCK_NOT_AVAILABLE and not in_block:
                raise RevisionFailed(
                    self.graph,
                    step,
                    exc,
                    lock_timeout_note(self.watch.blockers, attempt) + "; " + note,
                    retryable=True,
                ) from exc
            if is_lost_connection(exc) and not in_block:  # what was committed; nothing to fix
                raise RevisionFailed(self.graph, step, exc, note, locked=self.locked) from exc
            note = failure_note(in_block, note, code) + _baseline_hint(info, code)
            raise RevisionFailed(self.graph, step, exc, note) from exc
        self.watch.stop()
        self.current = self.phase = None
        if step.direction == "up":
            self.applied.add(step.revision)
        else:
            self.applied.discard(step.revision)
        self.rows = self.normal = rows
        return replace(step, seconds=time.monotonic() - started)

    def _move(self, step: Step) -> Step:
        """Record the revisions of a move as applied, with no script run: the database ran
        all that they replace. Each one's kept catalog is checked first; a difference stops
        the move, and nothing changes."""
        graph = self.graph
        self.current, self.phase = step, RUNNING
        started = time.monotonic()
        with self.context.begin_transaction():
            if not self.context.as_sql:
                self._check_catalogs(step.together)
            after = self.applied | graph.ancestors(step.together)
            rows = graph.maximal(after)
            entries = tuple(
                recorder.Entry(
                    graph.revisions[name].module,
                    name,
                    "up",
                    graph.revisions[name].checksum,
                    action=self._move_action(name),
                    reason=f"replaces {_range(graph, name)}",
                )
                for name in step.together
            )
            self._write(recorder.record(self.rows, rows, entries))
            self.phase = COMMITTING
        self.current = self.phase = None
        self.applied, self.rows, self.normal = after, rows, rows
        return replace(step, seconds=time.monotonic() - started)

    def _move_action(self, name: str) -> str:
        adopted = self.graph.manifest.adopted
        tops = self.graph.revisions[name].replaces
        revisions = self.graph.revisions
        if adopted is not None and any(
            t in revisions and revisions[t].module == adopted.name for t in tops
        ):
            return "adopted"
        return "replaced"

    def _check_catalogs(self, names: tuple[str, ...]) -> None:
        conn = self.context.connection
        assert conn is not None
        for info, differences in kept_differences(conn, self.graph, names):
            raise MoveRefused(
                f"module '{info.module}': the database is not what revision {info.revision} "
                f"({self.graph.relative(info.path)}) builds, so it is not moved onto it: "
                f"{listed(differences)}; nothing was changed; make the database match (or fix "
                "the revision), then run the command again"
            )

    def _rows_after(self, step: Step) -> set[str]:
        """The version rows once `step` is done, worked out from the revision's own edges (a
        plan never skips a dependency, so this is exact)."""
        revision = step.revision
        info = self.graph.revisions[revision]
        above = {*info.parents, *info.depends_on}
        if step.direction == "up":
            return (self.normal - above) | {revision}
        applied, dependents = self.applied, self.graph.dependents
        uncovered = {
            p
            for p in above
            if p in applied and not any(d != revision and d in applied for d in dependents[p])
        }
        return (self.normal - {revision}) | uncovered

    def _function(self, info: Revision, direction: str) -> Callable[[], Any]:
        module = load_script(info.path, self.graph.manifest.root)
        name = "upgrade" if direction == "up" else "downgrade"
        fn: Callable[[], Any] | None = getattr(module, name, None)
        if not callable(fn):
            raise ConfigError(
                f"{self.graph.relative(info.path)}: revision {info.revision} has no {name}() "
                "function; add one"
            )
        return fn

    def _write(self, change: recorder.Record) -> None:
        if self.context.as_sql:
            for line in recorder.render(self.settings, change).splitlines(keepends=True):
                self.context.impl.static_output(line)
        else:
            conn = self.context.connection
            assert conn is not None
            recorder.write(conn, self.settings, change)


ALREADY_THERE = ("42P07", "42710", "42P06")  # duplicate table, object, schema


def _baseline_hint(info: Revision, code: str | None) -> str:
    """A baseline (a first revision written from a database) run on a database that has its
    objects already: what it wants is `baseline --mark`."""
    from shared.migrate.history.revisionfile import expected_path

    if code not in ALREADY_THERE or info.parents or info.replaces:
        return ""
    if not expected_path(info.path).is_file():
        return ""
    return (
        f"; revision {info.revision} is a baseline and this database has its objects already: "
        f"record it with `migrate baseline --mark -b {info.module}` (it checks them first)"
    )


def kept_differences(
    conn: Connection, graph: RevisionGraph, names: Iterable[str]
) -> list[tuple[Revision, list[str]]]:
    """Each of `names` whose kept catalog (`<file>.catalog.json`) the database on `conn`
    differs from, with how: what a move onto it, or `baseline --mark`, checks first."""
    from shared.migrate.database.catalog import Catalog, snapshot
    from shared.migrate.history.revisionfile import read_expected

    live: Catalog | None = None
    found = []
    for name in names:
        info = graph.revisions[name]
        kept = read_expected(info.path)
        if kept is None:
            continue
        live = live or snapshot(conn, bookkeeping_tables(graph.manifest.settings))
        expected = Catalog(frozenset(kept))
        differences = live.around(expected).difference(expected)
        if differences:
            found.append((info, differences))
    return found


def listed(differences: list[str], shown_at_most: int = 10) -> str:
    """Catalog differences for a one-line message: the first ones, and how many more."""
    more = len(differences) - shown_at_most
    return "; ".join(differences[:shown_at_most]) + (f" and {more} more" if more > 0 else "")


class MoveRefused(MigrateError):
    """A database that is not what the revisions it would be moved onto build."""


def _range(graph: RevisionGraph, name: str) -> str:
    """What a replacing revision replaces, for the log: how many, up to which."""
    tops = graph.revisions[name].replaces
    count = len(graph.replacing.get(name, ()))
    return f"{count} revision(s) up to {', '.join(tops)}"


def bookkeeping_tables(settings: Any) -> set[str]:
    schema = settings.version_table_schema or "public"
    return {f"{schema}.{settings.version_table}", f"{schema}.{settings.log_table}"}


def failure_note(in_block: bool, note: str, code: str | None = None) -> str:
    """What a revision that did not commit left behind, after `note` (what the run committed)."""
    if in_block:
        return (
            f"{note}; this revision's autocommit_block() committed the statements before "
            "it and inside it, and they stay applied, while the version table does not "
            "claim the revision: make them idempotent (IF NOT EXISTS) or undo them, then "
            "run the command again"
        )
    if code == INSUFFICIENT_PRIVILEGE:
        return (
            f"{note}; nothing of this revision was applied; the role running migrate lacks "
            "this privilege: run it as the owner of the schema and tables it changes (or "
            "grant what it needs), then run it again"
        )
    return f"{note}; nothing of this revision was applied; fix the file and run it again"


def _environment(graph: RevisionGraph, **kw: Any) -> EnvironmentContext:
    """Alembic's environment for the manifest: `from alembic import context` works inside
    revisions, as under plain alembic."""
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    from shared.migrate.history.config import build_config

    config = build_config(graph.manifest)
    return EnvironmentContext(config, ScriptDirectory.from_config(config), **kw)


def _options(graph: RevisionGraph) -> dict[str, Any]:
    settings = graph.manifest.settings
    # each begin_transaction() is one revision's transaction
    return {
        "version_table": settings.version_table,
        "version_table_schema": settings.version_table_schema,
    }


def render_sql(graph: RevisionGraph, plan: list[Step], rows: set[str], fresh: bool) -> str:
    """The SQL a plan runs, for a DBA (`up --sql`); `fresh`: it starts from an empty database."""
    settings = graph.manifest.settings
    buffer = io.StringIO()
    if fresh and plan:
        tables = recorder.create_tables(settings, version=False, log=False, log_current=False)
        buffer.write(tables.replace(";\n", ";\n\n") + ";\n\n")
    Executor.offline(graph, buffer, rows).run(plan)
    return buffer.getvalue()
