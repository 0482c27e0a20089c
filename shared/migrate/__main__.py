"""`python -m shared.migrate ...`: the same command line as `migrate` (whose name another tool,
golang-migrate, may already hold on PATH). Run by a Python without the project's environment
(the system python3), it says which Python to use instead of a traceback."""

import sys
from importlib.util import find_spec

NEEDED = ("typer", "yaml", "sqlalchemy", "alembic", "asyncpg")

missing = [name for name in NEEDED if find_spec(name) is None]
if missing:
    sys.stderr.write(
        f"error: this Python ({sys.executable}) is not the project's environment (no "
        f"{', '.join(missing)}); run .venv/bin/python -m shared.migrate, or .venv/bin/migrate, "
        "once `make demo` (or `make install`) has created .venv\n"
    )
    sys.exit(2)

from shared.migrate.cli.app import main  # noqa: E402  (after the check above)

main()
