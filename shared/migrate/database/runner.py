"""Running a plan on the command's session (or, for modules in databases of their own, on each
database's session, steps one at a time in the plan's order): one revision at a time through the
executor, a revision that hit `lock_timeout` tried again after a backoff that SIGTERM cuts
short, and, when the run is interrupted, a true account of the revision that was in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.db.connect import connect
from shared.migrate.database import state
from shared.migrate.database.executor import COMMITTING, IN_BLOCK, Executor, RevisionFailed
from shared.migrate.database.progress import Progress
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.history.plans import Step

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

    from shared.migrate.database.session import Session

MAX_DELAY = 10.0  # seconds between two tries of a revision, at most


@dataclass(frozen=True)
class Ran:
    steps: list[Step]  # what was done, each with its time
    tidied: tuple[str, ...]  # version rows removed because another row implied them


@dataclass(frozen=True)
class Lane:
    """One database of the run: its session (whose lock the caller holds), its version rows,
    and the modules that live in it (None: every module)."""

    session: Session
    rows: set[str]
    modules: frozenset[str] | None = None


async def run_plan(
    session: Session,
    graph: RevisionGraph,
    rows: set[str],
    plan: list[Step],
    *,
    retries: int,
    progress: Progress,
) -> Ran:
    """Apply `plan` on the session (whose lock the caller holds), from the version rows `rows`;
    with no plan, only tidy the version table."""
    return await run_across([Lane(session, rows)], graph, plan, retries=retries, progress=progress)


async def run_across(
    lanes: Sequence[Lane],
    graph: RevisionGraph,
    plan: list[Step],
    *,
    retries: int,
    progress: Progress,
) -> Ran:
    """Apply `plan`, each step on the session of its module's database, one step at a time in
    the plan's order; with no plan, only tidy each version table. Alembic's `op` and `context`
    are process-wide: only the executor of the database whose step runs has them."""
    done: list[Step] = []  # one account across the databases: "revision n of N", what committed
    async with contextlib.AsyncExitStack() as stack:
        executors: list[tuple[AsyncConnection, Executor]] = []
        for lane in lanes:
            sa_conn = await stack.enter_async_context(lane.session.sqlalchemy())
            executor = await sa_conn.run_sync(_online, graph, lane, progress)
            executor.done, executor.total = done, len(plan)
            executor.locked = True  # the caller holds each database's migration lock
            executors.append((sa_conn, executor))
        if not plan:
            tidied: list[str] = []
            for sa_conn, executor in executors:
                with executor.contexts():
                    tidied += await sa_conn.run_sync(_tidy, executor)
            return Ran([], tuple(sorted(tidied)))
        # tidied by each database's first commit (a replaced revision's row is a move's to clear)
        implied = sorted(
            {
                r
                for lane, (_, e) in zip(lanes, executors, strict=True)
                for r in lane.rows - e.normal
                if r not in graph.replaced
            }
        )
        lane_of = {
            module: index
            for index, lane in enumerate(lanes)
            for module in (lane.modules if lane.modules is not None else {s.module for s in plan})
        }
        running: int | None = None
        with contextlib.ExitStack() as entered:
            try:
                for step in plan:
                    index = lane_of[step.module]
                    if index != running:  # the executor of this step's database takes op/context
                        entered.close()
                        entered.enter_context(executors[index][1].contexts())
                        running = index
                    await _step(*executors[index], step, retries, progress)
            except asyncio.CancelledError:
                assert running is not None
                said = await _interrupted(lanes[running].session, executors[running][1])
                raise asyncio.CancelledError(said) from None
        return Ran(done, tuple(implied))


async def _step(
    sa_conn: AsyncConnection, executor: Executor, step: Step, retries: int, progress: Progress
) -> None:
    attempt = 1
    while True:
        try:
            await sa_conn.run_sync(_one_try, executor, step, attempt)
            return
        except RevisionFailed as exc:
            if not exc.retryable or attempt > retries:
                raise
        delay = min(0.5 * 2 ** (attempt - 1), MAX_DELAY) * random.uniform(0.8, 1.2)
        progress.retrying(step, attempt, retries, delay, executor.watch.blockers)
        await asyncio.sleep(delay)  # a SIGTERM ends the wait (a blocking sleep would not)
        attempt += 1


def _online(conn: Connection, graph: RevisionGraph, lane: Lane, progress: Progress) -> Executor:
    return Executor.online(conn, graph, lane.rows, progress=progress, watch=lane.session.watch)


def _tidy(conn: Connection, executor: Executor) -> tuple[str, ...]:
    return executor.tidy()


def _one_try(conn: object, executor: Executor, step: Step, attempt: int) -> Step:
    return executor.step(step, attempt)


async def _interrupted(session: Session, executor: Executor) -> str:
    """What became of the revision in progress when the run was cancelled (SIGTERM)."""
    step, phase = executor.current, executor.phase
    count = len(executor.done)
    if step is None or phase is None:
        done = (
            f"{count} revision(s) of this run are committed" if count else "nothing was committed"
        )
        return f"no revision was in progress; {done}"
    # what the revisions before the one in progress left: never "nothing of this run", which
    # an autocommit_block() or a commit of the one in progress would contradict
    before = (
        f"{count} earlier revision(s) of this run are committed"
        if count
        else "no earlier revision of this run was committed"
    )
    where = f"revision {step.revision} of module '{step.module}'"
    if phase == IN_BLOCK:
        return (
            f"{where} had entered its autocommit_block(): the statements before it and in it "
            "are committed, while the version table does not claim the revision; make them "
            f"idempotent (IF NOT EXISTS) or undo them, then run the command again; {before}"
        )
    if phase == COMMITTING:
        outcome = await _committed(session, executor.graph, step)
        if outcome is None:
            return (
                f"{where} was committing and whether it was committed could not be read; "
                f"`migrate status` shows it; {before}"
            )
        if outcome:
            return f"{where} was committed just before; {before}"
    return f"{where} was rolled back; {before}"


async def _committed(session: Session, graph: RevisionGraph, step: Step) -> bool | None:
    """Whether `step` committed: read on a connection of its own once the session's backend,
    whose COMMIT was cut short, has ended (it commits or rolls back as it ends)."""
    pid = await session.backend_pid()  # known since the run began (not the pooler's)
    session.conn.terminate()
    try:
        reader = await connect(session.url, application_name=f"migrate {session.command}")
    except Exception:
        return None
    try:
        if not await _ended(reader, pid, 1.0):  # a pooler may keep it running: end it
            await reader.execute("SELECT pg_terminate_backend($1)", pid)
            if not await _ended(reader, pid, 5.0):
                return None
        db = await state.read_state(reader, graph.manifest.settings, also=tuple(graph.replacing))
        applied = db.applied(graph)
        return (step.revision in applied) == (step.direction == "up")
    except Exception:
        return None
    finally:
        await reader.close(timeout=2)


async def _ended(conn: asyncpg.Connection, pid: int, seconds: float) -> bool:
    """Whether the backend `pid` is done with the session it served, waiting up to `seconds`:
    gone, or (behind a pooler) handed to `conn`, which it is only once that session ended."""
    deadline = time.monotonic() + seconds
    while await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND pid <> pg_backend_pid()", pid
    ):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
