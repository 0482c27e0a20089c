"""Loading a revision file as a Python module, only when it is about to run (or cannot be read
statically); every failure names the file."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from shared.migrate.errors import ConfigError, shown
from shared.migrate.manifest import relative


def load_script(path: Path, root: Path) -> ModuleType:
    """Execute the revision file at `path` as a fresh module (never added to sys.modules)."""
    name = "migrate_revision_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{relative(path, root)}: cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise syntax_error(path, root, exc) from exc
    except Exception as exc:
        raise ConfigError(
            f"{relative(path, root)}: raised {type(exc).__name__} while loading "
            f"({shown(str(exc), 200)}); fix the revision file"
        ) from exc
    return module


def syntax_error(path: Path, root: Path, exc: SyntaxError | ValueError) -> ConfigError:
    """A revision file that is not valid Python (a merge-conflict marker, a stray character)."""
    line = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
    reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return ConfigError(
        f"{relative(path, root)}{line}: not valid Python ({shown(reason)}); fix the revision file"
    )
