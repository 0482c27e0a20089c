"""`up`, `down` and `resolve`: the verbs that move a database, under the migration lock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from shared.migrate import planner
from shared.migrate.database import recorder, state
from shared.migrate.database.progress import Progress
from shared.migrate.database.session import (
    Session,
    run_async,
    run_session,
    session_settings,
    with_session,
    with_sessions,
)
from shared.migrate.database.target import Placement, Target
from shared.migrate.database.translate import database_errors
from shared.migrate.errors import (
    ConfigError,
    MigrateError,
    RevisionError,
    checksum_changed,
    shown,
)
from shared.migrate.history import expressions, plans
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.history.plans import Step
from shared.migrate.manifest import Manifest, Module

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from shared.migrate.database.holders import Holder


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
    With `sql`, the SQL from an empty database (or from `start`) without connecting. Modules in
    databases of their own: every database of the scope locked (in one global order), the
    steps in the graph's order, each on its module's database."""
    manifest = target.manifest
    graph = target.graph()
    module = manifest.module(branch) if branch else None
    scope = manifest.dependency_closure(module.name) if module else list(manifest.modules)
    target.refuse_owned_schemas(scope)
    _refuse_blank(revision)
    if revision is None:  # every head, or the module's, never two; what a head needs comes
        # from its revisions' ancestry, whatever heads the modules it depends on have
        wanted = [module] if module else list(manifest.modules)
        default = {head for m in wanted if (head := graph.head(m))}
    if sql:
        reached = graph.reached(_revisions(graph, start), lambda _: True) if start else set()
        applied = graph.applied(reached)
        targets = planner.up_targets(graph, revision, module, applied) if revision else default
        plan = plans.upgrade_plan(graph, reached, targets)
        return RunResult(steps=plan, sql=_sql(graph, plan, reached, fresh=not start))
    if start:
        raise ConfigError("--from only goes with --sql; a live database says where it is")

    async def work(opened: list[Opened]) -> RunResult:
        unknown = [r for o in opened for r in o.db.unknown_rows(graph)]
        if unknown and options.allow_unknown:
            return RunResult(steps=[], skipped_unknown=True)
        for o in opened:
            _refuse_unknown(o.db.unknown_rows(graph), o.db)
        await _refuse_unmoved(target, graph, opened)
        reached = {r for o in opened for r in o.reached(graph)}
        applied = graph.applied(reached)
        opened = [await o.verified(graph) for o in opened]
        targets = planner.up_targets(graph, revision, module, applied) if revision else default
        plan = plans.upgrade_plan(graph, reached, targets)
        return await _execute(opened, graph, plan, options)

    return _migrating(target, "up", options, work, lock=not options.plan, modules=scope, also=graph)


def _refuse_blank(revision: str | None) -> None:
    """`-r ""` (a deploy script's unset variable) names no revision: never read as "all"."""
    if revision is not None and not revision.strip():
        raise ConfigError(
            "--revision is empty; give a revision (an id or prefix, X@head, heads, base, +1, "
            "-1), or leave the option out"
        )


def down(
    target: Target,
    branch: str | None = None,
    revision: str | None = None,
    *,
    cascade: bool = False,
    options: RunOptions = DEFAULT_OPTIONS,
) -> RunResult:
    """`migrate down`: one revision back in a module, or down to R; dependents need --cascade.
    A module in a database of its own is rolled back there (what depends on it across
    databases only ordered the runs, and stays)."""
    manifest = target.manifest
    graph = target.graph()
    _refuse_blank(revision)
    named = branch or (revision.partition("@")[0] if revision and "@" in revision else None)
    named = named or _module_of(graph, revision)
    scope = _down_scope(manifest, named)
    target.refuse_owned_schemas(scope)

    async def work(opened: list[Opened]) -> RunResult:
        for o in opened:
            _refuse_unknown(o.db.unknown_rows(graph), o.db, "down")
        await _refuse_unmoved(target, graph, opened)
        reached = {r for o in opened for r in o.reached(graph)}
        applied = graph.applied(reached)
        opened = [await o.verified(graph, full=True) for o in opened]
        module = _down_module(graph, applied, named)
        if module is None:
            return RunResult(steps=[])
        moves = _moves_before_down(graph, reached, opened)
        recency = {rev: n for o in opened for rev, n in o.db.recency().items()}
        removed = planner.down_removals(graph, revision, module, applied, recency)
        plan = plans.removal_plan(graph, applied, removed)
        others = [s for s in plan if s.module != module.name]
        if others and not cascade:
            raise RevisionError(
                f"rolling back module '{module.name}' would also roll back "
                + ", ".join(f"{s.module} {s.revision}" for s in others)
                + " which depend on it; roll those back first or pass --cascade"
            )
        return await _execute(opened, graph, [*moves, *plan] if plan else [], options)

    return _migrating(
        target, "down", options, work, lock=not options.plan, modules=scope, also=graph
    )


def _down_scope(manifest: Manifest, named: str | None) -> list[Module]:
    """The modules `down` may touch: the named one and those in its database (its dependents
    there may cascade); without a name, every module."""
    if named is None or not manifest.split:
        return list(manifest.modules)
    env = manifest.database_env(manifest.module(named))
    return [m for m in manifest.modules if manifest.database_env(m) == env]


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
    manifest = target.manifest
    graph = target.graph()
    try:
        revision = expressions.resolve(graph, expression, None)
    except RevisionError:
        if action != "rolled back":
            raise
        revision = None  # a discarded revision, maybe: the version table says, under the lock
    # the database of the revision's module (a discarded one's: the shared database)
    owner = manifest.module(graph.revisions[revision].module) if revision else None
    scope = _down_scope(manifest, owner.name) if owner else _shared_modules(manifest)

    async def work(opened: list[Opened]) -> Resolution:
        from shared.migrate.database.resolution import apply_resolution

        [one] = opened
        db = await state.read_state(one.session.conn, manifest.settings, full=True)
        chosen = revision or _unknown_row(graph, db, expression)
        if action != "rolled back":
            _refuse_unknown(db.unknown_rows(graph), db, "resolve")
        return Resolution(
            action, await apply_resolution(one.session, graph, db, action, chosen, reason.strip())
        )

    return _migrating(target, "resolve", options, work, lock=True, modules=scope)


def _shared_modules(manifest: Manifest) -> list[Module]:
    """The modules of the shared database."""
    shared = manifest.settings.database_url_env
    return [m for m in manifest.modules if manifest.database_env(m) == shared]


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

    async def work(opened: list[Opened]) -> tuple[str, ...]:
        return tuple(await resetting.empty(opened[0].session.conn))

    scope = _shared_modules(target.manifest)  # a module's own database is not reset
    return Reset(
        url.display(), _migrating(target, "reset", options, work, lock=True, modules=scope)
    )


@dataclass(frozen=True)
class Opened:
    """One database of the run, under its lock: where it is, its session and its state."""

    placement: Placement
    session: Session
    db: state.DatabaseState

    def own_rows(self, graph: RevisionGraph) -> list[str]:
        """Its version rows of the modules that live in it (another's: a move not finished)."""
        rows = self.db.known_rows(graph)
        if not graph.manifest.split:
            return rows
        return [r for r in rows if self.holds(graph, graph.revisions[r].module)]

    def holds(self, graph: RevisionGraph, module: str) -> bool:
        manifest = graph.manifest
        return manifest.database_env(manifest.module(module)) in self.placement.envs

    def reached(self, graph: RevisionGraph) -> set[str]:
        """What it ran (see DatabaseState.reached), of its own modules' rows."""
        return graph.reached(self.own_rows(graph), self.db.moved)

    def applied(self, graph: RevisionGraph) -> set[str]:
        return graph.applied(self.reached(graph))

    async def verified(self, graph: RevisionGraph, *, full: bool = False) -> Opened:
        """This database once no applied revision's file changed since it was applied: by the
        digest when it matches, else entry by entry from the whole log (`full`: read the
        whole log anyway)."""
        db, applied = self.db, self.applied(graph)
        with database_errors(self.session.url, connected=True):
            if not db.complete and (full or not db.matches(graph, applied)):
                db = await state.read_state(self.session.conn, graph.manifest.settings, full=True)
        if db.complete:
            _verify_checksums(graph, db, applied)
        return replace(self, db=db)


def _migrating(
    target: Target,
    command: str,
    options: RunOptions,
    work: Callable[[list[Opened]], Awaitable[T]],
    *,
    lock: bool,
    modules: list[Module] | None = None,
    placements: list[Placement] | None = None,
    also: RevisionGraph | None = None,
) -> T:
    """Open a session on each database `modules` live in (or on `placements`, in the order
    given), with the migration's timeouts; take each one's lock, always in one global order
    (PostgreSQL sees no deadlock between two databases' advisory locks); read each one's
    state (with the log entries of `also`'s replacing revisions); work."""
    settings = target.manifest.settings
    lock_timeout = settings.lock_timeout if options.lock_timeout is None else options.lock_timeout
    statement_timeout = (
        settings.statement_timeout
        if options.statement_timeout is None
        else options.statement_timeout
    )
    wait = settings.lock_wait if options.lock_wait is None else options.lock_wait
    placements = placements or target.placements(modules)
    on_session = session_settings(lock_timeout, statement_timeout, target.session_settings())

    async def run(sessions: list[Session]) -> T:
        mine: dict[int, Placement] = {}  # our sessions' server pids: one database named twice
        opened = []
        for placement, session in zip(placements, sessions, strict=True):
            session.watch.threshold = max(0.05, min(1.0, lock_timeout / 2)) if lock_timeout else 1.0
            with database_errors(session.url, connected=True):
                if lock:
                    waiting = _waiting(placement, mine, command, options)
                    await session.lock(settings, wait, waiting)
                    if len(placements) > 1:
                        mine[await session.backend_pid()] = placement
                replacing = tuple(also.replacing) if also is not None else ()
                db = await state.read_state(session.conn, settings, also=replacing)
            opened.append(Opened(placement, session, db))
        return await work(opened)

    if len(placements) == 1:
        return run_session(placements[0].url, command, lambda s: run([s]), settings=on_session)
    urls = [p.url for p in placements]
    return run_async(lambda: with_sessions(urls, command, run, settings=on_session))


def _waiting(
    placement: Placement, mine: dict[int, Placement], command: str, options: RunOptions
) -> Callable[[Holder | None, float], None]:
    """What a wait for one database's lock says; our own session holding it means two
    variables name one database by two spellings."""

    def waiting(holder: Holder | None, seconds: float) -> None:
        other = mine.get(holder.pid) if holder is not None else None
        if other is not None and holder is not None and holder.application.endswith(command):
            raise ConfigError(
                f"${', $'.join(other.envs)} ({other.name}) and ${', $'.join(placement.envs)} "
                f"({placement.name}) are one database spelled two ways; give them the same "
                "URL, or give the module a database of its own"
            )
        options.progress.waiting(holder, seconds)

    return waiting


async def _refuse_unmoved(target: Target, graph: RevisionGraph, opened: list[Opened]) -> None:
    """A module living in a database of its own whose records are still elsewhere (its move,
    `migrate module move`, is not finished) is neither applied nor rolled back anywhere."""
    manifest = graph.manifest
    if not manifest.split:
        return
    for o in opened:
        strays = [
            r for r in o.db.known_rows(graph) if not o.holds(graph, graph.revisions[r].module)
        ]
        if strays:
            _unmoved(manifest, graph.revisions[strays[0]].module, o.placement.name, strays)
    shared_env = manifest.settings.database_url_env
    if any(shared_env in o.placement.envs for o in opened):
        return  # read above
    fresh = [
        name
        for o in opened
        for name in o.placement.modules
        if not any(graph.revisions[r].module == name for r in o.own_rows(graph))
    ]
    url = target.url
    if not fresh or url.source == "the built-in default":
        return  # nothing to look for, or no shared database to look in
    settings = manifest.settings

    async def read(session: Session) -> state.DatabaseState:
        return await state.read_state(session.conn, settings)

    shared = await with_session(url, "looking for unmoved modules", read)
    for name in fresh:
        left = [r for r in shared.known_rows(graph) if graph.revisions[r].module == name]
        if left:
            _unmoved(manifest, name, url.display(), left)


def _unmoved(manifest: Manifest, module: str, where: str, rows: list[str]) -> None:
    env = manifest.database_env(manifest.module(module))
    raise ConfigError(
        f"the database {where} holds version rows of module '{module}' "
        f"({', '.join(sorted(rows)[:3])}), which lives in ${env}; finish moving it: "
        f"migrate module move {module}"
    )


def under_lock(
    target: Target,
    command: str,
    work: Callable[[Session, state.DatabaseState], Awaitable[T]],
    lock_wait: float | None = None,
) -> T:
    """`work` on a session of the shared database that holds the migration lock (`baseline
    --mark`), as up's."""

    async def one(opened: list[Opened]) -> T:
        [only] = opened
        return await work(only.session, only.db)

    options = RunOptions(lock_wait=lock_wait)
    modules = _shared_modules(target.manifest)
    return _migrating(target, command, options, one, lock=True, modules=modules)


def _moves_before_down(graph: RevisionGraph, reached: set[str], opened: list[Opened]) -> list[Step]:
    """A database at the top of a replaced range is moved onto what replaced it before a
    step down; one inside a range (it ran only some of it) cannot go down from there."""
    moves = plans.moves(graph, reached)
    moved = {name for step in moves for name in step.together}
    partly = sorted(graph.inside(reached) - moved)
    if partly:
        at = ", ".join(sorted(graph.maximal(reached & graph.covered(partly[0]))))
        raise RevisionError(
            f"the database is inside the revisions that {partly[0]} replaces (at {at}); run "
            "`migrate up` first: it runs the rest of them and moves the database onto it"
        )
    return moves


def _sql(graph: RevisionGraph, plan: list[Step], applied: set[str], *, fresh: bool) -> str:
    """The SQL a plan runs (`up --sql`): for modules in databases of their own, one section
    per database, each to run there."""
    from shared.migrate.database.executor import render_sql

    manifest = graph.manifest
    if not manifest.split:
        return render_sql(graph, plan, graph.maximal(applied), fresh=fresh)
    env_of = {m.name: manifest.database_env(m) for m in manifest.modules}
    sections = []
    for env in dict.fromkeys(env_of[s.module] for s in plan):
        mine = [s for s in plan if env_of[s.module] == env]
        rows = graph.maximal({r for r in applied if env_of[graph.revisions[r].module] == env})
        modules = ", ".join(dict.fromkeys(s.module for s in mine))
        sections.append(
            f"-- in the database ${env} names ({modules})\n\n"
            + render_sql(graph, mine, rows, fresh=fresh)
        )
    return "\n".join(sections)


async def _execute(
    opened: list[Opened],
    graph: RevisionGraph,
    plan: list[Step],
    options: RunOptions,
) -> RunResult:
    """Show the plan, or run it one committed revision at a time, each on its database."""
    from shared.migrate.database.runner import Lane, run_across

    lanes = [Lane(o.session, set(o.own_rows(graph)), _modules_of(graph, o)) for o in opened]
    # rows plain Alembic could not upgrade from (a replaced one is a move's to clear)
    untidy = any(
        r not in graph.replaced
        for lane in lanes
        for r in graph.implied(lane.rows, graph.ancestors(lane.rows))
    )
    if options.plan or not (plan or untidy):
        return RunResult(steps=plan, planned_only=options.plan)
    settings = graph.manifest.settings
    for o in opened:
        with database_errors(o.session.url, connected=True):
            await recorder.ensure_tables(o.session.conn, settings, o.db)
    retries = settings.lock_retries if options.retries is None else options.retries
    ran = await run_across(lanes, graph, plan, retries=retries, progress=options.progress)
    return RunResult(steps=ran.steps, tidied=ran.tidied)


def _modules_of(graph: RevisionGraph, opened: Opened) -> frozenset[str] | None:
    if not graph.manifest.split:
        return None
    return frozenset(m.name for m in graph.manifest.modules if opened.holds(graph, m.name))


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
