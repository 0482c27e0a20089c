"""`owners` and `check`: the verbs that build every module on a shadow database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from shared.migrate.database.target import Target

if TYPE_CHECKING:
    from shared.migrate.schema.checks import Finding
    from shared.migrate.schema.ownership import OwnershipMap

T = TypeVar("T")


# ---- isolation: owners, check, module add --------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    findings: list[Finding]
    notes: list[Finding] = field(default_factory=list)  # said, never a failure

    @property
    def ok(self) -> bool:
        return not self.findings


def owners(target: Target, shadow_url: str | None = None) -> OwnershipMap:
    """`migrate owners`: each table's module, from the models and from the migrations."""
    from shared.migrate.schema import inspection

    return inspection.owners(target, shadow_url)


def check(
    target: Target, shadow_url: str | None = None, *, all_revisions: bool = False
) -> CheckResult:
    """`migrate check`: every finding that should fail CI, each under its module."""
    from shared.migrate.schema import inspection

    findings, notes = inspection.check(target, shadow_url, all_revisions=all_revisions)
    return CheckResult(findings, notes)
