"""`owners` and `check`: the verbs that build every module on a shadow database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from shared.migrate.database.target import Target

if TYPE_CHECKING:
    from shared.migrate.schema.checks import Finding
    from shared.migrate.schema.lint.findings import Finding as LintFinding
    from shared.migrate.schema.ownership import OwnershipMap

T = TypeVar("T")


# ---- isolation: owners, check, module add --------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    findings: list[Finding]
    warnings: list[Finding] = field(default_factory=list)  # printed; they do not fail check
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
    """`migrate check`: every finding that should fail CI, each under its module. Modules in
    databases of their own: each database checked on a shadow on its own server, for its own
    modules."""
    from shared.migrate.schema import inspection

    placements = target.placements()
    if len(placements) == 1:
        findings, notes = inspection.check(target, shadow_url, all_revisions=all_revisions)
    else:
        findings, notes = [], []
        for placement in placements:
            found, said = inspection.check(
                target.at(placement),
                shadow_url,
                all_revisions=all_revisions,
                modules=set(placement.modules),
            )
            findings += [f for f in found if f not in findings]  # those of no module: every db
            notes += [n for n in said if n not in notes]
    if any(f.kind in UNBUILT for f in findings):
        return CheckResult(findings, notes=notes)  # lint would stop where the build did
    errors, warnings = _lint(target, shadow_url, all_revisions)
    return CheckResult(findings + errors, warnings, notes)


# what stops the build on the shadow (and so lint's measured pass) before it gets far
UNBUILT = {
    "heads",
    "revision file",
    "duplicate revision",
    "duplicate label",
    "stray file",
    "reapply",
}


def _lint(
    target: Target, shadow_url: str | None, all_revisions: bool
) -> tuple[list[Finding], list[Finding]]:
    """`migrate lint` over what check walks: errors fail check, warnings are printed."""
    from shared.migrate.commands.lint import LintOptions, lint
    from shared.migrate.schema.checks import Finding

    report = lint(target, LintOptions(all_revisions=all_revisions, shadow_url=shadow_url))

    def finding(f: LintFinding) -> Finding:
        return Finding(f.module, "lint", f"{f.rule} at {f.where}: {f.detail}; safe: {f.recipe}")

    return [finding(f) for f in report.errors], [finding(f) for f in report.warnings]
