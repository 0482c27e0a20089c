"""Loading a revision file as a Python module, only when it is about to run (or cannot be read
statically); every failure names the file."""

from __future__ import annotations

import contextlib
import importlib.util
import marshal
import os
import re
import sys
from pathlib import Path
from types import CodeType, ModuleType

from shared.migrate.errors import ConfigError, shown
from shared.migrate.manifest import relative

_CHECKED_HASH = (0b11).to_bytes(4, "little")  # PEP 552 flags: hash-based, source checked


def load_script(path: Path, root: Path) -> ModuleType:
    """Execute the revision file at `path` as a fresh module (never added to sys.modules)."""
    name = "migrate_revision_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{relative(path, root)}: cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        exec(_code(path), module.__dict__)
    except SyntaxError as exc:
        raise syntax_error(path, root, exc) from exc
    except Exception as exc:
        raise ConfigError(
            f"{relative(path, root)}: raised {type(exc).__name__} while loading "
            f"({shown(str(exc), 200)}); fix the revision file"
        ) from exc
    return module


def _code(path: Path) -> CodeType:
    """The file's code as its bytes are now. Python's import would run a cached .pyc whose
    source kept its size and mtime (whole seconds): a file restored with its old times, or
    edited twice in one second, would run stale while the log records the new file's checksum.
    A .pyc is used here only when it carries the hash of these bytes (PEP 552's checked hash,
    which the import system verifies too), else the bytes are compiled and such a .pyc kept."""
    source = path.read_bytes()
    digest = importlib.util.source_hash(source)
    cached = Path(importlib.util.cache_from_source(str(path)))
    head = importlib.util.MAGIC_NUMBER + _CHECKED_HASH + digest
    with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
        data = cached.read_bytes()
        if data.startswith(head):
            code = marshal.loads(data[len(head) :])
            if isinstance(code, CodeType):
                return code
    code = compile(source, str(path), "exec", dont_inherit=True)
    if not sys.dont_write_bytecode:
        with contextlib.suppress(OSError):
            cached.parent.mkdir(exist_ok=True)
            partial = cached.with_name(f"{cached.name}.{os.getpid()}")
            partial.write_bytes(head + marshal.dumps(code))
            os.replace(partial, cached)
    return code


def syntax_error(path: Path, root: Path, exc: SyntaxError | ValueError) -> ConfigError:
    """A revision file that is not valid Python (a merge-conflict marker, a stray character)."""
    line = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
    reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return ConfigError(
        f"{relative(path, root)}{line}: not valid Python ({shown(reason)}); fix the revision file"
    )
