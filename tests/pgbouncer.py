"""A real PgBouncer (Debian's `pgbouncer`) in session pooling mode, in front of the test server.

`make test` runs the deploy tests through it (`pytest --through-pgbouncer`): each test process
starts one on a free port, with one `*` wildcard database pointing at the run's server and
PgBouncer's own defaults otherwise (no `ignore_startup_parameters`): what it refuses at
startup, it refuses in the tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.db.url import DatabaseURL

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


def binary() -> str | None:
    """The pgbouncer program, where Debian's package puts it (not always on a user's PATH)."""
    return shutil.which("pgbouncer", path=SEARCH_PATH)


@dataclass
class PgBouncer:
    process: subprocess.Popen[bytes]
    port: int
    user: str
    log: Path

    def url(self, database: str) -> str:
        """A URL of `database` through the pooler (it logs in to the server for the client)."""
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start(server: DatabaseURL, home: Path) -> PgBouncer:
    """Start PgBouncer in `home` (its config and log), forwarding every database to `server`."""
    program = binary()
    if program is None:
        raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    home.mkdir(parents=True, exist_ok=True)
    host, port = server.hosts[0] if server.hosts else ("localhost", None)
    user = server.user or "postgres"
    auth = home / "users.txt"  # read before PgBouncer drops root; the password stays in it
    auth.touch(mode=0o600)
    auth.write_text(f'"{user}" "{server.password or ""}"\n')
    said: list[str] = []
    for _ in range(5):  # a free port can be taken between looking and listening
        listen = free_port()
        config = home / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={host} port={port or 5432}\n"
            "[pgbouncer]\n"
            "pool_mode = session\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {listen}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {auth}\n"
            # other roles (a test's role without rights) are looked up on the server as `user`
            f"auth_user = {user}\n"
        )
        log = home / "pgbouncer.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [program, *run_as(host), str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        bouncer = PgBouncer(process, listen, user, log)
        if ready(bouncer, server.database or "postgres"):
            return bouncer
        bouncer.stop()
        said = log.read_text(errors="replace").strip().splitlines()[-1:]
    raise RuntimeError(f"pgbouncer did not start: {' '.join(said)}")


def run_as(host: str) -> list[str]:
    """PgBouncer refuses to run as root: as root, it runs as the owner of the server's socket
    directory (who can reach the socket), or as nobody for a server over TCP."""
    if os.geteuid() != 0:
        return []
    if host.startswith("/"):
        return ["-u", pwd.getpwuid(os.stat(host).st_uid).pw_name]
    return ["-u", "nobody"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ready(bouncer: PgBouncer, database: str, seconds: float = 10) -> bool:
    """Whether a client gets through to the server's `database` within `seconds`."""
    import asyncio

    async def through() -> bool:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=bouncer.port, user=bouncer.user, database=database, timeout=2
        )
        try:
            return bool(await conn.fetchval("SELECT true"))
        finally:
            await conn.close()

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and bouncer.process.poll() is None:
        try:
            return asyncio.run(through())
        except (TimeoutError, OSError, asyncpg.PostgresError):
            time.sleep(0.1)
    return False
