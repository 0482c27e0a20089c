"""Orders of revisions: the steps that bring a database from what it has applied to what it
should have, each revision after everything it needs (or, going down, before everything that
needs it).

A database that ran some or all of what a revision replaces (a squash, an adopted history) is
not given that revision to run: it runs the rest of the replaced revisions, then one `move`
step records it as at the replacing revisions (Django's `replaces`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from shared.migrate.history.graph import RevisionGraph

RUN, MOVE = "run", "move"


@dataclass(frozen=True)
class Step:
    """One revision applied (`up`) or unapplied (`down`); or (`kind` MOVE) the revisions in
    `together` recorded as applied, in one transaction, because everything they replace is:
    no script runs."""

    module: str
    revision: str
    message: str
    direction: str
    seconds: float | None = None
    kind: str = RUN
    together: tuple[str, ...] = ()  # a move: every revision it records (the first is `revision`)


def steps(graph: RevisionGraph, revisions: set[str], direction: str) -> list[Step]:
    """The revisions in an order that respects every dependency (newest first going down)."""
    order = graph.ordered(revisions, newest_first=direction == "down")
    return [_step(graph, rev, direction) for rev in order]


def upgrade_plan(graph: RevisionGraph, reached: set[str], targets: set[str]) -> list[Step]:
    """The steps `up` takes to reach `targets` from a database whose version rows and all they
    build on are `reached`: everything the targets need, not yet applied."""
    needed = graph.ancestors(targets, beyond=reached)
    inside = graph.inside(reached)
    if not inside:
        return steps(graph, needed, "up")
    runs, moved = set(needed), set[str]()
    for name in sorted(inside):  # moved onto, whether the targets need it or not (yet)
        _leave(graph, name, reached, runs, moved)
    return _ordered(graph, runs - moved, _moves(graph, moved))


def moves(graph: RevisionGraph, reached: set[str]) -> list[Step]:
    """The moves a database that ran all of what some revisions replace still needs (`down`
    takes them first), or none."""
    applied = graph.applied(reached)
    moved = {name for name in graph.inside(reached) if name in applied}
    return _ordered(graph, set(), _moves(graph, moved)) if moved else []


def removal_plan(graph: RevisionGraph, applied: set[str], removed: set[str]) -> list[Step]:
    """The revisions `down` unapplies: `removed` and every applied revision built on them."""
    return steps(graph, graph.descendants(removed, within=applied), "down")


def _leave(
    graph: RevisionGraph, name: str, reached: set[str], runs: set[str], moved: set[str]
) -> None:
    """Plan the way out of `name`'s replaced range: the rest of what it replaces (and what
    that needs), a replacing revision inside it left the same way, then the move onto it."""
    runs.discard(name)
    moved.add(name)
    rest = graph.ancestors(graph.replacing[name], beyond=reached)
    for inner in rest & set(graph.replacing):
        if graph.covered(inner) & reached:
            _leave(graph, inner, reached, rest, moved)
    runs |= rest - moved


def _moves(graph: RevisionGraph, moved: set[str]) -> list[tuple[str, ...]]:
    """The moves, one per replaced range: the revisions that replace the same revisions move
    together (the baselines of an adopted history, in one transaction)."""
    groups: dict[frozenset[str], list[str]] = {}
    for name in moved:
        groups.setdefault(graph.replacing[name], []).append(name)
    return [tuple(graph.ordered(names)) for names in groups.values()]


def _ordered(graph: RevisionGraph, runs: set[str], moves: list[tuple[str, ...]]) -> list[Step]:
    """Runs and moves in one order: each after what it builds on, a move after everything it
    replaces that runs here; among those free to go, the graph's order."""
    member = {name: group for group in moves for name in group}
    nodes: list[str | tuple[str, ...]] = [*sorted(runs), *moves]

    def key(name: str) -> str | tuple[str, ...]:
        """The node a revision is planned in: its own run, or the move it is part of."""
        return member.get(name, name)

    def before(node: str | tuple[str, ...]) -> set[str | tuple[str, ...]]:
        names = (node,) if isinstance(node, str) else node
        found: set[str | tuple[str, ...]] = set()
        for name in names:
            info = graph.revisions[name]
            above = {*info.parents, *info.depends_on}
            if not isinstance(node, str):
                above |= graph.replacing[name]
            found |= {key(a) for a in above if a in runs or a in member}
        found.discard(node)
        return found

    rank = graph.rank
    waiting = {node: before(node) for node in nodes}
    after: dict[str | tuple[str, ...], list[str | tuple[str, ...]]] = {n: [] for n in nodes}
    for node, above in waiting.items():
        for other in above:
            after[other].append(node)
    count = {node: len(above) for node, above in waiting.items()}

    def order(node: str | tuple[str, ...]) -> int:
        return rank[node] if isinstance(node, str) else min(rank[n] for n in node)

    place = {node: i for i, node in enumerate(nodes)}
    ready = [(order(n), place[n], n) for n in nodes if count[n] == 0]
    heapq.heapify(ready)
    result: list[Step] = []
    while ready:
        _, _, node = heapq.heappop(ready)
        result.append(_step(graph, node, "up") if isinstance(node, str) else _move(graph, node))
        for next_node in after[node]:
            count[next_node] -= 1
            if count[next_node] == 0:
                heapq.heappush(ready, (order(next_node), place[next_node], next_node))
    return result


def _move(graph: RevisionGraph, names: tuple[str, ...]) -> Step:
    first = graph.revisions[names[0]]
    return Step(first.module, first.revision, first.message, "up", kind=MOVE, together=names)


def _step(graph: RevisionGraph, revision: str, direction: str) -> Step:
    info = graph.revisions[revision]
    return Step(info.module, revision, info.message, direction)
