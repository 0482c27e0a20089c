"""Orders of revisions: the steps that bring a database from what it has applied to what it
should have, each revision after everything it needs (or, going down, before everything that
needs it)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.migrate.history.graph import RevisionGraph


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


def _step(graph: RevisionGraph, revision: str, direction: str) -> Step:
    info = graph.revisions[revision]
    return Step(info.module, revision, info.message, direction)
