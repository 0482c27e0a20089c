"""The findings behind `migrate check`: each a module, a kind, and a one-line detail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.migrate.database import recorder
from shared.migrate.errors import checksum_changed
from shared.migrate.history.config import INI_NAME, expected_locations, in_step
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.history.index import Problem
from shared.migrate.manifest import Manifest
from shared.migrate.schema.ownership import OwnershipMap

if TYPE_CHECKING:
    from alembic.operations import ops

    from shared.migrate.database.state import DatabaseState
    from shared.migrate.schema.build import Built
    from shared.migrate.schema.databases import Crossing


@dataclass(frozen=True)
class Finding:
    module: str
    kind: str
    detail: str


def file_findings(manifest: Manifest, problems: list[Problem]) -> list[Finding]:
    """What can be checked from files alone: bad or duplicate revision files, alembic.ini."""
    findings = [Finding(p.module, p.kind, p.detail) for p in problems]
    if not in_step(manifest):
        findings.append(
            Finding(
                "-",
                "alembic.ini",
                f"{INI_NAME} version_locations differ from migrations.yaml; expected: "
                + ", ".join(expected_locations(manifest)),
            )
        )
    return findings


def head_findings(graph: RevisionGraph) -> list[Finding]:
    return [
        Finding(
            m.name,
            "heads",
            f"{len(heads)} heads ({', '.join(heads)}); run: migrate merge --module {m.name}",
        )
        for m in graph.manifest.modules
        if len(heads := graph.heads(m.name)) > 1
    ]


def revision_dependency_findings(graph: RevisionGraph) -> list[Finding]:
    """Django's rule: a revision depends only on modules its module declares in depends_on."""
    manifest = graph.manifest
    allowed = {
        m.name: {d.name for d in manifest.dependency_closure(m.name)} for m in manifest.modules
    }
    found = []
    for rev in graph.revisions.values():
        for dep in rev.depends_on:
            other = graph.revisions[dep].module
            if other not in allowed.get(rev.module, {rev.module}):
                found.append(
                    Finding(
                        rev.module,
                        "dependency",
                        f"revision {rev.revision} ({graph.relative(rev.path)}) depends on "
                        f"revision {dep} of module '{other}', which is not in depends_on of "
                        f"'{rev.module}'; add '{other}' to it in migrations.yaml",
                    )
                )
    return found


def ownership_findings(owners: OwnershipMap) -> list[Finding]:
    found = [Finding(c.modules[0], "ownership", c.detail) for c in owners.conflicts]
    found += [
        Finding("-", "unowned", f"table '{t}' is in the database but no module owns it")
        for t in owners.unowned
    ]
    return found


def dependency_findings(undeclared: list[tuple[str, str, str]]) -> list[Finding]:
    return [
        Finding(
            module,
            "dependency",
            f"table '{table}' references module '{target}', which is not in depends_on; "
            f"add '{target}' to depends_on of '{module}' in migrations.yaml",
        )
        for module, table, target in undeclared
    ]


def crossing_findings(manifest: Manifest, found: list[Crossing]) -> list[Finding]:
    """Foreign keys between modules the manifest puts in different databases."""
    return [Finding(c.module, "cross-database", c.detail(manifest)) for c in found]


def drift_findings(upgrade_ops: ops.UpgradeOps, owner_of: dict[str, str]) -> list[Finding]:
    """One finding per module whose models differ from what its migrations build."""
    from shared.migrate.schema.autogen import describe

    per_module: dict[str, list[str]] = {}
    for op in upgrade_ops.ops:
        table = getattr(op, "table_name", None)
        schema = getattr(op, "schema", None)
        key = f"{schema}.{table}" if schema and schema != "public" else table
        module = owner_of.get(str(key), "-")
        holder = type(upgrade_ops)(ops=[op])
        per_module.setdefault(module, []).extend(describe(holder))
    return [
        Finding(
            module,
            "drift",
            "models differ from migrations: "
            + "; ".join(sorted(set(changes)))
            + f"; run: migrate create MESSAGE --module {module}",
        )
        for module, changes in sorted(per_module.items())
    ]


def stairway_findings(built: Built) -> list[Finding]:
    found = [Finding(f.module, f.kind, f.detail) for f in built.findings]
    if not built.complete:
        found.append(
            Finding(
                found[-1].module if found else "-",
                "reapply",
                "the shadow build stopped at that revision; drift and ownership were not "
                "checked past it",
            )
        )
    return found


def integrity_findings(graph: RevisionGraph, db: DatabaseState) -> list[Finding]:
    """In the database: revisions the code does not know, applied files edited since, and a
    version table holding rows another row implies."""
    found = []
    for revision in db.unknown_rows(graph):
        owner = db.log[revision].module if revision in db.log else "-"
        found.append(
            Finding(
                owner,
                "unknown revision",
                f"the database is at revision {revision}, which no module's migrations contain; "
                "deploy the code that has it",
            )
        )
    applied = db.applied(graph)
    for revision, entry in sorted(db.log.items()):
        info = graph.revisions.get(revision)
        if info is None or entry.direction != "up" or revision not in applied:
            continue
        if not recorder.matches(entry.checksum, info.path, info.checksum):
            where = graph.relative(info.path)
            found.append(
                Finding(
                    info.module,
                    "checksum",
                    checksum_changed(revision, where, entry.checksum, info.checksum),
                )
            )
    known = db.known_rows(graph)
    implied = sorted(
        r for r in graph.implied(known, graph.ancestors(known)) if r not in graph.replaced
    )
    if implied:
        found.append(
            Finding(
                "-",
                "version table",
                f"the version table holds {', '.join(implied)}, which other rows already imply "
                "(plain Alembic cannot upgrade from it); run `migrate up` to tidy it",
            )
        )
    return found


def replaced_notes(graph: RevisionGraph, db: DatabaseState) -> list[Finding]:
    """Whether the database `check` reads still needs each replaced folder (a module's
    migrations/replaced/, the adopted history): once no database does, it can be deleted."""
    from shared.migrate.manifest import REPLACED_FOLDER

    folders: dict[str, list[str]] = {}  # folder -> the replacing revisions of its revisions
    owners: dict[str, str] = {}
    for name, covered in graph.replacing.items():
        info = graph.revisions[name]
        if info.replaced or not covered:
            continue
        kept = graph.revisions[next(iter(covered))]
        folder = graph.relative(kept.path.parent)
        folders.setdefault(folder, []).append(name)
        owners[folder] = kept.module  # the module, or the adopted history's name
    if not folders:
        return []
    reached = db.reached(graph)
    inside = graph.inside(reached)
    notes = []
    for folder, names in sorted(folders.items()):
        waiting = sorted(n for n in names if n in inside)
        module = owners[folder]
        applied = db.applied(graph)
        if waiting:
            at = ", ".join(sorted(graph.maximal(reached & graph.covered(waiting[0]))))
            notes.append(
                Finding(
                    module,
                    "replaced folder",
                    f"the database is at {at}, inside what {', '.join(waiting)} replace(s): it "
                    f"needs {folder}/ until `migrate up` moves it onto them",
                )
            )
        else:
            notes.append(
                Finding(
                    module,
                    "replaced folder",
                    f"the database does not need {folder}/ ("
                    + (
                        "it is at what replaced it"
                        if all(n in applied for n in names)
                        else "it ran none of it"
                    )
                    + "); once no database is inside it (run `migrate up` on each), delete it"
                    + (
                        " and the manifest's `adopted:` key"
                        if not folder.endswith(REPLACED_FOLDER)
                        else ""
                    ),
                )
            )
    return notes
