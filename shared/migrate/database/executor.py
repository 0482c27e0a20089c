"""Running a plan: one transaction per revision, Alembic's operations inside it, and the
version rows and log entry written by one statement before the commit (Django's executor).

A revision is reported done only once its commit succeeded. A statement that hits
`lock_timeout` is retried, with backoff, a bounded number of times. The same loop renders
offline SQL (`up --sql`), so online and offline runs are the same plan.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from shared.migrate.database import recorder
from shared.migrate.database.progress import Progress
from shared.migrate.database.session import Holder, Watch
from shared.migrate.database.translate import server_message, sqlstate
from shared.migrate.errors import ConfigError, MigrateError, shown
from shared.migrate.history.graph import Revision, RevisionGraph
from shared.migrate.history.plans import Step
from shared.migrate.history.scripts import load_script

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
INSUFFICIENT_PRIVILEGE = "42501"
CONNECTION_LOST = ("08003", "08006", "57P01", "57P02", "57P03")


class RevisionFailed(MigrateError):
    """A revision that did not commit. The message says what is applied and what to do."""

    def __init__(self, graph: RevisionGraph, step: Step, cause: BaseException, note: str) -> None:
        info = graph.revisions[step.revision]
        where = f"module '{info.module}' revision {info.revision} ({graph.relative(info.path)})"
        code = sqlstate(cause)
        self.reason = server_message(cause)
        if code in CONNECTION_LOST or _is_connection_error(cause):
            message = (
                f"lost the connection (and with it the migration lock) while running {where}: "
                f"{server_message(cause)}; it was rolled back; {note}; run the command again"
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
        context: MigrationContext,
        rows: set[str],
        *,
        retries: int = 0,
        progress: Progress | None = None,
        watch: Watch | None = None,
    ) -> None:
        self.graph = graph
        self.context = context
        self.rows = set(rows)  # the version table's rows as they are in the database now
        self.applied = graph.ancestors(rows)
        self.normal = graph.maximal(self.applied)  # the rows it should hold (none implied)
        self.retries = retries
        self.progress = progress or Progress()
        self.watch = watch or Watch()
        self.settings = graph.manifest.settings
        self.done: list[Step] = []
        self.total = 0
        self._block = _Block()
        self._record_sql: Any = None

    # ---- the loop ------------------------------------------------------------------------

    def run(self, plan: list[Step]) -> list[Step]:
        """Every step of `plan`, in order; what was done (each with its time)."""
        self.total = len(plan)
        with self.contexts():
            return [self.step(step) for step in plan]

    @contextmanager
    def contexts(self) -> Iterator[None]:
        """Alembic's `op` and `context` as revision files expect them, for any number of
        `step` calls."""
        from alembic.operations import Operations

        with Operations.context(self.context), self._environment(), self._tracking():
            yield

    def step(self, step: Step) -> Step:
        """Apply or unapply one revision in its own transaction (inside `contexts()`)."""
        number = len(self.done) + 1
        total = max(self.total, number)
        self.progress.started(step, number, total)
        finished = self._apply(step, self._note(total))
        self.done.append(finished)
        self.progress.finished(finished, number, total)
        return finished

    def tidy(self) -> tuple[str, ...]:
        """Write the version rows no other row implies (one statement, its own transaction)."""
        gone, added = self._row_changes(self.normal)
        if gone or added:
            conn = self._connection()
            conn.execute(self._statement(_TIDY), {"gone": sorted(gone), "added": sorted(added)})
            conn.commit()
            self.rows = (self.rows - gone) | added
        return tuple(sorted(gone))

    def _note(self, total: int) -> str:
        done = len(self.done)
        if not done:
            return "no earlier revision of this run was committed"
        return f"the {done} revision(s) before it in this run are committed (of {total})"

    def _apply(self, step: Step, note: str) -> Step:
        info = self.graph.revisions[step.revision]
        fn = self._function(info, step.direction)
        rows = self._rows_after(step)
        block = self._block
        attempt = 0
        while True:
            # SQLAlchemy remembers, per DDL runner (Alembic's impl), which enum and domain
            # types it created; a revision run again after its downgrade must create them again
            self.context.impl.memo.clear()
            block.entered = False
            started = time.monotonic()
            self.watch.start()
            try:
                with self.context.begin_transaction(_per_migration=True):
                    fn()
                    self._record(info, step.direction, rows, started)
            except Exception as exc:
                self.watch.stop()
                if sqlstate(exc) == LOCK_NOT_AVAILABLE and not block.entered:
                    if attempt < self.retries:
                        attempt += 1
                        delay = min(0.5 * 2 ** (attempt - 1), 10.0) * random.uniform(0.8, 1.2)
                        self.progress.retrying(
                            step, attempt, self.retries, delay, self.watch.blockers
                        )
                        time.sleep(delay)
                        continue
                    raise RevisionFailed(
                        self.graph,
                        step,
                        exc,
                        lock_timeout_note(self.watch.blockers, attempt + 1) + "; " + note,
                    ) from exc
                raise RevisionFailed(
                    self.graph, step, exc, self._failure_note(block, note, sqlstate(exc))
                ) from exc
            self.watch.stop()
            if step.direction == "up":
                self.applied.add(step.revision)
            else:
                self.applied.discard(step.revision)
            self.rows = self.normal = rows
            return replace(step, seconds=time.monotonic() - started)

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

    def _failure_note(self, block: _Block, note: str, code: str | None) -> str:
        if block.entered:
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

    # ---- the version table and the log -----------------------------------------------------

    def _row_changes(self, rows: set[str]) -> tuple[set[str], set[str]]:
        return self.rows - rows, rows - self.rows

    def _record(self, info: Revision, direction: str, rows: set[str], started: float) -> None:
        gone, added = self._row_changes(rows)
        params = recorder.record_params(
            gone=sorted(gone),
            added=sorted(added),
            module=info.module,
            revision=info.revision,
            direction=direction,
            checksum=info.checksum,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        if self.context.as_sql:
            self._render_record(params)
            return
        if self._record_sql is None:
            self._record_sql = self._statement(recorder.record_statement(self.settings))
        self._connection().execute(self._record_sql, params)

    def _statement(self, sql: str) -> Any:
        from sqlalchemy import text

        vt = self.settings.qualified(self.settings.version_table)
        return text(sql.replace("{vt}", vt))

    def _connection(self) -> Connection:
        conn = self.context.connection
        assert conn is not None
        return conn

    def _render_record(self, params: dict[str, Any]) -> None:
        vt = self.settings.qualified(self.settings.version_table)
        lt = self.settings.qualified(self.settings.log_table)
        out = self.context.impl.static_output
        for rev in params["gone"]:
            out(f"DELETE FROM {vt} WHERE version_num = {_literal(rev)};\n")
        for rev in params["added"]:
            out(f"INSERT INTO {vt} (version_num) VALUES ({_literal(rev)});\n")
        values = ", ".join(
            _literal(params[k]) for k in ("module", "revision", "direction", "checksum")
        )
        out(
            f"INSERT INTO {lt} (module, revision, direction, checksum, duration_ms, host, "
            f"os_user, reason) VALUES ({values}, 0, 'offline SQL', current_user, "
            "'applied from the output of migrate up --sql');\n"
        )

    # ---- Alembic's context, as revision files expect it --------------------------------

    @contextmanager
    def _environment(self) -> Iterator[None]:
        """`from alembic import context` works inside revisions, as under plain alembic."""
        from alembic.runtime.environment import EnvironmentContext
        from alembic.script import ScriptDirectory

        from shared.migrate.history.config import build_config

        config = build_config(self.graph.manifest)
        env = EnvironmentContext(config, ScriptDirectory.from_config(config))
        with env:
            env._migration_context = self.context
            yield

    @contextmanager
    def _tracking(self) -> Iterator[None]:
        """Note when a revision enters autocommit_block(): Alembic commits what the revision
        ran before it right there, so a failure after it cannot be rolled back whole."""
        original = type(self.context).autocommit_block
        block = self._block

        @contextmanager
        def tracked() -> Iterator[None]:
            block.entered = True
            with original(self.context):
                yield

        self.context.autocommit_block = tracked  # type: ignore[method-assign]
        try:
            yield
        finally:
            self.context.__dict__.pop("autocommit_block", None)


@dataclass
class _Block:
    entered: bool = False


_TIDY = (
    "WITH gone AS (DELETE FROM {vt} WHERE version_num = ANY(CAST(:gone AS text[]))) "
    "INSERT INTO {vt} (version_num) SELECT unnest(CAST(:added AS text[]))"
)


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _is_connection_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if (
            type(seen).__name__
            in (
                "ConnectionDoesNotExistError",
                "InterfaceError",
                "ConnectionResetError",
                "ConnectionFailureError",
            )
            and "connection" in str(seen).lower()
        ):
            return True
        if getattr(seen, "connection_invalidated", False):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def online_context(conn: Connection, graph: RevisionGraph) -> MigrationContext:
    from alembic.runtime.migration import MigrationContext

    settings = graph.manifest.settings
    if conn.in_transaction():
        conn.commit()  # each revision gets a transaction of its own
    return MigrationContext.configure(
        connection=conn,
        opts={
            "transaction_per_migration": True,
            "version_table": settings.version_table,
            "version_table_schema": settings.version_table_schema,
        },
    )


def offline_context(graph: RevisionGraph, buffer: Any) -> MigrationContext:
    """Alembic's offline mode, writing each statement to `buffer` (`up --sql`, lint)."""
    from alembic.runtime.migration import MigrationContext

    settings = graph.manifest.settings
    return MigrationContext.configure(
        dialect_name="postgresql",
        opts={
            "as_sql": True,
            "literal_binds": True,
            "output_buffer": buffer,
            "transaction_per_migration": True,
            "version_table": settings.version_table,
            "version_table_schema": settings.version_table_schema,
        },
    )


def render_sql(graph: RevisionGraph, plan: list[Step], rows: set[str], fresh: bool) -> str:
    """The SQL a plan runs, for a DBA (`up --sql`); `fresh`: it starts from an empty database."""
    settings = graph.manifest.settings
    buffer = io.StringIO()
    context = offline_context(graph, buffer)
    if fresh and plan:
        tables = recorder.create_tables(settings, version=False, log=False, log_current=False)
        buffer.write(tables.replace(";\n", ";\n\n") + ";\n\n")
    Executor(graph, context, rows).run(plan)
    return buffer.getvalue()
