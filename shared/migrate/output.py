"""Rendering command results: short human lines and tables, or JSON. Nothing here computes."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.migrate.errors import shown
from shared.migrate.progress import Progress

if TYPE_CHECKING:
    from shared.migrate.checks import Finding
    from shared.migrate.commands import CreateResult, Resolution
    from shared.migrate.graph import Revision
    from shared.migrate.ownership import OwnershipMap
    from shared.migrate.planner import Step
    from shared.migrate.progress import RunResult
    from shared.migrate.recorder import LogEntry
    from shared.migrate.session import Holder
    from shared.migrate.state import Position, Status


class LineProgress(Progress):
    """Django's lines: "Applying users abc create users..." as a revision starts, and
    " OK (0.05s)" once it is committed; waits and retries on stderr."""

    def __init__(self) -> None:
        self.open = False

    def _err(self, text: str) -> None:
        import typer

        if self.open:
            typer.echo("")
            self.open = False
        typer.echo(text, err=True)

    def waiting(self, holder: Holder | None, seconds: float) -> None:
        who = holder.describe() if holder else "holder unknown"
        self._err(f"waiting for the migration lock ({who}); {seconds:.0f}s so far")

    def started(self, step: Step, number: int, total: int) -> None:
        verb = "Applying" if step.direction == "up" else "Unapplying"
        sys.stdout.write(f"{verb} {step.module} {step.revision} {shown(step.message)}...")
        sys.stdout.flush()  # on screen while the revision runs, even through a pipe
        self.open = True

    def finished(self, step: Step, number: int, total: int) -> None:
        sys.stdout.write(f" OK ({step.seconds or 0:.2f}s)\n")
        self.open = False

    def retrying(
        self, step: Step, attempt: int, retries: int, delay: float, blockers: list[Holder]
    ) -> None:
        who = "; ".join(b.describe() for b in blockers[:2]) or "the blocker had already gone"
        self._err(
            f"lock timeout in {step.module} {step.revision} (waited on {who}); "
            f"retry {attempt} of {retries} in {delay:.1f}s"
        )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    )


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2)


def run_summary(result: RunResult, direction: str) -> str:
    if result.sql is not None:
        return result.sql.rstrip("\n")
    if result.skipped_unknown:
        return (
            "The database is at a revision this build does not know; "
            "--allow-unknown: nothing applied."
        )
    if result.planned_only:
        if not result.steps:
            return "Nothing to do."
        verb = "apply" if direction == "up" else "unapply"
        return "\n".join(
            [f"Would {verb}:"]
            + [f"  {s.module} {s.revision} {shown(s.message)}" for s in result.steps]
        )
    tidied = (
        f"Tidied the version table (removed {', '.join(result.tidied)}, implied by other rows).\n"
        if result.tidied
        else ""
    )
    if not result.steps:
        return tidied + (
            "No migrations to apply." if direction == "up" else "No migrations to unapply."
        )
    noun = "revision" if len(result.steps) == 1 else "revisions"
    done = "Applied" if direction == "up" else "Unapplied"
    return f"{tidied}{done} {len(result.steps)} {noun}."


def resolution(result: Resolution) -> str:
    what = {"accept": "Accepted the edited file of", "applied": "Marked as applied:"}.get(
        result.action, "Marked as rolled back:"
    )
    return f"{what} {', '.join(result.revisions)} (recorded in the log)."


def created(result: CreateResult, root: Path) -> str:
    if result.path is None:
        return f"No changes in module '{result.module}'; no revision written."
    line = f"Created {result.path.relative_to(root)} (revision {result.revision})"
    if result.depends_on:
        line += f", depends on {', '.join(result.depends_on)}"
    return line


def _current(position: Position) -> str | None:
    return ",".join(position.current) or None


def _head(position: Position) -> str | None:
    return ",".join(position.heads) or None


def current(positions: list[Position], as_json: bool) -> str:
    if as_json:
        return to_json(
            {
                "modules": [
                    {"module": p.module, "branch": p.branch, "current": _current(p)}
                    for p in positions
                ]
            }
        )
    return table(["MODULE", "CURRENT"], [[p.module, _current(p) or "-"] for p in positions])


def status(result: Status, as_json: bool) -> str:
    positions = result.positions
    if as_json:
        return to_json(
            {
                "modules": [
                    {
                        "module": p.module,
                        "branch": p.branch,
                        "current": _current(p),
                        "head": _head(p),
                        "pending": p.pending,
                        "state": p.state,
                        "models": "found" if p.models else "missing",
                    }
                    for p in positions
                ],
                "version_table": {
                    "ok": result.version_table_ok,
                    "implied_rows": list(result.implied_rows),
                },
            }
        )
    text = table(
        ["MODULE", "CURRENT", "HEAD", "PENDING", "STATE"],
        [
            [
                p.module,
                _current(p) or "-",
                _head(p) or "-",
                "?" if p.pending is None else str(p.pending),
                p.state + ("" if p.models else " (models missing)"),
            ]
            for p in positions
        ],
    )
    if result.implied_rows:
        text += (
            f"\nversion table: row(s) {', '.join(result.implied_rows)} implied by other rows "
            "(plain Alembic cannot upgrade from this); `migrate up` tidies it"
        )
    return text


def heads(data: dict[str, list[str]], as_json: bool) -> str:
    if as_json:
        return to_json({"modules": [{"module": m, "heads": h} for m, h in data.items()]})
    return table(["MODULE", "HEAD"], [[m, ", ".join(h) or "-"] for m, h in data.items()])


def _revision_json(rev: Revision, root: Path) -> dict[str, Any]:
    return {
        "revision": rev.revision,
        "parents": list(rev.parents),
        "depends_on": list(rev.depends_on),
        "message": rev.message,
        "path": rev.path.relative_to(root).as_posix(),
    }


def history(data: dict[str, list[Revision]], root: Path, verbose: bool, as_json: bool) -> str:
    if as_json:
        return to_json(
            {
                "modules": [
                    {"module": m, "revisions": [_revision_json(r, root) for r in revs]}
                    for m, revs in data.items()
                ]
            }
        )
    lines: list[str] = []
    for module, revisions in data.items():
        lines.append(f"{module}:")
        if not revisions:
            lines.append("  (no revisions)")
        for rev in revisions:
            parents = ", ".join(rev.parents) or "<base>"
            lines.append(f"  {parents} -> {rev.revision}  {rev.message}")
            if verbose:
                lines.append(f"      file: {rev.path.relative_to(root)}")
                if rev.depends_on:
                    lines.append(f"      depends on: {', '.join(rev.depends_on)}")
    return "\n".join(lines)


def owners(data: OwnershipMap, module: str | None, as_json: bool) -> str:
    rows = [o for o in data.owners if module is None or o.module == module]
    unowned = data.unowned if module is None else []
    if as_json:
        return to_json(
            {
                "tables": [
                    {"table": o.table, "module": o.module, "source": o.source} for o in rows
                ],
                "conflicts": [
                    {"table": c.table, "modules": list(c.modules)} for c in data.conflicts
                ],
                "unowned": unowned,
            }
        )
    lines = [table(["TABLE", "MODULE", "FROM"], [[o.table, o.module, o.source] for o in rows])]
    lines += [f"conflict: {c.detail}" for c in data.conflicts]
    lines += [f"unowned: {t} (in the database, owned by no module; left alone)" for t in unowned]
    return "\n".join(lines)


def findings(items: list[Finding], as_json: bool) -> str:
    if as_json:
        return to_json(
            {
                "ok": not items,
                "findings": [
                    {"module": f.module, "kind": f.kind, "detail": f.detail} for f in items
                ],
            }
        )
    if not items:
        return "All checks passed."
    return table(["MODULE", "KIND", "DETAIL"], [[f.module, f.kind, f.detail] for f in items])


def log(entries: list[LogEntry], as_json: bool) -> str:
    if as_json:
        return to_json(
            {
                "entries": [
                    {
                        "module": e.module,
                        "revision": e.revision,
                        "direction": e.direction,
                        "finished_at": e.finished_at.isoformat(),
                        "duration_ms": e.duration_ms,
                        "db_user": e.db_user,
                        "host": e.host,
                        "os_user": e.os_user,
                        "checksum": e.checksum,
                        "action": e.action,
                        "reason": e.reason,
                    }
                    for e in entries
                ]
            }
        )
    if not entries:
        return "No revisions recorded yet."
    return table(
        ["WHEN", "MODULE", "REVISION", "DIR", "MS", "BY", "CHECKSUM"],
        [
            [
                e.finished_at.strftime("%Y-%m-%d %H:%M:%S"),
                e.module,
                e.revision,
                e.direction,
                str(e.duration_ms),
                f"{e.os_user}@{e.host} ({e.db_user})",
                e.checksum[:12],
            ]
            for e in entries
        ],
    )
