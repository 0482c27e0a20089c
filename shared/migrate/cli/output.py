"""Rendering command results, for people and for machines. Nothing here computes.

On a terminal, tables, colours and the live progress come from rich. Piped or redirected
output, NO_COLOR and TERM=dumb get plain aligned text, without importing rich (it costs about
50 ms, on commands that run in every deploy and CI job). `--json` prints stable documents,
each with a "version" field (documented in the README).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.migrate.database.progress import Progress
from shared.migrate.errors import short_checksum, shown
from shared.migrate.manifest import relative

if TYPE_CHECKING:
    from shared.migrate.commands import CreateResult, History, Reset, Resolution
    from shared.migrate.commands.adopt import Adopted
    from shared.migrate.commands.baseline import Baselined, Marked
    from shared.migrate.commands.move import Moved
    from shared.migrate.commands.replace import Written
    from shared.migrate.commands.run import RunResult
    from shared.migrate.commands.squash import Squashed
    from shared.migrate.database.holders import Holder
    from shared.migrate.database.recorder import LogEntry
    from shared.migrate.database.state import Position, Status
    from shared.migrate.history.graph import Revision
    from shared.migrate.history.plans import Step
    from shared.migrate.schema.checks import Finding
    from shared.migrate.schema.lint.findings import Finding as LintFinding
    from shared.migrate.schema.lint.findings import Report
    from shared.migrate.schema.ownership import OwnershipMap

JSON_VERSION = 1
STATE_STYLES = {
    "up to date": "green",
    "behind": "yellow",
    "not started": "cyan",
    "unknown revision": "bold red",
    "no revisions": "dim",
    "not moved": "bold red",
    "move unfinished": "bold red",
}


class Cell(NamedTuple):
    text: str
    style: str = ""


def fancy(stream: Any = None) -> bool:
    """Whether to draw with rich: a terminal that takes colour."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


_consoles: dict[bool, Any] = {}


def console(err: bool = False) -> Any:
    if err not in _consoles:
        from rich.console import Console

        _consoles[err] = Console(stderr=err, highlight=False)
    return _consoles[err]


def say(text: str, style: str = "") -> None:
    """One line (or several) of result on stdout."""
    if style and fancy():
        console().print(text, style=style, markup=False)
    else:
        sys.stdout.write(text + "\n")


def show_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"version": JSON_VERSION, **data}, indent=2) + "\n")


def show_table(headers: Sequence[str], rows: Sequence[Sequence[str | Cell]]) -> None:
    cells = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]
    if fancy():
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in cells:
            table.add_row(*(_styled(c) for c in row))
        console().print(table)
        return
    widths = [max([len(h), *(len(r[i].text) for r in cells)]) for i, h in enumerate(headers)]
    for line in [[Cell(h) for h in headers], *cells]:
        text = "  ".join(c.text.ljust(widths[i]) for i, c in enumerate(line)).rstrip()
        sys.stdout.write(text + "\n")


def _styled(cell: Cell) -> Any:
    from rich.text import Text

    return Text(cell.text, style=cell.style)


# ---- up / down / resolve ---------------------------------------------------------------------


class LineProgress(Progress):
    """Django's lines: "Applying users abc create users..." as a revision starts, and
    " OK (0.05s)" once it is committed; waits and retries on stderr (every few seconds)."""

    TELL_EVERY = 5.0

    def __init__(self, quiet: bool = False) -> None:
        self.open = False
        self.told = 0.0
        self.quiet = quiet  # --json: stdout is for the document

    def _err(self, text: str) -> None:
        if self.open:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.open = False
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def waiting(self, holder: Holder | None, seconds: float) -> None:
        if time.monotonic() - self.told < self.TELL_EVERY:
            return
        self.told = time.monotonic()
        self._err(_waiting(holder, seconds))

    def started(self, step: Step, number: int, total: int) -> None:
        if self.quiet:
            return
        sys.stdout.write(_line(step) + "...")
        sys.stdout.flush()  # on screen while the revision runs, even through a pipe
        self.open = True

    def finished(self, step: Step, number: int, total: int) -> None:
        if self.quiet:
            return
        sys.stdout.write(f" OK ({step.seconds or 0:.2f}s)\n")
        self.open = False

    def retrying(
        self, step: Step, attempt: int, retries: int, delay: float, blockers: list[Holder]
    ) -> None:
        if self.open:  # each attempt a line of its own, ended by what became of it
            sys.stdout.write(" lock timeout\n")
            self.open = False
        self._err(_retry(step, attempt, retries, delay, blockers))
        self.started(step, 0, 0)

    def close(self) -> None:
        if self.open:  # the revision did not commit
            sys.stdout.write(" FAILED\n")
            sys.stdout.flush()
            self.open = False


class LiveProgress(Progress):
    """On a terminal: the same lines once each revision is committed, and below them a live
    bar (revision n of N, elapsed) naming the revision running; a live line while waiting."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bar

        self.bar = Bar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console(),
            transient=True,
        )
        self.task: Any = None
        self.running: Step | None = None

    def _task(self, total: int) -> Any:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("", total=total)
        return self.task

    def waiting(self, holder: Holder | None, seconds: float) -> None:
        task = self._task(0)
        self.bar.update(task, description=_waiting(holder, seconds))

    def started(self, step: Step, number: int, total: int) -> None:
        task = self._task(total)
        self.bar.update(task, total=total, description=_line(step))
        self.running = step

    def finished(self, step: Step, number: int, total: int) -> None:
        self.bar.console.print(
            f"{_line(step)}... [green]OK[/green] [dim]({step.seconds or 0:.2f}s)[/dim]",
            highlight=False,
        )
        self.bar.update(self._task(total), completed=number)
        self.running = None

    def retrying(
        self, step: Step, attempt: int, retries: int, delay: float, blockers: list[Holder]
    ) -> None:
        console(err=True).print(_retry(step, attempt, retries, delay, blockers), style="yellow")

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()
        if self.running is not None:  # the revision did not commit
            console().print(
                f"{_line(self.running)}... [bold red]FAILED[/bold red]", highlight=False
            )
            self.running = None


def progress() -> Progress:
    return LiveProgress() if fancy() else LineProgress()


def _line(step: Step) -> str:
    if step.kind == "move":  # no script runs: the database ran what these revisions replace
        onto = ", ".join(step.together)
        return f"Moving onto {onto} (they replace revisions the database ran)"
    verb = "Applying" if step.direction == "up" else "Unapplying"
    return f"{verb} {step.module} {step.revision} {shown(step.message)}"


def _waiting(holder: Holder | None, seconds: float) -> str:
    who = holder.describe() if holder else "holder unknown"
    return f"waiting for the migration lock ({who}); {seconds:.0f}s so far"


def _retry(step: Step, attempt: int, retries: int, delay: float, blockers: list[Holder]) -> str:
    who = "; ".join(b.describe() for b in blockers[:2]) or "the blocker had already gone"
    return (
        f"lock timeout in {step.module} {step.revision} (waited on {who}); "
        f"retry {attempt} of {retries} in {delay:.1f}s"
    )


def run_summary(result: RunResult, direction: str, as_json: bool = False) -> None:
    if result.sql is not None:
        sys.stdout.write(result.sql)
        return
    if as_json:
        show_json(
            {
                "direction": direction,
                "planned_only": result.planned_only,
                "skipped_unknown": result.skipped_unknown,
                "tidied": list(result.tidied),
                "steps": [
                    {
                        "module": s.module,
                        "revision": s.revision,
                        "message": s.message,
                        "seconds": s.seconds,
                        "kind": s.kind,
                        "together": list(s.together),
                    }
                    for s in result.steps
                ],
            }
        )
        return
    if result.skipped_unknown:
        say(
            "The database is at a revision this build does not know; "
            "--allow-unknown: nothing applied.",
            "yellow",
        )
        return
    if result.planned_only:
        if not result.steps:
            say("Nothing to do.")
            return
        verb = "apply" if direction == "up" else "unapply"
        say(f"Would {verb}:")
        for s in result.steps:
            if s.kind == "move":
                say(f"  move onto {', '.join(s.together)} (no script runs)")
            else:
                say(f"  {s.module} {s.revision} {shown(s.message)}")
        return
    if result.tidied:
        say(
            f"Tidied the version table (removed {', '.join(result.tidied)}, implied by other rows)."
        )
    if not result.steps:
        say("No migrations to apply." if direction == "up" else "No migrations to unapply.")
        return
    ran = [s for s in result.steps if s.kind != "move"]
    moved = sum(len(s.together) for s in result.steps if s.kind == "move")
    took = sum(s.seconds or 0 for s in result.steps)
    done = "Applied" if direction == "up" else "Unapplied"
    parts = [f"{done} {_count(len(ran), 'revision')}"] if ran else []
    if moved:  # no script ran for those: the database ran what they replace
        parts.append(f"{'moved' if ran else 'Moved'} onto {_count(moved, 'revision')}")
    say(f"{' and '.join(parts)} in {took:.2f}s.", "bold green")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def resolution(result: Resolution) -> None:
    what = {"accept": "Accepted the edited file of", "applied": "Marked as applied:"}.get(
        result.action, "Marked as rolled back:"
    )
    say(f"{what} {', '.join(result.revisions)} (recorded in the log).")


def reset(result: Reset) -> None:
    names = ", ".join(shown(name) for name in result.dropped)
    dropped = f"dropped schema {names} and all it held" if names else "it held no schema"
    say(f"Emptied {result.database}: {dropped}.")


def moved(result: Moved) -> None:
    where = f"from {result.source} to {result.destination}"
    rows = ", ".join(result.rows) or "none"
    if result.copied:
        say(
            f"Module '{result.module}' moved {where}: wrote its version rows ({rows}) and "
            f"{result.entries} log entries there, then removed them from {result.source}.",
            "bold green",
        )
    elif result.removed:
        say(
            f"Module '{result.module}' moved {where}: its records were already in "
            f"{result.destination} (at {rows}); removed them from {result.source}.",
            "bold green",
        )
    else:
        say(
            f"Module '{result.module}' has no records left in {result.source}; it lives in "
            f"{result.destination} (at {rows}). Nothing to move."
        )


# ---- create / merge ----------------------------------------------------------------------------


def created(result: CreateResult, root: Path, as_json: bool = False) -> None:
    path = relative(result.path, root) if result.path else None
    if as_json:
        show_json(
            {
                "module": result.module,
                "path": path,
                "revision": result.revision,
                "depends_on": list(result.depends_on),
                "changes": list(result.changes),
                "lint": [_finding_json(f) for f in result.lint],
            }
        )
        return
    if path is None:
        say(f"No changes in module '{result.module}'; no revision written.")
        return
    say(f"Created {path} (revision {result.revision})", "bold")
    for change in result.changes:
        say(f"  {change}", _change_style(change))
    if result.depends_on:
        say(f"  depends on {', '.join(result.depends_on)}")
    if result.lint:
        say("  lint (migrate lint):")
    for finding in result.lint:
        lint_finding(finding, "    ")


def _change_style(change: str) -> str:
    return {"+": "green", "-": "red", "~": "yellow"}.get(change[:1], "")


# ---- squash / adopt / baseline -----------------------------------------------------------------


def _written_json(written: Written, root: Path) -> dict[str, Any]:
    return {
        "module": written.module,
        "path": relative(written.path, root),
        "revision": written.revision,
        "depends_on": list(written.depends_on),
        "labels": list(written.labels),
        "changes": list(written.summary),
    }


def _written_lines(written: Written) -> None:
    for change in written.summary:
        say(f"  {change}", _change_style(change))
    if written.depends_on:
        say(f"  depends on {', '.join(written.depends_on)}")


def squashed(result: Squashed, root: Path, as_json: bool = False) -> None:
    written = result.written
    if as_json:
        show_json(
            {
                **_written_json(written, root),
                "replaces": [result.top],
                "replaced": result.replaced,
                "folder": relative(result.folder, root),
                "proof": {"objects": result.objects, "rows": result.rows},
            }
        )
        return
    path = relative(written.path, root)
    say(f"Squashed {written.module}: {result.replaced} revisions up to {result.top}", "bold")
    say(f"into {path} (revision {written.revision})")
    _written_lines(written)
    if written.labels:
        say(
            f"  labels {', '.join(written.labels)}: other modules' depends_on on them now lead "
            "here (their files are not edited)"
        )
    say(
        f"The replaced files are in {relative(result.folder, root)}/: databases inside them "
        "run the rest of them, then move onto the squash (`migrate up`)."
    )
    say(
        f"Proved on a shadow database: from empty it builds exactly what they build "
        f"({result.objects} objects, {result.rows} rows).",
        "bold green",
    )


def adopted(result: Adopted, root: Path, as_json: bool = False) -> None:
    folder = relative(result.folder, root)
    if as_json:
        show_json(
            {
                "name": result.name,
                "folder": folder,
                "replaces": [result.head],
                "replaced": result.count,
                "baselines": [_written_json(w, root) for w in result.baselines],
                "drift": [{"module": m, "change": c} for m, c in result.drift],
                "notes": list(result.notes),
                "proof": {"objects": result.objects, "rows": result.rows},
            }
        )
        return
    say(
        f"Wrote {len(result.baselines)} baselines; together they replace {result.head}, the "
        f"head of the {result.count} revisions kept in {folder}/:",
        "bold",
    )
    for written in result.baselines:
        say(f"{written.module}: {relative(written.path, root)} (revision {written.revision})")
        _written_lines(written)
    for note in result.notes:
        say(f"note: {note}", "yellow")
    if result.drift:
        say("The models differ from the old head's schema (the baselines follow the database):")
        for module, change in result.drift:
            say(f"  {module}: {change}", "yellow")
        say(
            "  (bring the models to the schema, or the schema to the models with migrate create "
            "--module X; `migrate check` reports them until then)"
        )
    say(
        f"migrations.yaml: adopted: {result.name} ({folder}); alembic.ini is unchanged (plain "
        "Alembic sees the baselines only)."
    )
    say(
        f"Adopted: proved on a shadow database, the baselines from empty build exactly what the "
        f"old history builds ({result.objects} objects, {result.rows} rows). Databases move "
        "onto them with `migrate up` (one at the old head gets no DDL).",
        "bold green",
    )


def baselined(result: Baselined, root: Path, as_json: bool = False) -> None:
    if as_json:
        show_json(
            {
                "baselines": [_written_json(w, root) for w in result.baselines],
                "drift": [{"module": m, "change": c} for m, c in result.drift],
                "unclaimed": list(result.unclaimed),
                "notes": list(result.notes),
                "proof": {"objects": result.objects},
            }
        )
        return
    for written in result.baselines:
        say(
            f"Wrote {relative(written.path, root)} (revision {written.revision}), the first "
            f"revision of {written.module}, from the database's schema",
            "bold",
        )
        _written_lines(written)
    for note in result.notes:
        say(f"note: {note}", "yellow")
    for item in result.unclaimed:
        say(f"left alone: {item} (no module's models claim it; --assign NAME=MODULE)", "yellow")
    if result.drift:
        say("The models differ from the database (the baselines follow the database):")
        for module, change in result.drift:
            say(f"  {module}: {change}", "yellow")
    say(
        f"Proved on a shadow database: the baselines build exactly what the database has "
        f"({result.objects} objects). Next, on each database that has these tables: "
        "migrate baseline --mark",
        "bold green",
    )


def marked(result: Marked, as_json: bool = False) -> None:
    if as_json:
        show_json({"marked": list(result.revisions)})
        return
    if not result.revisions:
        say("Nothing to mark: the baselines are applied here already.")
        return
    say(
        f"Marked as applied: {', '.join(result.revisions)} (the database has exactly what "
        "each builds; recorded in the log as baseline)."
    )


# ---- where things stand -----------------------------------------------------------------------


def _current(position: Position) -> str | None:
    return ",".join(position.current) or None


def _module(position: Position) -> str | None:
    """A module the manifest does not list is named as the log names it, if it does."""
    return None if position.module == "?" and not position.in_manifest else position.module


def _branch(position: Position) -> str | None:
    return position.branch if position.in_manifest else None


def _head(position: Position) -> str | None:
    return ",".join(position.heads) or None


def _several(databases: Mapping[str, str]) -> bool:
    """Whether the modules live in more than one database (then tables name each one's)."""
    return len(set(databases.values())) > 1


def _where(p: Position) -> dict[str, Any]:
    """The fields `current` and `status` both give a module in JSON, first."""
    return {"module": _module(p), "branch": _branch(p), "current": _current(p)}


def current(positions: list[Position], as_json: bool, databases: Mapping[str, str]) -> None:
    if as_json:
        show_json(
            {"modules": [{**_where(p), "database": databases.get(p.module)} for p in positions]}
        )
        return
    several = _several(databases)
    show_table(
        ["MODULE", "CURRENT", *(["DATABASE"] if several else [])],
        [
            [p.module, _current(p) or "-", *([databases.get(p.module, "-")] if several else [])]
            for p in positions
        ],
    )


def status(result: Status, as_json: bool) -> None:
    positions = result.positions
    if as_json:
        show_json(
            {
                "modules": [
                    {
                        **_where(p),
                        "head": _head(p),
                        "pending": p.pending,
                        "state": p.state,
                        "models": None
                        if not p.in_manifest
                        else ("found" if p.models else "missing"),
                        "database": result.databases.get(p.module),
                    }
                    for p in positions
                ],
                "version_table": {
                    "ok": result.version_table_ok,
                    "implied_rows": list(result.implied_rows),
                },
            }
        )
        return
    several = _several(result.databases)
    show_table(
        ["MODULE", "CURRENT", "HEAD", "PENDING", "STATE", *(["DATABASE"] if several else [])],
        [
            [
                p.module,
                _current(p) or "-",
                _head(p) or "-",
                "?" if p.pending is None else str(p.pending),
                Cell(
                    p.state + ("" if p.models else " (models missing)"),
                    STATE_STYLES.get(p.state, ""),
                ),
                *([result.databases.get(p.module, "-")] if several else []),
            ]
            for p in positions
        ],
    )
    unmoved = [p.module for p in positions if p.state in ("not moved", "move unfinished")]
    for name in unmoved:
        say(
            f"module '{name}': its records are (also) in another database than its own; "
            f"finish moving it: migrate module move {name}",
            "yellow",
        )
    if result.implied_rows:
        say(
            f"version table: row(s) {', '.join(result.implied_rows)} implied by other rows "
            "(plain Alembic cannot upgrade from this); `migrate up` tidies it",
            "yellow",
        )


def heads(data: dict[str, list[str]], as_json: bool) -> None:
    if as_json:
        show_json({"modules": [{"module": m, "heads": h} for m, h in data.items()]})
        return
    show_table(
        ["MODULE", "HEAD"],
        [[m, Cell(", ".join(h) or "-", "red" if len(h) > 1 else "")] for m, h in data.items()],
    )


def history(result: History, root: Path, verbose: bool, as_json: bool) -> None:
    """Each module's revisions, newest first: `[X]` applied, `[ ]` not (when the database
    could be read), which are heads and merges, and what a revision replaces."""
    data, applied = result.modules, result.applied
    if as_json:
        show_json(
            {
                "modules": [
                    {
                        "module": module,
                        "database": result.databases.get(module),
                        "revisions": [
                            _revision_json(r, root, applied, r.revision in tops, result.replaces)
                            for r in revisions
                        ],
                        "replaced": [r.revision for r in result.replaced.get(module, [])],
                    }
                    for module, revisions in data.items()
                    for tops in [_tops(revisions)]
                ],
                "adopted": [
                    {"name": name, "replaced": [r.revision for r in revisions]}
                    for name, revisions in result.replaced.items()
                    if name not in data
                ],
            }
        )
        return
    several = len(set(result.databases.values())) > 1
    for module, revisions in data.items():
        where = f" ({result.databases.get(module) or 'database not set'})" if several else ""
        say(f"{module}{where}:", "bold")
        if not revisions:
            say("  (no revisions)", "dim")
        tops = _tops(revisions)
        for rev in revisions:
            mark = "" if applied is None else ("[X] " if rev.revision in applied else "[ ] ")
            tags = [
                t
                for t, on in (("head", rev.revision in tops), ("merge", len(rev.parents) > 1))
                if on
            ]
            if rev.replaces:
                count = result.replaces.get(rev.revision, 0)
                tags.append(
                    f"replaces {count} revision{'s' if count != 1 else ''} up to "
                    + ", ".join(rev.replaces)
                )
            suffix = f"  ({', '.join(tags)})" if tags else ""
            style = "" if applied is None or rev.revision in applied else "dim"
            say(f"  {mark}{rev.revision}  {shown(rev.message)}{suffix}", style)
            if verbose:
                parents = ", ".join(rev.parents) or "<base>"
                say(f"      parents: {parents}", "dim")
                say(f"      file: {relative(rev.path, root)}", "dim")
                if rev.depends_on:
                    say(f"      depends on: {', '.join(rev.depends_on)}", "dim")
                if len(rev.branch_labels) > 1:
                    say(f"      labels: {', '.join(rev.branch_labels)}", "dim")
        kept = result.replaced.get(module, [])
        if kept:
            folder = relative(kept[0].path.parent, root)
            say(f"  ({len(kept)} replaced revisions kept in {folder}/)", "dim")
            if verbose:
                for rev in kept:
                    say(f"      {rev.revision}  {shown(rev.message)}", "dim")
    for name, kept in result.replaced.items():
        if name in data or not kept:
            continue
        folder = relative(kept[0].path.parent, root)
        say(f"{name} (adopted):", "bold")
        say(f"  ({len(kept)} replaced revisions kept in {folder}/)", "dim")
        if verbose:
            for rev in kept:
                say(f"      {rev.revision}  {shown(rev.message)}", "dim")


def _tops(revisions: list[Revision]) -> set[str]:
    below = {p for r in revisions for p in r.parents}
    return {r.revision for r in revisions if r.revision not in below}


def _revision_json(
    rev: Revision, root: Path, applied: set[str] | None, head: bool, replaces: dict[str, int]
) -> dict[str, Any]:
    return {
        "revision": rev.revision,
        "parents": list(rev.parents),
        "depends_on": list(rev.depends_on),
        "message": rev.message,
        "path": relative(rev.path, root),
        "head": head,
        "merge": len(rev.parents) > 1,
        "applied": None if applied is None else rev.revision in applied,
        "replaces": list(rev.replaces),
        "replaces_count": replaces.get(rev.revision, 0),
    }


def owners(data: OwnershipMap, module: str | None, as_json: bool) -> None:
    rows = [o for o in data.owners if module is None or o.module == module]
    unowned = data.unowned if module is None else []
    if as_json:
        show_json(
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
        return
    show_table(["TABLE", "MODULE", "FROM"], [[o.table, o.module, o.source] for o in rows])
    for c in data.conflicts:
        say(f"conflict: {c.detail}", "red")
    for t in unowned:
        say(f"unowned: {t} (in the database, owned by no module; left alone)", "yellow")


def findings(
    items: list[Finding],
    as_json: bool,
    warnings: Sequence[Finding] = (),
    notes: Sequence[Finding] = (),
) -> None:
    """`check`: the findings that fail it, then the warnings (lint's) and the notes that do
    not."""
    if as_json:
        show_json(
            {
                "ok": not items,
                "findings": [
                    {"module": f.module, "kind": f.kind, "detail": f.detail} for f in items
                ],
                "warnings": [
                    {"module": f.module, "kind": f.kind, "detail": f.detail} for f in warnings
                ],
                "notes": [{"module": n.module, "kind": n.kind, "detail": n.detail} for n in notes],
            }
        )
        return
    rows: list[list[str | Cell]] = [[f.module, Cell(f.kind, "red"), f.detail] for f in items]
    rows += [[f.module, Cell("warning", "yellow"), f.detail] for f in warnings]
    if rows:
        show_table(["MODULE", "KIND", "DETAIL"], rows)
    if not items:
        say("All checks passed.", "bold green")
    for note in notes:
        say(f"note: {note.module}: {note.detail}", "dim")


def log(entries: list[LogEntry], as_json: bool) -> None:
    if as_json:
        show_json(
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
                        "database": e.database or None,
                    }
                    for e in entries
                ]
            }
        )
        return
    if not entries:
        say("No revisions recorded yet.")
        return
    several = len({e.database for e in entries}) > 1
    show_table(
        ["WHEN", "MODULE", "REVISION", "DIR", "MS", "BY", "CHECKSUM", "NOTE"]
        + (["DATABASE"] if several else []),
        [
            [
                e.finished_at.strftime("%Y-%m-%d %H:%M:%S"),
                e.module,
                e.revision,
                Cell(e.direction, "green" if e.direction == "up" else "yellow"),
                str(e.duration_ms),
                f"{e.os_user}@{e.host} ({e.db_user})",
                short_checksum(e.checksum),
                "" if e.action == "run" else f"{e.action}: {shown(e.reason or '', 40)}",
                *([e.database] if several else []),
            ]
            for e in entries
        ],
    )


# ---- lint ------------------------------------------------------------------------------------

LEVEL_STYLES = {"error": "bold red", "warning": "yellow"}


def lint(report: Report, fmt: str, show_silenced: bool = False) -> None:
    """`migrate lint`: findings as text, GitHub workflow annotations, or JSON."""
    if fmt == "json":
        show_json(lint_json(report))
        return
    if fmt == "github":
        for finding in report.findings:
            sys.stdout.write(_annotation(finding) + "\n")
    else:
        for finding in report.findings:
            lint_finding(finding)
    if show_silenced or fmt == "text":
        for finding in report.silenced if show_silenced else ():
            say(
                f"silenced  {finding.rule}  {finding.where}  {finding.revision}: "
                f"{shown(finding.silenced or '', 200)}",
                "dim",
            )
    say(_lint_summary(report), "bold green" if not report.findings else "bold")


def lint_finding(finding: LintFinding, indent: str = "") -> None:
    """One finding: the rule and where, then what happens, and the safe way."""
    head = f"{indent}{finding.level}  {finding.rule}  {finding.where}  ({finding.revision})"
    say(head, LEVEL_STYLES.get(finding.level, ""))
    say(f"{indent}  {finding.detail}")
    say(f"{indent}  safe: {finding.recipe}", "dim")


def _lint_summary(report: Report) -> str:
    errors, warnings = len(report.errors), len(report.warnings)
    count = len(report.revisions)
    if not count:
        return "No revisions to lint."
    how = "measured on a shadow database" if report.measured else "static: not measured"
    revisions = f"{count} revision{'' if count == 1 else 's'}"
    silenced = f", {len(report.silenced)} silenced" if report.silenced else ""
    if not errors and not warnings:
        return f"No lint findings in {revisions} ({how}{silenced})."
    return (
        f"{errors} error{'' if errors == 1 else 's'}, {warnings} warning"
        f"{'' if warnings == 1 else 's'} in {revisions} ({how}{silenced})."
    )


def _annotation(finding: LintFinding) -> str:
    """A GitHub workflow command: the message on the `op.` call's line of the file."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    where = f"file={prop(finding.file)}"
    if finding.line:
        where += f",line={finding.line}"
    title = prop(f"migrate lint: {finding.rule}")
    message = data(f"{finding.detail}. Safe: {finding.recipe}")
    return f"::{finding.level} {where},title={title}::{message}"


def _finding_json(finding: LintFinding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "level": finding.level,
        "module": finding.module,
        "revision": finding.revision,
        "file": finding.file,
        "line": finding.line,
        "statement": finding.statement,
        "detail": finding.detail,
        "recipe": finding.recipe,
        "measured": finding.measured,
        "locks": [{"relation": k.relation, "mode": k.mode} for k in finding.locks],
        "rewrites": list(finding.rewrites),
        "scans": list(finding.scans),
        "silenced": finding.silenced,
    }


def lint_json(report: Report) -> dict[str, Any]:
    from shared.migrate.errors import QUOTE_LIMIT

    cap = QUOTE_LIMIT * 40
    return {
        "ok": not report.errors,
        "measured": report.measured,
        "findings": [_finding_json(f) for f in report.findings],
        "silenced": [_finding_json(f) for f in report.silenced],
        "revisions": [
            {
                "module": r.module,
                "revision": r.revision,
                "file": r.file,
                "statements": [
                    {
                        "index": s.index,
                        "line": s.line,
                        "sql": s.sql[:cap],
                        "in_transaction": s.in_transaction,
                        "locks": [
                            {"relation": k.relation, "mode": k.mode}
                            for k in (s.measured.locks if s.measured else ())
                        ],
                        "rewrites": list(s.measured.rewrites) if s.measured else [],
                        "scans": list(s.measured.scans) if s.measured else [],
                    }
                    for s in r.statements
                ],
            }
            for r in report.revisions
        ],
    }
