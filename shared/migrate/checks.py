"""The findings behind `migrate check`: each a module, a kind, and a one-line detail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from alembic.operations import ops

from shared.migrate.graph import ScriptGraph, duplicate_revisions, stray_files
from shared.migrate.inifile import INI_NAME, expected_locations, in_step
from shared.migrate.manifest import Manifest
from shared.migrate.ownership import OwnershipMap


@dataclass(frozen=True)
class Finding:
    module: str
    kind: str
    detail: str


def static_findings(manifest: Manifest) -> list[Finding]:
    """What can be checked from files alone: duplicate ids, alembic.ini."""
    findings = [
        Finding(
            _module_of(manifest, paths[0]),
            "duplicate revision",
            f"revision id {rev} is declared by "
            + " and ".join(str(p.relative_to(manifest.root)) for p in paths),
        )
        for rev, paths in duplicate_revisions(manifest).items()
    ]
    findings += [Finding(module, "stray file", detail) for module, detail in stray_files(manifest)]
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


def head_findings(graph: ScriptGraph) -> list[Finding]:
    return [
        Finding(
            m.name,
            "heads",
            f"{len(heads)} heads ({', '.join(heads)}); run: migrate merge --module {m.name}",
        )
        for m in graph.manifest.modules
        if len(heads := graph.heads(m.name)) > 1
    ]


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


def drift_finding(module: str, upgrade_ops: ops.UpgradeOps) -> Finding:
    changes = sorted({_describe(op) for op in _leaves(upgrade_ops)})
    return Finding(
        module,
        "drift",
        "models differ from migrations: "
        + "; ".join(changes)
        + f"; run: migrate create MESSAGE --module {module}",
    )


def _leaves(container: Any) -> Iterator[Any]:
    for op in getattr(container, "ops", []):
        if isinstance(op, ops.OpContainer):
            yield from _leaves(op)
        else:
            yield op


def _describe(op: Any) -> str:
    try:
        diff = op.to_diff_tuple()
    except (AttributeError, NotImplementedError):
        return type(op).__name__
    if isinstance(diff, list):
        diff = diff[0]
    names = [_name(part) for part in diff[1:] if _name(part)]
    return " ".join([str(diff[0]), ".".join(names[:2])])


def _name(part: Any) -> str:
    if isinstance(part, str):
        return part
    return str(getattr(part, "name", "") or "")


def _module_of(manifest: Manifest, path: Any) -> str:
    for module in manifest.modules:
        if path.parent == module.versions:
            return module.name
    return "-"
