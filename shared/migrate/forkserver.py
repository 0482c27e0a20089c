"""The fleet's workers: one process that has imported the tool forks a child per database.

Each child is a process of its own that runs the command line's entry point (`migrate ...
--json`) with the argv, environment and working directory the fleet gives it, its stdout and
stderr in files: the one-database path, unchanged, in a process where nothing else migrates.
Forking it from here saves each database the imports (about 0.4 s of CPU), which is most of
what a database with one pending revision costs.

    python -m shared.migrate.forkserver

Protocol, JSON lines: requests on stdin ({id, argv, env, cwd, out, err}; argv starts with the
program's name; the URLs travel in
`env`, through the pipe, never on a command line); on stdout {id, pid} once a child is forked,
{id, code} once it has ended (its exit code, or minus the signal that ended it). {id, signal}
sends a child that signal, if it has not ended (its pid cannot have been reused). When stdin
closes, the server waits for its children and exits. It starts nothing itself (no thread, no
event loop, no connection) before it forks.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import sys
import time
import traceback
from typing import Any

PRELOAD = (
    "asyncpg",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "alembic.runtime.migration",
    "alembic.operations",
    "shared.migrate.cli.app",
    "shared.migrate.commands.run",
    "shared.migrate.database.runner",
)


def child(request: dict[str, Any], program_dir: str | None = None) -> None:
    """Become the invocation `request` asks for (its argv, program name first; environment;
    working directory; files for stdout and stderr); never returns. `program_dir`: what
    sys.path starts with, as a console script in it has it."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        for fd, path in ((1, request["out"]), (2, request["err"])):
            target = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.argv = [str(a) for a in request["argv"]]
        if program_dir is not None:
            sys.path[0] = program_dir
        from shared.migrate.cli.app import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
    except BaseException:  # nothing may escape into the server's loop
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # the children share these pages instead of copying them on first touch
    stdin = sys.stdin.buffer
    selector = selectors.DefaultSelector()
    selector.register(stdin, selectors.EVENT_READ)
    children: dict[int, Any] = {}
    pending = b""
    open_ = True
    while open_ or children:
        if open_ and selector.select(timeout=0.01 if children else None):
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                open_ = False
                selector.unregister(stdin)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if "signal" in request:  # only a child not yet reaped: its pid is still its own
                    for pid, id_ in children.items():
                        if id_ == request["id"]:
                            os.kill(pid, int(request["signal"]))
                    continue
                pid = os.fork()
                if pid == 0:
                    child(request)
                children[pid] = request["id"]
                reply({"id": request["id"], "pid": pid})
        elif not open_:
            time.sleep(0.01)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            reply({"id": children.pop(pid), "code": os.waitstatus_to_exitcode(status)})


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the fleet decides what its workers hear
    serve()
