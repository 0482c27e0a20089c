"""`migrate lint`: which revisions to judge (pending, a module's, since a git ref, from the
manifest's `lint_from`), then the lint itself (schema/lint), returned as data."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.migrate.database.target import Target
from shared.migrate.errors import ConfigError, shown
from shared.migrate.history.graph import RevisionGraph, load_graph

if TYPE_CHECKING:
    from shared.migrate.schema.lint.findings import Report


@dataclass(frozen=True)
class LintOptions:
    module: str | None = None  # --branch: one module's revisions
    all_revisions: bool = False  # also those the database has applied
    since: str | None = None  # --since GIT_REF: only files added or changed since
    static: bool = False  # --static: no database, no measurement
    shadow_url: str | None = None


def lint(target: Target, options: LintOptions) -> Report:
    """`migrate lint`: the findings for the chosen revisions, measured unless `static`."""
    from shared.migrate.schema.lint.engine import lint as run

    graph = load_graph(target.manifest)
    chosen = choose(target, graph, options)
    server = None if options.static else target.shadow_server(options.shadow_url)
    return run(graph, chosen, server)


def choose(target: Target, graph: RevisionGraph, options: LintOptions) -> set[str]:
    """The revisions to judge: not applied (unless all; without a database, none that a
    squash or an adoption replaced), at or after each module's `lint_from`, of the module
    asked for, changed since the git ref."""
    manifest = target.manifest
    chosen = set(graph.revisions)
    if options.module is not None:
        name = manifest.module(options.module).name
        chosen = {r for r in chosen if graph.revisions[r].module == name}
    for module in manifest.modules:
        if module.lint_from is not None:
            chosen -= _before(graph, module.name, module.lint_from)
    if options.since is not None:
        changed = changed_files(manifest.root, options.since)
        chosen = {r for r in chosen if graph.revisions[r].path.resolve() in changed}
    if options.all_revisions:
        return chosen
    if options.static:  # no database to say which a squash or adoption replaced it still runs
        return chosen - graph.replaced
    return chosen & pending(target, graph) if chosen else chosen


def _before(graph: RevisionGraph, module: str, start: str) -> set[str]:
    """The revisions of `module` that `lint_from: start` leaves out: those it builds on."""
    members = graph.members.get(module, [])
    matches = [r for r in members if r == start or (len(start) >= 4 and r.startswith(start))]
    if len(matches) != 1:
        raise ConfigError(
            f"migrations.yaml: module '{module}' lint_from '{shown(start)}' is not one "
            f"revision of {module}; name one of its revision ids (migrate history -b {module})"
        )
    [found] = matches
    return {r for r in graph.ancestors([found]) - {found} if graph.revisions[r].module == module}


def pending(target: Target, graph: RevisionGraph) -> set[str]:
    """What `up` would still run on the database (what it applied is never re-judged by
    default)."""
    from shared.migrate.database.session import Session, run_async, with_session
    from shared.migrate.database.state import read_state

    async def read(session: Session) -> set[str]:
        settings = target.manifest.settings
        db = await read_state(session.conn, settings, also=tuple(graph.replacing))
        return graph.pending(db.reached(graph))

    async def main() -> set[str]:
        return await with_session(target.url, "lint", read)

    return run_async(main)


def changed_files(root: Path, ref: str) -> set[Path]:
    """Files added or changed since the git ref (committed or not), and untracked ones."""
    if ref.startswith("-"):
        raise ConfigError(f"--since '{shown(ref)}' is not a git ref; give a branch or commit")
    commands = (
        ["git", "diff", "--name-only", "--diff-filter=ACMR", ref, "--"],
        ["git", "ls-files", "--others", "--exclude-standard", "--full-name"],
    )
    top = _git(root, ["git", "rev-parse", "--show-toplevel"], ref).strip()
    files: set[Path] = set()
    for command in commands:
        for name in _git(root, command, ref).splitlines():
            files.add((Path(top) / name).resolve())
    return files


def _git(root: Path, command: list[str], ref: str) -> str:
    try:
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"--since needs git, which could not run ({shown(str(exc))})") from None
    if done.returncode != 0:
        reason = shown(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
        raise ConfigError(
            f"--since {shown(ref)}: git could not compare with it ({reason}); give a ref that "
            "exists here (in CI, fetch it first: git fetch origin main)"
        )
    return done.stdout
