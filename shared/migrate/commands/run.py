"""`up`, `down` and `resolve`: the verbs that move a database, under the migration lock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from shared.migrate import planner
from shared.migrate.database import recorder, state
from shared.migrate.database.progress import Progress
from shared.migrate.database.session import (
    Session,
    run_session,
    session_settings,
)
from shared.migrate.database.target import Target
from shared.migrate.errors import (
    ConfigError,
    MigrateError,
    RevisionError,
    checksum_changed,
    shown,
)
from shared.migrate.history import expressions, plans
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.history.plans import Step
from shared.migrate.manifest import Module

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions:
    """How `up`, `down` and `resolve` run: --plan, --lock-wait, the session timeouts,
    --retries, --allow-unknown, and who hears about progress."""

    plan: bool = False
    lock_wait: float | None = None
    lock_timeout: float | None = None
    statement_timeout: float | None = None
    retries: int | None = None
    allow_unknown: bool = False
    progress: Progress = field(default_factory=Progress)


@dataclass(frozen=True)
class RunResult:
    steps: list[Step]
    sql: str | None = None
    planned_only: bool = False
    skipped_unknown: bool = False
    tidied: tuple[str, ...] = ()  # version rows removed because another row implied them


DEFAULT_OPTIONS = RunOptions()


class ChecksumMismatch(MigrateError):
    def __init__(self, module: str, message: str) -> None:
        super().__init__(message)
        self.module = module


# ---- up / down / resolve -------------------------------------------------------------------


def up(
    target: Target,
    branch: str | None = None,
    revision: str | None = None,
    *,
    sql: bool = False,
    start: str | None = None,
    options: RunOptions = DEFAULT_OPTIONS,
) -> RunResult:
    """`migrate up`: every module to its head, or one module (and its dependencies), or to R.
    With `sql`, the SQL from an empty database (or from `start`) without connecting."""
    manifest = target.manifest
    graph = load_graph(manifest)
    module = manifest.module(branch) if branch else None
    if revision is None:  # every head, or the module's, never two; what a head needs comes
        # from its revisions' ancestry, whatever heads the modules it depends on have
        wanted = [module] if module else list(manifest.modules)
        default = {head for m in wanted if (head := graph.head(m))}
    if sql:
        reached = graph.reached(_revisions(graph, start), lambda _: True) if start else set()
        applied = graph.applied(reached)
        targets = planner.up_targets(graph, revision, module, applied) if revision else default
        plan = plans.upgrade_plan(graph, reached, targets)
        from shared.migrate.database.executor import render_sql

        text = render_sql(graph, plan, graph.maximal(reached), fresh=not start)
        return RunResult(steps=plan, sql=text)
    if start:
        raise ConfigError("--from only goes with --sql; a live database says where it is")

    async def work(session: Session, db: state.DatabaseState) -> RunResult:
        unknown = db.unknown_rows(graph)
        if unknown and options.allow_unknown:
            return RunResult(steps=[], skipped_unknown=True)
        _refuse_unknown(unknown, db)
        applied = db.applied(graph)
        db = await _verified(session, graph, db, applied)
        targets = planner.up_targets(graph, revision, module, applied) if revision else default
        plan = plans.upgrade_plan(graph, db.reached(graph), targets)
        return await _execute(session, graph, db, plan, options)

    return _migrating(
        target, "up", options, work, lock=not options.plan, also=tuple(graph.replacing)
    )


def down(
    target: Target,
    branch: str | None = None,
    revision: str | None = None,
    *,
    cascade: bool = False,
    options: RunOptions = DEFAULT_OPTIONS,
) -> RunResult:
    """`migrate down`: one revision back in a module, or down to R; dependents need --cascade."""
    manifest = target.manifest
    graph = load_graph(manifest)

    async def work(session: Session, db: state.DatabaseState) -> RunResult:
        _refuse_unknown(db.unknown_rows(graph), db, "down")
        applied = db.applied(graph)
        db = await _verified(session, graph, db, applied)
        if not db.complete:  # which revision was applied last, for every one a step may take
            db = await state.read_state(session.conn, manifest.settings, full=True)
        named = branch or (revision.partition("@")[0] if revision and "@" in revision else None)
        module = _down_module(graph, applied, named or _module_of(graph, revision))
        if module is None:
            return RunResult(steps=[])
        moves = _moves_before_down(graph, db)
        removed = planner.down_removals(graph, revision, module, applied, db.recency())
        plan = plans.removal_plan(graph, applied, removed)
        others = [s for s in plan if s.module != module.name]
        if others and not cascade:
            raise RevisionError(
                f"rolling back module '{module.name}' would also roll back "
                + ", ".join(f"{s.module} {s.revision}" for s in others)
                + " which depend on it; roll those back first or pass --cascade"
            )
        return await _execute(session, graph, db, [*moves, *plan] if plan else [], options)

    return _migrating(
        target, "down", options, work, lock=not options.plan, also=tuple(graph.replacing)
    )


@dataclass(frozen=True)
class Resolution:
    action: str  # accept, applied, rolled back
    revisions: tuple[str, ...]


def resolve(
    target: Target,
    *,
    accept: str | None = None,
    applied: str | None = None,
    rolled_back: str | None = None,
    reason: str,
    options: RunOptions = DEFAULT_OPTIONS,
) -> Resolution:
    """`migrate resolve`: after a mistake, record that an edited applied file is accepted, or
    that a revision was applied or rolled back by hand. Under the lock; nothing else changes."""
    chosen = [
        (k, v)
        for k, v in (("accept", accept), ("applied", applied), ("rolled back", rolled_back))
        if v
    ]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --accept REV, --applied REV, --rolled-back REV")
    if not reason.strip():
        raise ConfigError("--reason is required: say why, it is kept in the log")
    action, expression = chosen[0]
    graph = load_graph(target.manifest)
    try:
        revision = expressions.resolve(graph, expression, None)
    except RevisionError:
        if action != "rolled back":
            raise
        revision = None  # a discarded revision, maybe: the version table says, under the lock

    async def work(session: Session, db: state.DatabaseState) -> Resolution:
        from shared.migrate.database.resolution import apply_resolution

        db = await state.read_state(session.conn, target.manifest.settings, full=True)
        chosen = revision or _unknown_row(graph, db, expression)
        if action != "rolled back":
            _refuse_unknown(db.unknown_rows(graph), db, "resolve")
        return Resolution(
            action, await apply_resolution(session, graph, db, action, chosen, reason.strip())
        )

    return _migrating(target, "resolve", options, work, lock=True)


@dataclass(frozen=True)
class Reset:
    database: str  # host:port/name, for the message
    dropped: tuple[str, ...]  # the schemas dropped


def reset(
    target: Target, *, database: str | None = None, options: RunOptions = DEFAULT_OPTIONS
) -> Reset:
    """`migrate reset`: drop everything in a development database (the CLI then runs `up`).
    Only a database on this machine, or one named with `database`."""
    from shared.migrate.database import reset as resetting

    url = target.url
    if database is not None and database != url.database:
        raise ConfigError(
            f"--database names '{shown(database)}' but the database URL points at "
            f"'{shown(url.database or '')}' ({url.display()}); name the database it points at"
        )
    if database is None and not resetting.is_local(url):
        raise ConfigError(
            f"migrate reset drops everything in {url.display()}, which is not on this machine; "
            f"to go on, name the database: migrate reset --database {shown(url.database or '')}"
        )

    async def work(session: Session, db: state.DatabaseState) -> tuple[str, ...]:
        return tuple(await resetting.empty(session.conn))

    return Reset(url.display(), _migrating(target, "reset", options, work, lock=True))


def _migrating(
    target: Target,
    command: str,
    options: RunOptions,
    work: Callable[[Session, state.DatabaseState], Awaitable[T]],
    *,
    lock: bool,
    also: tuple[str, ...] = (),
) -> T:
    """Open the session with the migration's timeouts, take the lock, read the state, work."""
    settings = target.manifest.settings
    lock_timeout = settings.lock_timeout if options.lock_timeout is None else options.lock_timeout
    statement_timeout = (
        settings.statement_timeout
        if options.statement_timeout is None
        else options.statement_timeout
    )
    wait = settings.lock_wait if options.lock_wait is None else options.lock_wait

    async def run(session: Session) -> T:
        session.watch.threshold = max(0.05, min(1.0, lock_timeout / 2)) if lock_timeout else 1.0
        if lock:
            await session.lock(settings, wait, options.progress.waiting)
        db = await state.read_state(session.conn, settings, also=also)
        return await work(session, db)

    return run_session(
        target.url, command, run, settings=session_settings(lock_timeout, statement_timeout)
    )


def under_lock(
    target: Target,
    command: str,
    work: Callable[[Session, state.DatabaseState], Awaitable[T]],
    lock_wait: float | None = None,
) -> T:
    """`work` on a session that holds the migration lock (`baseline --mark`), as up's."""
    return _migrating(target, command, RunOptions(lock_wait=lock_wait), work, lock=True)


def _moves_before_down(graph: RevisionGraph, db: state.DatabaseState) -> list[Step]:
    """A database at the top of a replaced range is moved onto what replaced it before a
    step down; one inside a range (it ran only some of it) cannot go down from there."""
    reached = db.reached(graph)
    moves = plans.moves(graph, reached)
    moved = {name for step in moves for name in step.together}
    partly = sorted(graph.inside(reached) - moved)
    if partly:
        at = ", ".join(r for r in db.known_rows(graph) if r in graph.replaced)
        raise RevisionError(
            f"the database is inside the revisions that {partly[0]} replaces (at {at}); run "
            "`migrate up` first: it runs the rest of them and moves the database onto it"
        )
    return moves


async def _execute(
    session: Session,
    graph: RevisionGraph,
    db: state.DatabaseState,
    plan: list[Step],
    options: RunOptions,
) -> RunResult:
    """Show the plan, or run it one committed revision at a time."""
    rows = set(db.known_rows(graph))
    untidy = bool(graph.implied(rows, graph.ancestors(rows)))
    if options.plan or not (plan or untidy):
        return RunResult(steps=plan, planned_only=options.plan)
    from shared.migrate.database.runner import run_plan

    settings = graph.manifest.settings
    await recorder.ensure_tables(session.conn, settings, db)
    retries = settings.lock_retries if options.retries is None else options.retries
    ran = await run_plan(session, graph, rows, plan, retries=retries, progress=options.progress)
    return RunResult(steps=ran.steps, tidied=ran.tidied)


def _unknown_row(graph: RevisionGraph, db: state.DatabaseState, text: str) -> str:
    """A version row the code does not know, named by its id or the first characters of it
    (`resolve --rolled-back` of a discarded revision); else the usual unknown-revision error."""
    found = [r for r in db.unknown_rows(graph) if r.startswith(text.strip())]
    if len(found) == 1 and text.strip():
        return found[0]
    return expressions.resolve(graph, text, None)  # raises, naming what was given


def _refuse_unknown(unknown: list[str], db: state.DatabaseState, command: str = "up") -> None:
    if unknown:
        owner = db.log[unknown[0]].module if unknown[0] in db.log else None
        by = f"module '{owner}' applied it, says the log; " if owner else ""
        fix = (
            "deploy the code that has it, or pass --allow-unknown to start this build without "
            "migrating"
            if command == "up"
            else f"run `migrate {command}` from the code that has it"
        )
        raise RevisionError(
            f"the database is at revision {unknown[0]}, which no module's migrations contain "
            f"({by}a newer build?); {fix}; a discarded revision on a development database: "
            f"migrate resolve --rolled-back {unknown[0]} --reason '...', or start over with "
            "migrate reset"
        )


async def _verified(
    session: Session, graph: RevisionGraph, db: state.DatabaseState, applied: set[str]
) -> state.DatabaseState:
    """The state, once no applied revision's file changed since it was applied: by the digest
    when it matches, else entry by entry from the whole log."""
    if db.complete or not db.matches(graph, applied):
        if not db.complete:
            db = await state.read_state(session.conn, graph.manifest.settings, full=True)
        _verify_checksums(graph, db, applied)
    return db


def _verify_checksums(graph: RevisionGraph, db: state.DatabaseState, applied: set[str]) -> None:
    revisions = graph.revisions
    for revision, entry in db.log.items():
        info = revisions.get(revision)
        if info is None or entry.checksum == info.checksum or entry.direction != "up":
            continue
        if revision in applied and not recorder.matches(entry.checksum, info.path, info.checksum):
            where = graph.relative(info.path)
            raise ChecksumMismatch(
                info.module,
                f"module '{info.module}' "
                + checksum_changed(revision, where, entry.checksum, info.checksum),
            )


def _revisions(graph: RevisionGraph, text: str) -> set[str]:
    """`--from R[,R2]` (or Alembic's `R:` form): where the database is said to be."""
    found = set()
    for part in text.removesuffix(":").split(","):
        if part.strip():
            expression = expressions.parse(graph, part.strip(), None)
            if expression.text in ("head", "heads"):
                found |= {
                    h
                    for m in ([expression.module] if expression.module else graph.manifest.modules)
                    if (h := graph.head(m))
                }
            elif expression.text != "base":
                found.add(expressions.resolve(graph, expression.text, expression.module))
    return found


def _module_of(graph: RevisionGraph, revision: str | None) -> str | None:
    """The module a `--revision` names by its id (or a unique prefix of it), if it does."""
    if not revision or revision in ("base", "head", "heads") or revision[0] in "+-":
        return None
    return graph.revisions[expressions.resolve(graph, revision, None)].module


def _down_module(graph: RevisionGraph, applied: set[str], branch: str | None) -> Module | None:
    manifest = graph.manifest
    if branch:
        return manifest.module(branch)
    started = [
        m.name for m in manifest.modules if any(r in applied for r in graph.members.get(m.name, []))
    ]
    if len(started) > 1:
        raise ConfigError(
            f"several modules have applied revisions ({', '.join(started)}); name one with --branch"
        )
    return manifest.module(started[0]) if started else None
