"""A process that has imported what `migrate` imports, and forks one child per invocation.

Most tests run `migrate` many times, and each run of the console script spends about 0.6 s of
CPU importing SQLAlchemy, Alembic, asyncpg and Typer before it does anything. Here the imports
are paid once: the child of each request is a process of its own (its own pid, cwd,
environment, argv, stdout, stderr and exit code) that calls the console script's entry point,
`shared.migrate.cli.app:main`, exactly as the script does. Tests of the script itself (signals,
terminals, `make`, start-up) run the real console script instead (`Project.script`).

Protocol: one JSON request per line on stdin ({argv, cwd, env, out, err, timeout}), one JSON
reply per line on stdout ({code, cpu}); a child that outlives its timeout is killed (code -9).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
import time

PRELOAD = (
    "asyncpg",
    "sqlalchemy",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "alembic.runtime.migration",
    "alembic.operations",
    "alembic.autogenerate",
    "typer",
    "rich.console",
    "rich.table",
    "shared.migrate.cli.app",
    "shared.migrate.commands.run",
)


def child(request: dict[str, object], script_dir: str) -> None:
    """Become the invocation; never returns (as the fleet's workers do)."""
    from shared.migrate.forkserver import child as become

    become(request, script_dir)


def serve(script_dir: str) -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # the children share these pages instead of copying them on first touch
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(request, script_dir)
        deadline = time.monotonic() + float(request["timeout"])
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                _, status, usage = os.wait4(pid, 0)
                break
            time.sleep(0.005)
        code = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        sys.stdout.write(json.dumps({"code": code, "cpu": round(cpu, 3)}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve(sys.argv[1])
