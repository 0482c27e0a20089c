"""`owners` and `check`: the verbs that build every module on a shadow database."""

from __future__ import annotations

from dataclasses import dataclass
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
    """`migrate check`: every finding that should fail CI, each under its module. Modules in
    databases of their own: each database checked on a shadow on its own server, for its own
    modules."""
    from shared.migrate.schema import inspection

    placements = target.placements()
    if len(placements) == 1:
        return CheckResult(inspection.check(target, shadow_url, all_revisions=all_revisions))
    findings: list[Finding] = []
    for placement in placements:
        for finding in inspection.check(
            target.at(placement),
            shadow_url,
            all_revisions=all_revisions,
            modules=set(placement.modules),
        ):
            if finding not in findings:  # those of no module come from every database
                findings.append(finding)
    return CheckResult(findings)
