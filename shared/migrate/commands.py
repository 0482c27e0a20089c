"""One function per `migrate` verb. Each returns data and prints nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alembic import command as alembic_command
from sqlalchemy.engine import URL, Connection

from shared.db.url import resolve_url, to_async_url
from shared.migrate import autogen, recorder, scaffold
from shared.migrate.checks import (
    Finding,
    dependency_findings,
    drift_finding,
    head_findings,
    ownership_findings,
    static_findings,
)
from shared.migrate.database import public_tables, version_rows
from shared.migrate.discovery import Discovery, discover
from shared.migrate.errors import ConfigError, RevisionError
from shared.migrate.executor import (
    DEFAULT_OPTIONS,
    ChecksumMismatch,
    RunOptions,
    RunResult,
    execute,
    locked,
    offline,
    verified_rows,
)
from shared.migrate.graph import Position, Revision, ScriptGraph
from shared.migrate.manifest import Manifest, Module
from shared.migrate.ownership import OwnershipMap, ownership, undeclared_references
from shared.migrate.planner import downgrade_plan, upgrade_plan
from shared.migrate.runner import run_with_connection
from shared.migrate.shadow import shadow_database
from shared.migrate.translate import alembic_errors


@dataclass(frozen=True)
class Target:
    """Where the command points: the manifest and the database URL as given (or not)."""

    manifest: Manifest
    database_url: str | None = None

    @property
    def url(self) -> URL:
        return _parse(resolve_url(self.database_url, self.manifest.settings.database_url_env))

    def shadow_server(self, shadow_url: str | None) -> URL:
        """Where shadow databases go: --shadow-url, else the database URL's server."""
        return _parse(shadow_url) if shadow_url else self.url


def _parse(raw: str) -> URL:
    try:
        return to_async_url(raw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class CreateResult:
    module: str
    path: Path | None
    revision: str | None
    depends_on: tuple[str, ...] = field(default_factory=tuple)


# ---- up / down ---------------------------------------------------------------------------


def up(
    target: Target,
    branch: str | None = None,
    revision: str | None = None,
    *,
    sql: bool = False,
    options: RunOptions = DEFAULT_OPTIONS,
) -> RunResult:
    """`migrate up`: every module to its head, or one module (and its dependencies), or to R."""
    graph = ScriptGraph(target.manifest)
    destination = _up_destination(graph, branch, revision)
    if sql:
        return RunResult(steps=[], sql=offline(graph, destination))

    def work(conn: Connection) -> RunResult:
        rows = verified_rows(graph, conn, options.allow_unknown)
        if rows is None:
            return RunResult(steps=[], skipped_unknown=True)
        if destination is None:
            return RunResult(steps=[], planned_only=options.plan)
        steps = upgrade_plan(graph, destination, rows)
        return execute(graph, conn, steps, options, lambda: graph.upgrade(destination))

    return locked(target.url, target.manifest, "up", work, options)


def down(
    target: Target,
    branch: str | None = None,
    revision: str | None = None,
    *,
    cascade: bool = False,
    options: RunOptions = DEFAULT_OPTIONS,
) -> RunResult:
    """`migrate down`: one revision back in a module, or down to R; dependents need --cascade."""
    graph = ScriptGraph(target.manifest)
    manifest = target.manifest

    def work(conn: Connection) -> RunResult:
        rows = verified_rows(graph, conn, allow_unknown=False)
        assert rows is not None
        positions = {p.module: p for p in graph.positions(rows)}
        module = _down_module(manifest, positions, branch)
        if module is None or not positions[module.name].current:
            return RunResult(steps=[])
        destination = _down_destination(graph, module, positions[module.name], revision)
        steps = downgrade_plan(graph, destination, rows)
        others = [s for s in steps if s.module != module.name]
        if others and not cascade:
            raise RevisionError(
                f"rolling back module '{module.name}' would also roll back "
                + ", ".join(f"{s.module} {s.revision}" for s in others)
                + " which depend on it; roll those back first or pass --cascade"
            )
        return execute(
            graph,
            conn,
            steps,
            options,
            lambda: graph.downgrade(destination),
        )

    return locked(target.url, target.manifest, "down", work, options)


def _up_destination(graph: ScriptGraph, branch: str | None, revision: str | None) -> str | None:
    """The Alembic target: R, or the module's head (Alembic adds what it depends on), or all."""
    manifest = graph.manifest
    module = manifest.module(branch) if branch else None
    if revision:
        return graph.resolve(module, revision)
    scope = manifest.dependency_closure(module.name) if module else list(manifest.modules)
    heads = [graph.head(m) for m in scope]  # refuses a module with two heads
    if module is None:
        return "heads" if any(heads) else None
    return heads[-1]


def _down_module(
    manifest: Manifest, positions: dict[str, Position], branch: str | None
) -> Module | None:
    if branch:
        return manifest.module(branch)
    started = [name for name, p in positions.items() if p.current]
    if len(started) > 1:
        raise ConfigError(
            f"several modules have applied revisions ({', '.join(started)}); name one with --branch"
        )
    return manifest.module(started[0]) if started else None


def _down_destination(
    graph: ScriptGraph, module: Module, position: Position, revision: str | None
) -> str:
    if revision in ("base", f"{module.branch}@base"):
        return f"{module.branch}@base"
    if revision:
        rev = graph.resolve(module, revision)
        if rev not in graph.ancestors(position.current):
            raise RevisionError(
                f"revision {rev} of module '{module.name}' is not applied; "
                f"`migrate current --branch {module.name}` shows where it is"
            )
        return rev
    current = graph.revisions[position.current[0]]
    parents = [p for p in current.parents if graph.revisions[p].module == module.name]
    return parents[0] if len(parents) == 1 else f"{module.branch}@-1"


# ---- create ------------------------------------------------------------------------------


def create(
    target: Target,
    message: str,
    module_name: str,
    *,
    autogenerate: bool = True,
    shadow_url: str | None = None,
) -> CreateResult:
    """`migrate create`: a new revision on the module's head, in its versions directory."""
    manifest = target.manifest
    module = manifest.module(module_name)
    if not message.strip():
        raise ConfigError("the revision message is empty; describe the change in a few words")
    graph = ScriptGraph(manifest)
    head = graph.head(module)
    if not autogenerate:
        with alembic_errors():
            script = alembic_command.revision(
                graph.config,
                message,
                head=head or "base",
                branch_label=None if head else module.branch,
                version_path=str(module.versions),
            )
        assert script is not None and not isinstance(script, list)
        return CreateResult(module.name, Path(script.path), script.revision)
    server = target.shadow_server(shadow_url)
    written = autogen.create_revision(graph, module, head, message, server)
    if written is None:
        return CreateResult(module.name, None, None)
    return CreateResult(module.name, written.path, written.revision, written.depends_on)


# ---- read-only views ---------------------------------------------------------------------


def positions(target: Target) -> list[Position]:
    """`migrate current` and `migrate status`: where each module stands (reads, never writes)."""
    graph = ScriptGraph(target.manifest)
    settings = target.manifest.settings

    def work(conn: Connection) -> list[Position]:
        rows = version_rows(conn, settings.version_table)
        recorded = {
            e.revision: e.module for e in reversed(recorder.entries(conn, settings.log_table))
        }
        return graph.positions(rows, recorded)

    return run_with_connection(target.url, work, command="status")


def log(target: Target) -> list[recorder.LogEntry]:
    """`migrate log`: the tool's record of applied and unapplied revisions, newest first."""
    table = target.manifest.settings.log_table
    return run_with_connection(
        target.url, lambda conn: recorder.entries(conn, table), command="log"
    )


def history(manifest: Manifest, branch: str | None = None) -> dict[str, list[Revision]]:
    """`migrate history`: each module's revisions, newest first (no database, no models)."""
    graph = ScriptGraph(manifest)
    modules = [manifest.module(branch)] if branch else list(manifest.modules)
    return {m.name: graph.of_module(m.name) for m in modules}


def heads(manifest: Manifest) -> dict[str, list[str]]:
    """`migrate heads`: each module's head(s) (no database, no models)."""
    graph = ScriptGraph(manifest)
    return {m.name: graph.heads(m.name) for m in manifest.modules}


# ---- isolation: owners, check, merge, module add ------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


def owners(target: Target, shadow_url: str | None = None) -> OwnershipMap:
    """`migrate owners`: each table's module, from the models and from the migrations."""
    graph = ScriptGraph(target.manifest)
    return _inspect(target, graph, discover(target.manifest), shadow_url, drift=False)[0]


def check(target: Target, shadow_url: str | None = None) -> CheckResult:
    """`migrate check`: every finding that should fail CI, each under its module."""
    manifest = target.manifest
    findings = static_findings(manifest)
    if any(f.kind in ("duplicate revision", "stray file") for f in findings):
        return CheckResult(findings)  # the graph cannot be built until the files are sorted out
    graph = ScriptGraph(manifest)
    findings += head_findings(graph)
    if any(f.kind == "heads" for f in findings):
        return CheckResult(findings)
    discovery = discover(manifest)
    owner_map, drift = _inspect(target, graph, discovery, shadow_url, drift=True)
    findings += ownership_findings(owner_map)
    findings += _integrity_findings(target, graph)
    allowed = {
        m.name: {d.name for d in manifest.dependency_closure(m.name)} for m in manifest.modules
    }
    findings += dependency_findings(
        undeclared_references(discovery.metadata, discovery.owners, allowed)
    )
    findings += drift
    return CheckResult(findings)


def _integrity_findings(target: Target, graph: ScriptGraph) -> list[Finding]:
    """Applied files edited since, and revisions the code does not know, in the database."""
    try:
        run_with_connection(
            target.url, lambda conn: verified_rows(graph, conn, False), command="check"
        )
    except ChecksumMismatch as exc:
        return [Finding(exc.module, "checksum", str(exc))]
    except RevisionError as exc:
        return [Finding("-", "unknown revision", str(exc))]
    return []


def _inspect(
    target: Target,
    graph: ScriptGraph,
    discovery: Discovery,
    shadow_url: str | None,
    *,
    drift: bool,
) -> tuple[OwnershipMap, list[Finding]]:
    """Build every module on a shadow database: who created what, and each module's drift."""
    manifest = target.manifest
    url = target.url

    def on_shadow(conn: Connection) -> tuple[dict[str, str], list[Finding]]:
        created_by = autogen.build(conn, graph, manifest.ordered())
        found = []
        for module in manifest.modules if drift else []:
            changes = autogen.diff(conn, discovery, module, created_by)
            if changes is not None:
                found.append(drift_finding(module.name, changes.upgrade_ops))
        return created_by, found

    with shadow_database(target.shadow_server(shadow_url)) as shadow:
        created_by, found = run_with_connection(shadow, on_shadow, command="check")
    database_tables = run_with_connection(url, public_tables, command="owners")
    owner_map = ownership(
        discovery.owners,
        created_by,
        database_tables,
        {manifest.settings.version_table, manifest.settings.log_table},
    )
    return owner_map, found


def merge(manifest: Manifest, module_name: str, message: str | None = None) -> CreateResult:
    """`migrate merge`: one revision joining the module's heads, in its versions directory."""
    module = manifest.module(module_name)
    graph = ScriptGraph(manifest)
    module_heads = graph.heads(module.name)
    if len(module_heads) < 2:
        return CreateResult(module.name, None, None)
    with alembic_errors():
        script = alembic_command.merge(
            graph.config, module_heads, message=message or f"merge {module.name} heads"
        )
    assert script is not None
    return CreateResult(module.name, Path(script.path), script.revision)


def add_module(manifest: Manifest, name: str, depends_on: list[str]) -> Manifest:
    """`migrate module add`: a new module's package, manifest entry and alembic.ini line."""
    return scaffold.add_module(manifest, name, depends_on)
