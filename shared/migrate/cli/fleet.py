"""Rendering a fleet run (`--databases`, `--schemas`): a line per database as it finishes, a live
count on a terminal, then the summary (or the fleet's picture, for `status`), or one JSON
document. Nothing here computes."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from shared.migrate.cli.output import Cell, console, fancy, say, show_json, show_table
from shared.migrate.commands.fleet import STATES, FleetProgress, FleetResult, Outcome, picture
from shared.migrate.errors import shown

if TYPE_CHECKING:
    from shared.migrate.database.sources import Member

STYLES = {"done": "green", "up to date": "cyan", "failed": "bold red", "skipped": "yellow"}
WIDTH = max(len(s) for s in STATES)


def _line(outcome: Outcome) -> str:
    detail = f"  {outcome.detail}" if outcome.detail else ""
    return f"{outcome.state:<{WIDTH}}  {outcome.member.name}{detail}"


class LineProgress(FleetProgress):
    """Piped: one line per database as it finishes (`quiet`: none, for --json)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def finished(self, outcome: Outcome, finished: int, total: int) -> None:
        if not self.quiet:
            sys.stdout.write(_line(outcome) + "\n")
            sys.stdout.flush()


class LiveProgress(FleetProgress):
    """On a terminal: the same lines, and below them a live count (finished of total, failed,
    at work now)."""

    def __init__(self, command: str, total: int, lines: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn(f"migrate {command}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console(),
            transient=True,
        )
        self.lines = lines
        self.total = total
        self.task: Any = None
        self.failed = 0
        self.running = 0

    def _update(self, **kw: Any) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("", total=self.total)
        failed = f"{self.failed} failed, " if self.failed else ""
        self.bar.update(self.task, description=f"{failed}{self.running} at work", **kw)

    def started(self, member: Member, running: int) -> None:
        self.running = running
        self._update()

    def finished(self, outcome: Outcome, finished: int, total: int) -> None:
        self.failed += outcome.state == "failed"
        self.running = max(0, self.running - (outcome.state not in ("skipped",)))
        if self.lines:
            style = STYLES.get(outcome.state, "")
            detail = f"  {shown(outcome.detail, 300)}" if outcome.detail else ""
            self.bar.console.print(
                f"[{style}]{outcome.state:<{WIDTH}}[/{style}]  {outcome.member.name}",
                detail,
                highlight=False,
                markup=True,
                sep="",
            )
        self._update(completed=finished, total=total)

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()


def progress(command: str, total: int, quiet: bool) -> FleetProgress:
    """Lines as databases finish (not for `status`, whose output is the picture)."""
    lines = command != "status"
    if not quiet and fancy():
        return LiveProgress(command, total, lines)
    return LineProgress(quiet=quiet or not lines)


# ---- the end -------------------------------------------------------------------------------------


def _member_json(outcome: Outcome) -> dict[str, Any]:
    member = outcome.member
    result = dict(outcome.document or {})
    result.pop("version", None)
    return {
        "database": member.urls[0][1].display() if member.urls else None,
        "schema": member.schema,
        "origin": member.origin,
        "databases": member.databases(),
        "state": outcome.state,
        "detail": outcome.detail or None,
        "error": outcome.detail if outcome.state == "failed" else None,
        "seconds": round(outcome.seconds, 3),
        "result": result or None,
    }


def summary(result: FleetResult, as_json: bool, seconds: float) -> None:
    """`up`, `down`, `check` over a fleet: how many ended each way, and each that failed or
    was skipped with its one line."""
    if as_json:
        show_json(
            {
                "command": result.command,
                "source": result.source,
                "summary": result.counts,
                "databases": [_member_json(o) for o in result.outcomes],
            }
        )
        return
    total = len(result.outcomes)
    if not total:
        say(f"No {result.noun} in {result.source}; nothing to do.")
        return
    counts = result.counts
    names = {"up to date": "already up to date"}
    say("")
    show_table(
        ["STATE", result.noun.upper()],
        [[Cell(names.get(s, s), STYLES[s] if counts[s] else ""), str(counts[s])] for s in STATES],
    )
    _exceptions(result)
    failed = f"; {counts['failed']} failed" if result.failed else ""
    style = "bold red" if result.failed else "bold green"
    say(f"{total} {result.noun} in {seconds:.1f}s{failed}.", style)


def _exceptions(result: FleetResult) -> None:
    odd = [o for o in result.outcomes if o.state in ("failed", "skipped")]
    if odd:
        say("")
        show_table(
            ["DATABASE", "STATE", "WHY"],
            [[o.member.name, Cell(o.state, STYLES[o.state]), o.detail] for o in odd],
        )


def status(result: FleetResult, as_json: bool, seconds: float) -> None:
    """`status` over a fleet: per module, how many databases are at each revision; the
    databases behind (the stragglers); those that could not be read."""
    found = picture(result)
    if as_json:
        show_json(
            {
                "command": "status",
                "source": result.source,
                "summary": result.counts,
                "modules": [
                    {
                        "module": m.module,
                        "head": m.head,
                        "at": [{"current": c, "databases": n} for c, n in m.at],
                    }
                    for m in found.modules
                ],
                "stragglers": [
                    {"database": s.member.name, "origin": s.member.origin, "modules": s.modules}
                    for s in found.stragglers
                ],
                "databases": [_member_json(o) for o in result.outcomes],
            }
        )
        return
    rows: list[list[str | Cell]] = []
    for m in found.modules:
        for i, (current, count) in enumerate(m.at):
            style = "green" if current == m.head else "yellow"
            first = i == 0
            rows.append(
                [
                    m.module if first else "",
                    (m.head or "-") if first else "",
                    Cell(current or "-", style),
                    str(count),
                ]
            )
    if rows:
        show_table(["MODULE", "HEAD", "CURRENT", "DATABASES"], rows)
    read = sum(1 for o in result.outcomes if o.state == "done")
    if found.stragglers:
        say("")
        say(f"Behind: {len(found.stragglers)} of {read} {result.noun}", "yellow")
        show_table(
            ["DATABASE", "MODULE", "CURRENT", "STATE"],
            [
                [s.member.name, m["module"], m["current"] or "-", Cell(m["state"], "yellow")]
                for s in found.stragglers
                for m in s.modules
            ],
        )
    elif read:
        say(f"All {read} {result.noun} are up to date.", "bold green")
    _exceptions(result)
    failed = result.counts["failed"]
    say(
        f"{read} of {len(result.outcomes)} {result.noun} read in {seconds:.1f}s"
        + (f"; {failed} could not be." if failed else ".")
    )


def clock() -> float:
    return time.monotonic()
