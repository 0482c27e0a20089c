"""Fleets: one command over many databases (`--databases`) or tenant schemas (`--schemas`).

Alembic's `op` and `context` are process-wide, so two databases never migrate in one process:
each member runs in a worker process of its own, the one-database command itself
(`migrate ... --json`, forked from a process that has imported it: forkserver.py), its URLs in
the worker's environment (never on a command line, where `ps` shows them). At most `jobs` run
at once; each finds its database's lock on its own. A failure stops nobody else unless
`fail_fast`. The result is data: the CLI renders it (cli/fleet.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.db.url import DatabaseURL
from shared.migrate.database import sources
from shared.migrate.database.session import run_async
from shared.migrate.database.sources import Member
from shared.migrate.database.target import Target
from shared.migrate.errors import ConfigError, shown

STATES = ("done", "up to date", "failed", "skipped")
JOBS_PER_CORE = 4  # a worker mostly waits: on its start, on the server, on its lock
MAX_JOBS = 256
TERM_GRACE = 60.0  # seconds a terminated worker has to say what became of its revision


def default_jobs() -> int:
    return max(1, min(32, JOBS_PER_CORE * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class Outcome:
    """What became of one member."""

    member: Member
    state: str  # one of STATES
    detail: str  # one line: what was done, or the error
    seconds: float = 0.0
    document: dict[str, Any] | None = None  # the worker's --json document


@dataclass(frozen=True)
class FleetResult:
    command: str
    source: str
    outcomes: list[Outcome]
    noun: str = "databases"  # or "tenant schemas"

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(o.state for o in self.outcomes)
        return {state: found.get(state, 0) for state in STATES}

    @property
    def failed(self) -> bool:
        return any(o.state == "failed" for o in self.outcomes)


class FleetProgress:
    """Callbacks with nothing to do; the CLI's subclasses print."""

    def started(self, member: Member, running: int) -> None:
        """A worker starts on `member`; `running` are at work now."""

    def finished(self, outcome: Outcome, finished: int, total: int) -> None:
        """A member is done with (in any state); `finished` of `total` so far."""

    def close(self) -> None:
        """The run is over."""


@dataclass(frozen=True)
class FleetOptions:
    jobs: int = field(default_factory=default_jobs)
    fail_fast: bool = False
    debug: bool = False
    progress: FleetProgress = field(default_factory=FleetProgress)


def members(target: Target, databases: str | None, schemas: str | None) -> tuple[str, list[Member]]:
    """The fleet a command runs on: what its source is called, and its entries."""
    if databases and schemas:
        raise ConfigError(
            "--databases and --schemas do not go together; run the tenant schemas of each "
            "database with its own --database-url ... --schemas"
        )
    source = databases or schemas
    assert source is not None
    flag = "--databases" if databases else "--schemas"
    manifest = target.manifest
    if source.startswith("sql:"):
        url = target.url
        rows = run_async(lambda: sources.query(url, source[4:], flag))
        where = "sql:"
        if databases:
            found = sources.row_members(manifest, rows)
        else:
            found = sources.schema_rows(manifest, rows, _tenant_urls(target))
    else:
        where, lines = sources.read_text(source, flag)
        if databases:
            found = sources.database_members(manifest, where, lines)
        else:
            found = sources.schema_members(manifest, where, lines, _tenant_urls(target))
    if not found:  # a registry or file gone empty is a mistake, never a fleet done
        what = "the query returned no rows" if where == "sql:" else f"{shown(where)} lists no entry"
        raise ConfigError(
            f"{flag}: {what} (blank lines and # comments are skipped); nothing was run: "
            f"give the {'databases' if databases else 'tenant schemas'} to run on"
        )
    return where, found


def _tenant_urls(target: Target) -> tuple[tuple[str, DatabaseURL], ...]:
    """The databases every tenant schema is in: the shared one, and any module's own that is
    set (a tenant's schema is in each)."""
    manifest = target.manifest
    urls = {manifest.settings.database_url_env: target.url}
    for module in manifest.modules:
        env = manifest.database_env(module)
        if env not in urls and os.environ.get(env):
            urls[env] = target.url_of(module)
    return tuple(urls.items())


def run_fleet(
    target: Target,
    command: str,
    arguments: Sequence[str],
    source: tuple[str, list[Member]],
    options: FleetOptions,
    *,
    hide: Sequence[str] = (),
) -> FleetResult:
    """Run `migrate COMMAND ARGUMENTS --json` on every member, `options.jobs` at a time; each
    member's outcome as the worker's exit code and document say. `hide`: variables the
    workers do not get (the source's own)."""
    where, entries = source
    if not 1 <= options.jobs <= MAX_JOBS:
        raise ConfigError(f"--jobs must be from 1 to {MAX_JOBS}")
    runner = _Runner(target, command, list(arguments), entries, options, set(hide))
    noun = "tenant schemas" if any(m.schema for m in entries) else "databases"
    return FleetResult(command, where, run_async(runner.run), noun)


class _Runner:
    def __init__(
        self,
        target: Target,
        command: str,
        arguments: list[str],
        entries: list[Member],
        options: FleetOptions,
        hide: set[str],
    ) -> None:
        self.target = target
        self.command = command
        self.arguments = arguments
        self.entries = entries
        self.options = options
        self.hide = hide | set(sources.variables(target.manifest))
        self.stop: str | None = None  # why no more workers start
        self.running = 0
        self.outcomes: list[Outcome | None] = [None] * len(entries)
        self.finished = 0
        self.terminated = 0  # workers at work when the fleet was terminated

    async def run(self) -> list[Outcome]:
        with tempfile.TemporaryDirectory(prefix="migrate-fleet-") as directory:
            self.workers = Workers(directory, self.hide)
            try:
                return await self._run()
            finally:
                await asyncio.shield(self.workers.close())

    async def _run(self) -> list[Outcome]:
        repeated = sources.duplicates(self.entries)
        slots = asyncio.Semaphore(self.options.jobs)
        tasks = [
            asyncio.create_task(self._one(i, member, slots, repeated.get(i)))
            for i, member in enumerate(self.entries)
        ]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:  # gather has cancelled each task once: let them end
            await asyncio.gather(*tasks, return_exceptions=True)
            before = self.finished - self.terminated
            said = (
                f"{before} of {len(self.entries)} had finished; the {self.terminated} at work were "
                "terminated, each saying what became of its revision (above); the others did "
                "not start"
            )
            raise asyncio.CancelledError(said) from None
        return [o for o in self.outcomes if o is not None]

    def _record(self, index: int, outcome: Outcome) -> None:
        self.outcomes[index] = outcome
        self.finished += 1
        self.options.progress.finished(outcome, self.finished, len(self.entries))
        if outcome.state == "failed" and self.options.fail_fast and self.stop is None:
            self.stop = f"not started: --fail-fast after {outcome.member.name} failed"

    async def _one(
        self, index: int, member: Member, slots: asyncio.Semaphore, first: Member | None
    ) -> None:
        if member.error is not None:
            self._record(index, Outcome(member, "failed", member.error))
            return
        if first is not None:
            again = f"listed again at {member.origin} (first at {first.origin})"
            self._record(index, Outcome(member, "skipped", again))
            return
        async with slots:
            if self.stop is not None:
                self._record(index, Outcome(member, "skipped", self.stop))
                return
            self.running += 1
            self.options.progress.started(member, self.running)
            try:
                outcome = await self._work(index, member)
            finally:
                self.running -= 1
            self._record(index, outcome)

    async def _work(self, index: int, member: Member) -> Outcome:
        argv = ["migrate", "--config", str(self.target.manifest.path)]
        if self.options.debug:
            argv.append("--debug")
        if member.schema:
            argv += ["--tenant-schema", member.schema]
        argv += [self.command, *self.arguments, "--json"]
        env = {k: v for k, v in os.environ.items() if k not in self.hide}
        env.pop("MIGRATE_VIA_MAKE", None)
        env.update(NO_COLOR="1", **member.environment())
        ended = await self.workers.start(index, argv, env)
        started = time.monotonic()
        try:
            code = await asyncio.shield(ended)
        except asyncio.CancelledError:  # the fleet was terminated: so is the worker, honestly
            await self.workers.signal(index, signal.SIGTERM)
            try:
                code = await asyncio.wait_for(asyncio.shield(ended), TERM_GRACE)
            except TimeoutError:
                await self.workers.signal(index, signal.SIGKILL)
                code = await ended
            out, err = self.workers.output(index)
            self.terminated += 1
            self._record(index, _outcome(self.command, member, code, out, err, started))
            raise
        out, err = self.workers.output(index)
        return _outcome(self.command, member, code, out, err, started)


class Workers:
    """The fork server (shared/migrate/forkserver.py) and the workers it forks: each a process
    of its own running the command line, its output in files of a private directory."""

    def __init__(self, directory: str, hide: set[str]) -> None:
        self.directory = directory
        self.hide = hide  # variables the server need not have (each worker gets its own)
        self.server: asyncio.subprocess.Process | None = None
        self.forked: dict[int, asyncio.Future[int]] = {}
        self.ended: dict[int, asyncio.Future[int]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.starting = asyncio.Lock()

    async def start(self, index: int, argv: list[str], env: dict[str, str]) -> asyncio.Future[int]:
        """Fork a worker running `migrate ARGV`, once it is running: a future of its exit code."""
        async with self.starting:
            if self.server is None:
                await self._start()
        loop = asyncio.get_running_loop()
        self.forked[index], self.ended[index] = loop.create_future(), loop.create_future()
        out, err = self._paths(index)
        await self._send(
            {"id": index, "argv": argv, "env": env, "cwd": os.getcwd(), "out": out, "err": err}
        )
        await self.forked[index]
        return self.ended[index]

    async def signal(self, index: int, number: int) -> None:
        """Send a worker a signal, through the server: a worker it has reaped is left alone,
        where its pid might by now be another process's."""
        await self._send({"id": index, "signal": number})

    async def _send(self, request: dict[str, object]) -> None:
        assert self.server is not None and self.server.stdin is not None
        self.server.stdin.write(json.dumps(request).encode() + b"\n")
        await self.server.stdin.drain()

    async def _start(self) -> None:
        self.server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shared.migrate.forkserver",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k not in self.hide},
            # a session of its own: a Ctrl-C or a group's SIGTERM reaches the fleet, which
            # passes one SIGTERM on (a second would cut short a worker's account)
            start_new_session=True,
        )
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.server is not None and self.server.stdout is not None
        async for line in self.server.stdout:
            message = json.loads(line)
            if "pid" in message:
                self.forked[message["id"]].set_result(message["pid"])
            else:
                self.ended[message["id"]].set_result(message["code"])
        for future in [*self.forked.values(), *self.ended.values()]:  # the server is gone
            if not future.done():
                future.set_exception(ConfigError("the fleet's worker server ended unexpectedly"))

    def _paths(self, index: int) -> tuple[str, str]:
        return (
            os.path.join(self.directory, f"{index}.out"),
            os.path.join(self.directory, f"{index}.err"),
        )

    def output(self, index: int) -> tuple[bytes, bytes]:
        found = []
        for path in self._paths(index):
            try:
                with open(path, "rb") as file:
                    found.append(file.read())
                os.unlink(path)
            except OSError:
                found.append(b"")
        return found[0], found[1]

    async def close(self) -> None:
        if self.server is None:
            return
        assert self.server.stdin is not None
        self.server.stdin.close()
        await self.server.wait()
        if self.reader is not None:
            await self.reader


def _outcome(
    command: str, member: Member, code: int | None, out: bytes, err: bytes, started: float
) -> Outcome:
    seconds = time.monotonic() - started
    document: dict[str, Any] | None = None
    with contextlib.suppress(ValueError):
        loaded = json.loads(out.decode("utf-8", "replace"))
        document = loaded if isinstance(loaded, dict) else None
    if code == 0 and document is not None:
        state, detail = _succeeded(command, document)
        return Outcome(member, state, detail, seconds, document)
    if command == "check" and code == 1 and document is not None and document.get("findings"):
        findings = document["findings"]
        first = findings[0]
        detail = (
            f"{len(findings)} finding(s); first: {shown(first.get('module'))} "
            f"{shown(first.get('kind'))}: {shown(first.get('detail'), 200)}"
        )
        return Outcome(member, "failed", detail, seconds, document)
    return Outcome(member, "failed", _origin(member, _error_line(err, code)), seconds, document)


def _origin(member: Member, error: str) -> str:
    """The worker's error names the variable it read a URL from; the user wrote it in the
    fleet's source."""
    for env, _ in member.urls:
        where = member.origin if len(member.urls) == 1 else f"{env} of {member.origin}"
        error = error.replace(f"${env}", where)
    return error


def _succeeded(command: str, document: dict[str, Any]) -> tuple[str, str]:
    if command == "status":
        behind = [m for m in document.get("modules", []) if m.get("state") != "up to date"]
        return "done", f"{len(behind)} module(s) not up to date" if behind else "up to date"
    if command == "check":
        return "done", "all checks passed"
    if document.get("skipped_unknown"):
        return "skipped", "at a revision this build does not know (--allow-unknown)"
    steps = document.get("steps", [])
    verb = "applied" if command == "up" else "unapplied"
    if document.get("planned_only"):
        return (
            ("done", f"would have {verb} {len(steps)} revision(s)")
            if steps
            else (
                "up to date",
                "nothing to do",
            )
        )
    if not steps:
        tidied = document.get("tidied")
        return "up to date", "tidied the version table" if tidied else ""
    took = sum(s.get("seconds") or 0 for s in steps)
    modules = ", ".join(dict.fromkeys(str(s.get("module")) for s in steps))
    return "done", f"{verb} {len(steps)} revision(s) of {shown(modules)} in {took:.2f}s"


def _error_line(err: bytes, code: int | None) -> str:
    """The worker's one-line error (its last `error:` line), else how it ended."""
    lines = err.decode("utf-8", "replace").strip().splitlines()
    said = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if said:
        return shown(said[-1], 400)
    if code is not None and code < 0:
        return f"the worker was killed by signal {-code}"
    return f"the worker exited with code {code}" + (f": {shown(lines[-1], 200)}" if lines else "")


# ---- status: the fleet's picture ---------------------------------------------------------------


@dataclass(frozen=True)
class ModulePicture:
    module: str
    head: str | None
    at: list[tuple[str | None, int]]  # current revision(s) -> how many databases, most first


@dataclass(frozen=True)
class Straggler:
    member: Member
    modules: list[dict[str, Any]]  # {module, current, state}, of those not up to date


@dataclass(frozen=True)
class Picture:
    modules: list[ModulePicture]
    stragglers: list[Straggler]


def picture(result: FleetResult) -> Picture:
    """How many databases are at each revision, per module, and which are behind."""
    counted: dict[str, Counter[str | None]] = {}
    heads: dict[str, str | None] = {}
    stragglers = []
    for outcome in result.outcomes:
        if outcome.document is None or outcome.state != "done":
            continue
        behind = []
        for module in outcome.document.get("modules", []):
            name = str(module.get("module"))
            counted.setdefault(name, Counter())[module.get("current")] += 1
            heads.setdefault(name, module.get("head"))
            if module.get("state") != "up to date":
                behind.append(
                    {k: module.get(k) for k in ("module", "current", "head", "state", "pending")}
                )
        if behind:
            stragglers.append(Straggler(outcome.member, behind))
    modules = [
        ModulePicture(name, heads[name], sorted(found.items(), key=lambda kv: -kv[1]))
        for name, found in counted.items()
    ]
    return Picture(modules, stragglers)
