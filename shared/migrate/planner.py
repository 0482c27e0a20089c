"""What `up` and `down` would do, revision by revision, before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from shared.migrate.graph import ScriptGraph
from shared.migrate.translate import alembic_errors


@dataclass(frozen=True)
class Step:
    """One revision applied (`up`) or unapplied (`down`)."""

    module: str
    revision: str
    message: str
    direction: str
    seconds: float | None = None


def upgrade_plan(graph: ScriptGraph, target: str, rows: tuple[str, ...]) -> list[Step]:
    """The revisions `up` would apply to reach `target`, in Alembic's own order."""
    with alembic_errors():
        revs = graph.script._upgrade_revs(target, cast(str, rows))  # Alembic passes heads
    return [_step(graph, rev.revision.revision, "up") for rev in revs]


def downgrade_plan(graph: ScriptGraph, target: str, rows: tuple[str, ...]) -> list[Step]:
    """The revisions `down` would unapply to reach `target`, newest first."""
    with alembic_errors():
        revs = graph.script._downgrade_revs(target, cast(str, rows))
    return [_step(graph, rev.revision.revision, "down") for rev in revs]


def _step(graph: ScriptGraph, revision: str, direction: str) -> Step:
    info = graph.revisions[revision]
    return Step(info.module, revision, info.message, direction)
