"""What `up` and `down` report while they run: the executor calls a Progress, the CLI renders
it (Django's executor and its callback)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.migrate.history.plans import Step

if TYPE_CHECKING:
    from shared.migrate.database.holders import Holder


class Progress:
    """Callbacks with nothing to do; the CLI's subclass prints, tests may record."""

    def waiting(self, holder: Holder | None, seconds: float) -> None:
        """Still waiting for the migration lock."""

    def started(self, step: Step, number: int, total: int) -> None:
        """A revision starts (its transaction begins)."""

    def finished(self, step: Step, number: int, total: int) -> None:
        """A revision is committed; `step.seconds` says how long it took."""

    def retrying(
        self, step: Step, attempt: int, retries: int, delay: float, blockers: list[Holder]
    ) -> None:
        """A statement hit lock_timeout; the revision runs again after `delay` seconds."""

    def close(self) -> None:
        """The run is over (a live display stops here)."""
