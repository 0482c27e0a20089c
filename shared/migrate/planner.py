"""What `up` and `down` would do, revision by revision, before anything runs: the revisions a
revision expression brings the database to, or takes out of it."""

from __future__ import annotations

from collections.abc import Mapping

from shared.migrate.errors import ConfigError, RevisionError, shown
from shared.migrate.history.expressions import RELATIVE, parse, resolve
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.manifest import Module


def up_targets(
    graph: RevisionGraph, expression: str, module: Module | None, applied: set[str]
) -> set[str]:
    """The revisions `up --revision` brings the database to (with what they need)."""
    parsed = parse(graph, expression, module)
    module, text = parsed.module, parsed.text
    if text in ("head", "heads"):
        return _heads(graph, module)
    if text == "base":
        return set()
    relative = RELATIVE.match(text)
    if relative:
        if relative.group(1) == "-":
            raise RevisionError(
                f"'{shown(expression)}' goes down; use `migrate down --revision "
                f"{shown(expression.strip())}`"
            )
        module = module or _only_module(graph, applied)
        pending = [r for r in graph.ordered(graph.members.get(module.name, [])) if r not in applied]
        count = int(relative.group(2))
        if count > len(pending):  # as Alembic: a step past the head is a mistake, not a no-op
            raise RevisionError(
                f"module '{module.name}' has {len(pending)} pending revision(s); "
                f"{shown(text)} goes past its head: give {module.name}@head"
            )
        return set(pending[:count])
    return {resolve(graph, text, module)}


def down_removals(
    graph: RevisionGraph,
    expression: str | None,
    module: Module,
    applied: set[str],
    recency: Mapping[str, int],
) -> set[str]:
    """The revisions `down` takes out first (their dependents follow): by default the module's
    newest applied revision; `-N` that N times; `base` all of it; R everything above R."""
    text = "-1" if expression is None else parse(graph, expression, module).text
    mine = set(graph.members.get(module.name, [])) & applied
    if expression is None and not mine:
        return set()  # `down --branch X` with nothing of X applied: nothing to do
    if text in ("head", "heads"):
        raise RevisionError("`down` needs a revision below the current one, e.g. -1 or base")
    if text == "base":
        return mine
    relative = RELATIVE.match(text)
    if relative:
        if relative.group(1) == "+":
            raise RevisionError(f"'{shown(text)}' goes up; use `migrate up --revision {text}`")
        removed: set[str] = set()
        for _ in range(int(relative.group(2))):
            left = mine - removed
            heads = {h for h in left if not any(c in left for c in graph.children[h])}
            if not heads:  # as Alembic: a step past the base is a mistake, not a no-op
                raise RevisionError(
                    f"module '{module.name}' has {len(mine)} applied revision(s); "
                    f"{shown(text)} goes past its base: give base"
                )
            # two applied heads: take back the one applied last, one revision per step
            removed.add(max(heads, key=lambda r: (recency.get(r, -1), graph.rank[r])))
        return removed
    target = resolve(graph, text, module)
    if target not in applied:
        raise RevisionError(
            f"revision {target} of module '{module.name}' is not applied; "
            f"`migrate current --branch {module.name}` shows where it is"
        )
    # the module's revisions built on R; other modules' revisions that depend on them follow
    # (or are refused without --cascade), while those that depend only on R itself stay
    return graph.descendants({target}, within=mine) - {target}


def _heads(graph: RevisionGraph, module: Module | None) -> set[str]:
    modules = [module] if module else list(graph.manifest.modules)
    return {head for m in modules if (head := graph.head(m))}


def _only_module(graph: RevisionGraph, applied: set[str]) -> Module:
    candidates = [
        m
        for m in graph.manifest.modules
        if any(r not in applied for r in graph.members.get(m.name, []))
    ]
    if len(candidates) == 1:
        return candidates[0]
    raise ConfigError(
        "a relative step needs a module: --branch NAME, or NAME@+1; modules: "
        + ", ".join(graph.manifest.names)
    )
