"""Running a plan: the lock, verified database state, one logged transaction per revision.

What `up` and `down` share once they know their Alembic target (Django's executor).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, Connection

from shared.migrate import recorder
from shared.migrate.database import version_rows
from shared.migrate.errors import MigrateError, RevisionError
from shared.migrate.graph import Revision, ScriptGraph
from shared.migrate.manifest import Manifest
from shared.migrate.planner import Step
from shared.migrate.runner import check_lock, run_with_connection
from shared.migrate.translate import alembic_errors, server_message

OnStep = Callable[[Step], None]


@dataclass(frozen=True)
class RunResult:
    steps: list[Step]
    sql: str | None = None
    planned_only: bool = False
    skipped_unknown: bool = False


@dataclass(frozen=True)
class RunOptions:
    """How `up` and `down` run: --plan, --lock-wait, the session timeouts, --allow-unknown."""

    plan: bool = False
    lock_wait: float | None = None
    lock_timeout: str | None = None
    statement_timeout: str | None = None
    allow_unknown: bool = False
    on_step: OnStep | None = None

    def session(self, manifest: Manifest) -> dict[str, str]:
        settings = manifest.settings
        return {
            "lock_timeout": self.lock_timeout or settings.lock_timeout,
            "statement_timeout": self.statement_timeout or settings.statement_timeout,
        }


DEFAULT_OPTIONS = RunOptions()


class RevisionFailed(MigrateError):
    def __init__(self, revision: Revision, cause: BaseException, root: Path) -> None:
        outside = "autocommit_block" in revision.path.read_text(encoding="utf-8", errors="replace")
        hint = (
            "; its autocommit_block statements ran outside the transaction and stay applied: "
            "make them idempotent (IF NOT EXISTS) or undo them before running again"
            if outside
            else ""
        )
        super().__init__(
            f"module '{revision.module}' revision {revision.revision} "
            f"({revision.path.relative_to(root)}) failed: {_reason(cause)}; the revisions "
            f"before it are applied; fix the file and run the command again{hint}"
        )


class ChecksumMismatch(MigrateError):
    def __init__(self, module: str, message: str) -> None:
        super().__init__(message)
        self.module = module


def _reason(exc: BaseException) -> str:
    if not hasattr(exc, "orig"):
        return f"{type(exc).__name__}: {exc}"
    message = server_message(exc)
    if "statement timeout" in message or "lock timeout" in message:
        message += (
            " (raise it with --statement-timeout/--lock-timeout, or SET LOCAL in the revision)"
        )
    return message


def locked(
    url: URL,
    manifest: Manifest,
    command: str,
    work: Callable[[Connection], RunResult],
    options: RunOptions,
) -> RunResult:
    """Run `work` under the migration lock, with the session's timeouts."""
    settings = manifest.settings
    return run_with_connection(
        url,
        work,
        command=command,
        lock=settings.version_table,
        lock_wait=settings.lock_wait if options.lock_wait is None else options.lock_wait,
        settings=options.session(manifest),
    )


def verified_rows(
    graph: ScriptGraph, conn: Connection, allow_unknown: bool
) -> tuple[str, ...] | None:
    """The version rows, once the database is known to this code and no applied file changed.

    None when the database is at an unknown revision and --allow-unknown says to leave it be.
    """
    settings = graph.manifest.settings
    rows = version_rows(conn, settings.version_table)
    log = recorder.entries(conn, settings.log_table)
    conn.commit()  # end the reads' implicit transaction: each revision gets its own
    unknown = [r for r in rows if r not in graph.revisions]
    if unknown and allow_unknown:
        return None
    if unknown:
        raise RevisionError(
            f"the database is at revision {unknown[0]}, which no module's migrations contain "
            "(a newer build applied it?); deploy the code that has it, or pass --allow-unknown "
            "to start this build without migrating"
        )
    _verify_checksums(graph, graph.ancestors(rows), log)
    return rows


def _verify_checksums(graph: ScriptGraph, applied: set[str], log: list[recorder.LogEntry]) -> None:
    for revision, entry in sorted(recorder.applied_checksums(log).items()):
        info = graph.revisions.get(revision)
        if info is None or revision not in applied:
            continue
        now = recorder.checksum(info.path)
        if now != entry.checksum:
            raise ChecksumMismatch(
                info.module,
                f"module '{info.module}' revision {revision} "
                f"({info.path.relative_to(graph.manifest.root)}) changed after it was applied "
                f"(applied {entry.checksum[:12]}, file now {now[:12]}); revert the edit and put "
                "the change in a new revision",
            )


def execute(
    graph: ScriptGraph,
    conn: Connection,
    plan: list[Step],
    options: RunOptions,
    run: Callable[[], object],
) -> RunResult:
    """Show the plan (--plan, or nothing to do), or run the Alembic command that carries it out,
    logging each revision in its own transaction; on failure name the revision that failed."""
    if options.plan or not plan:
        return RunResult(steps=plan, planned_only=options.plan)
    on_step = options.on_step
    log_table = graph.manifest.settings.log_table
    recorder.ensure_table(conn, log_table)
    conn.commit()
    done: list[Step] = []
    started = time.monotonic()

    def applied(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        nonlocal started
        check_lock(conn)
        now = time.monotonic()
        direction = "up" if step.is_upgrade else "down"
        info = graph.revisions[step.up_revision_id]
        recorder.record(
            conn,
            log_table,
            module=info.module,
            revision=info.revision,
            direction=direction,
            checksum=recorder.checksum(info.path),
            duration_ms=int((now - started) * 1000),
        )
        event = Step(info.module, info.revision, info.message, direction, now - started)
        started = now
        done.append(event)
        if on_step:
            on_step(event)

    graph.config.attributes.update(
        connection=conn, load_models=False, configure={"on_version_apply": [applied]}
    )
    try:
        with alembic_errors():
            run()
    except MigrateError:
        raise
    except Exception as exc:
        conn.rollback()
        finished = {s.revision for s in done}
        failed = next((s for s in plan if s.revision not in finished), None)
        if failed is None:
            raise
        raise RevisionFailed(graph.revisions[failed.revision], exc, graph.manifest.root) from exc
    return RunResult(steps=done)


def offline(graph: ScriptGraph, destination: str | None) -> str:
    """The SQL `up` would run on an empty database, rendered without connecting."""
    if destination is None:
        return ""
    buffer = io.StringIO()
    graph.config.output_buffer = buffer
    graph.config.attributes["load_models"] = False
    with alembic_errors():
        graph.upgrade(destination, sql=True)
    return buffer.getvalue()
