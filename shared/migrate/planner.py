"""What `up` and `down` would do, revision by revision, before anything runs.

Revision expressions are those Alembic users type: a full id or unique prefix, `head`/`heads`,
`X@head`, `base`, `X@base`, `X@<id>`, and relative steps (`+1`, `-1`, `X@-2`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.migrate.errors import ConfigError, RevisionError, shown
from shared.migrate.graph import RevisionGraph
from shared.migrate.manifest import Module

_RELATIVE = re.compile(r"([+-])(\d{1,6})\Z")


@dataclass(frozen=True)
class Step:
    """One revision applied (`up`) or unapplied (`down`)."""

    module: str
    revision: str
    message: str
    direction: str
    seconds: float | None = None


def steps(graph: RevisionGraph, revisions: set[str], direction: str) -> list[Step]:
    """The revisions in an order that respects every dependency (newest first going down)."""
    order = graph.ordered(revisions, newest_first=direction == "down")
    return [_step(graph, rev, direction) for rev in order]


def upgrade_plan(graph: RevisionGraph, applied: set[str], targets: set[str]) -> list[Step]:
    """The revisions `up` applies to reach `targets`: everything they need, not yet applied."""
    return steps(graph, graph.ancestors(targets, beyond=applied), "up")


def removal_plan(graph: RevisionGraph, applied: set[str], removed: set[str]) -> list[Step]:
    """The revisions `down` unapplies: `removed` and every applied revision built on them."""
    return steps(graph, graph.descendants(removed, within=applied), "down")


@dataclass(frozen=True)
class Expression:
    """A revision expression split into its module part and what follows it."""

    module: Module | None
    text: str


def parse(graph: RevisionGraph, text: str, module: Module | None) -> Expression:
    text = text.strip()
    if "@" in text:
        label, _, rest = text.partition("@")
        named = graph.manifest.module(label)
        if module is not None and named != module:
            raise ConfigError(
                f"--revision names module '{named.name}' but --branch names '{module.name}'; "
                "give one of them"
            )
        return Expression(named, rest)
    return Expression(module, text)


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
    relative = _RELATIVE.match(text)
    if relative:
        if relative.group(1) == "-":
            raise RevisionError(
                f"'{shown(expression)}' goes down; use `migrate down --revision {shown(text)}`"
            )
        module = module or _only_module(graph, applied)
        pending = [r for r in graph.ordered(graph.members.get(module.name, [])) if r not in applied]
        return set(pending[: int(relative.group(2))])
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
    if text in ("head", "heads"):
        raise RevisionError("`down` needs a revision below the current one, e.g. -1 or base")
    if text == "base":
        return mine
    relative = _RELATIVE.match(text)
    if relative:
        if relative.group(1) == "+":
            raise RevisionError(f"'{shown(text)}' goes up; use `migrate up --revision {text}`")
        removed: set[str] = set()
        for _ in range(int(relative.group(2))):
            left = mine - removed
            heads = {h for h in left if not any(c in left for c in graph.children[h])}
            if not heads:
                break
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


def resolve(graph: RevisionGraph, text: str, module: Module | None) -> str:
    """A revision id or unique prefix, within `module` when one is named."""
    if not text or not re.fullmatch(r"[0-9A-Za-z_]+", text):
        raise RevisionError(
            f"'{shown(text)}' is not a revision; give an id (or its first characters), "
            "head, base, or a step such as -1"
        )
    scope = f" in module '{module.name}'" if module else ""
    if text in graph.revisions:
        found = graph.revisions[text]
        if module is not None and found.module != module.name:
            raise RevisionError(
                f"revision {text} belongs to module '{found.module}', not '{module.name}'"
            )
        return text
    candidates = sorted(
        r.revision
        for r in graph.revisions.values()
        if r.revision.startswith(text) and (module is None or r.module == module.name)
    )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        if text in graph.manifest.names:
            raise RevisionError(
                f"'{text}' is a module, not a revision; name the module with --branch {text} "
                f"(and a revision with -r, e.g. {text}@-1 or base)"
            )
        where = f" --branch {module.name}" if module else ""
        raise RevisionError(
            f"unknown revision '{shown(text)}'{scope}; `migrate history{where}` lists them"
        )
    raise RevisionError(
        f"revision '{text}'{scope} is ambiguous ({', '.join(candidates[:5])}); give more characters"
    )


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


def _step(graph: RevisionGraph, revision: str, direction: str) -> Step:
    info = graph.revisions[revision]
    return Step(info.module, revision, info.message, direction)
