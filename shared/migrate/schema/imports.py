"""The repository's own modules that revision files import (a helper that builds tables, a
package of shared columns), followed transitively, within the repository root only: what a
revision builds depends on them as much as on its own file, so a kept shadow build is keyed
on their content too.

Imports are found in the files' text, not by importing or parsing them: a history of
thousands of revisions that import only alembic and sqlalchemy costs one read of each file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path

# `import a.b as c, d` and `from a.b import (c, d)` anywhere, indented or not
_IMPORT = re.compile(
    r"^[ \t]*(?:import[ \t]+([\w. \t,]+)|from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*))",
    re.MULTILINE,
)


def imported_sources(root: Path, files: Iterable[Path]) -> list[str]:
    """`path sha256` of every module under `root` that `files` import, directly or through
    one another, sorted (paths relative to `root`)."""
    root = root.resolve()
    tops = _top_level_names(root)
    if not tops:
        return []
    names = [t.encode() for t in tops]
    seen: dict[Path, str] = {}
    pending: list[Path] = []
    for path in files:
        text = path.read_bytes()
        if any(name in text for name in names):  # a cheap test before reading its imports
            pending += _imports(root, tops, text.decode("utf-8", "replace"), package=None)
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        data = path.read_bytes()
        seen[path] = hashlib.sha256(data).hexdigest()
        pending += _imports(root, tops, data.decode("utf-8", "replace"), _package(root, path))
    return sorted(f"{p.relative_to(root).as_posix()} {digest}" for p, digest in seen.items())


def _top_level_names(root: Path) -> set[str]:
    """The names an import may reach `root` by: its modules and packages, and the directories
    that are not a package of the same name installed elsewhere (namespace packages)."""
    names = set()
    for entry in root.iterdir():
        name = entry.stem if entry.suffix == ".py" else entry.name
        if not name.isidentifier() or name == "__pycache__":
            continue
        if entry.is_file() and entry.suffix != ".py":
            continue
        if entry.is_dir() and not (entry / "__init__.py").is_file():
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.origin is not None:
                continue  # a regular package elsewhere wins over a directory without one
        names.add(name)
    return names


def _package(root: Path, path: Path) -> str:
    """The package a module under `root` belongs to (for its relative imports)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts if path.name == "__init__.py" else parts[:-1])


def _imports(root: Path, tops: set[str], text: str, package: str | None) -> list[Path]:
    """The files under `root` that the imports in `text` load (a package's __init__ too)."""
    found: list[Path] = []
    for match in _IMPORT.finditer(text):
        plain, source, names = match.groups()
        if plain:
            modules = [part.split()[0] for part in plain.split(",") if part.split()]
        else:
            base = _absolute(source, package)
            if base is None:
                continue
            listed = names.strip("()").replace("\\", " ").split(",")
            members = [item.split()[0] for item in listed if item.split()]
            modules = [base, *(f"{base}.{m}" for m in members if m != "*")]
        for module in modules:
            if module.partition(".")[0] in tops:
                found += _files(root, module)
    return found


def _absolute(name: str, package: str | None) -> str | None:
    """`name` (maybe relative, `.x`, `..x`) as an absolute module name; None when it cannot
    be one (a relative import outside a package)."""
    dots = len(name) - len(name.lstrip("."))
    if not dots:
        return name
    if package is None:
        return None
    parts = package.split(".") if package else []
    if dots - 1 > len(parts):
        return None
    base = parts[: len(parts) - (dots - 1)]
    rest = name[dots:]
    return ".".join([*base, rest] if rest else base) or None


def _files(root: Path, module: str) -> list[Path]:
    """The files under `root` that importing `module` runs: each package's __init__ on the
    way and the module itself; none when it is not the repository's."""
    found: list[Path] = []
    here = root
    for part in module.split("."):
        if not part.isidentifier():
            return found
        here = here / part
        init = here / "__init__.py"
        if init.is_file():
            found.append(init)
        elif here.with_suffix(".py").is_file():
            found.append(here.with_suffix(".py"))
            return found
        elif not here.is_dir():
            return found
    return found
