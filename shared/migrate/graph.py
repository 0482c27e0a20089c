"""The script graph: every module's revisions, heads and dependencies, and where a database is.

Built from the manifest alone (alembic.ini is not read); the URL never enters the Config.
"""

from __future__ import annotations

import heapq
import re
import traceback
from argparse import Namespace
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

from shared.migrate.errors import ConfigError, MigrateError, MultipleHeads, RevisionError
from shared.migrate.manifest import Manifest, Module
from shared.migrate.translate import alembic_errors


@dataclass(frozen=True)
class Revision:
    """One revision file, attributed to the module whose versions directory holds it."""

    revision: str
    module: str
    parents: tuple[str, ...]
    depends_on: tuple[str, ...]
    message: str
    path: Path
    branch_labels: tuple[str, ...]


@dataclass(frozen=True)
class Position:
    """Where the database stands for one module."""

    module: str
    branch: str
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: int
    state: str


def build_config(manifest: Manifest) -> Config:
    """The Alembic Config for the manifest, built in code; `attributes` carries the rest."""
    config = Config(cmd_opts=Namespace(quiet=True, x=None))  # quiet: commands print, not Alembic
    config.set_main_option("script_location", _escape(manifest.script_location))
    config.set_main_option("path_separator", "newline")
    config.set_main_option(
        "version_locations", "\n".join(_escape(m.versions) for m in manifest.modules)
    )
    config.attributes["manifest"] = manifest
    return config


def _escape(path: Path) -> str:
    return str(path).replace("%", "%%")


_REVISION_LINE = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def revision_files(manifest: Manifest) -> dict[str, list[Path]]:
    """Revision id -> the files that declare it, read as text (nothing is executed)."""
    found: dict[str, list[Path]] = {}
    for module in manifest.modules:
        for path in sorted(module.versions.glob("*.py")):
            match = _REVISION_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
            if match:
                found.setdefault(match.group(1), []).append(path)
    return found


def duplicate_revisions(manifest: Manifest) -> dict[str, list[Path]]:
    return {rev: paths for rev, paths in revision_files(manifest).items() if len(paths) > 1}


def stray_files(manifest: Manifest) -> list[tuple[str, str]]:
    """(module, what to do) for each Python file the manifest's directories do not explain."""
    found = []
    for module in manifest.modules:
        for path in sorted(module.versions.glob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.name != "__init__.py" and not _REVISION_LINE.search(text):
                found.append(
                    (
                        module.name,
                        f"{path.relative_to(manifest.root)} is in the versions directory of module "
                        f"'{module.name}' but declares no revision; move it out",
                    )
                )
    legacy = manifest.script_location / "versions"
    for path in sorted(legacy.glob("*.py")) if legacy.is_dir() else []:
        found.append(
            (
                "-",
                f"{path.relative_to(manifest.root)} is outside every module's versions directory "
                "and is never run; move it into services/<module>/migrations",
            )
        )
    return found


class ScriptGraph:
    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        for _, stray in stray_files(manifest):
            raise ConfigError(stray)
        for revision, paths in duplicate_revisions(manifest).items():
            where = " and ".join(str(p.relative_to(manifest.root)) for p in paths)
            raise ConfigError(
                f"revision id {revision} is declared by two files ({where}); "
                "give one of them a new id"
            )
        self.config = build_config(manifest)
        with alembic_errors():
            self.script = ScriptDirectory.from_config(self.config)

    @cached_property
    def revisions(self) -> dict[str, Revision]:
        """Every revision by id, each attributed to its module (by the directory of its file)."""
        by_dir = {m.versions: m.name for m in self.manifest.modules}
        result: dict[str, Revision] = {}
        with alembic_errors(), _import_errors(self.manifest):
            scripts = list(self.script.walk_revisions())
        for script in scripts:
            path = Path(script.path).resolve()
            module = by_dir.get(path.parent)
            if module is None:
                raise ConfigError(
                    f"{path}: revision {script.revision} is outside every module's versions "
                    "directory; move it into one listed in migrations.yaml"
                )
            result[script.revision] = Revision(
                revision=script.revision,
                module=module,
                parents=tuple(script._versioned_down_revisions),
                depends_on=tuple(script._resolved_dependencies),
                message=(script.doc or "").strip(),
                path=path,
                branch_labels=tuple(sorted(script.branch_labels)),
            )
        for rev in result.values():
            foreign = [p for p in rev.parents if p in result and result[p].module != rev.module]
            if foreign:
                raise ConfigError(
                    f"{rev.path.relative_to(self.manifest.root)}: revision {rev.revision} of "
                    f"module '{rev.module}' has parent {foreign[0]} from module "
                    f"'{result[foreign[0]].module}'; a module builds only on its own "
                    "revisions: use depends_on for another module's"
                )
        return result

    @cached_property
    def _by_module(self) -> dict[str, list[Revision]]:
        """Each module's revisions, newest first: a revision comes after every revision of its
        module that builds on it (Kahn's algorithm from the heads; ties by id)."""
        result: dict[str, list[Revision]] = {m.name: [] for m in self.manifest.modules}
        children = dict.fromkeys(self.revisions, 0)
        for rev in self.revisions.values():
            for parent in rev.parents:
                children[parent] += 1
        ready = [r for r, count in children.items() if count == 0]
        heapq.heapify(ready)
        while ready:
            rev = self.revisions[heapq.heappop(ready)]
            result[rev.module].append(rev)
            for parent in rev.parents:
                children[parent] -= 1
                if children[parent] == 0:
                    heapq.heappush(ready, parent)
        return result

    def of_module(self, module: str) -> list[Revision]:
        """The module's revisions, newest first (each after everything that builds on it)."""
        return self._by_module.get(module, [])

    def heads(self, module: str) -> list[str]:
        mine = self.of_module(module)
        children = {p for r in mine for p in r.parents}
        return [r.revision for r in mine if r.revision not in children]

    def head(self, module: Module) -> str | None:
        """The module's one head (None before its first revision); two heads are an error."""
        heads = self.heads(module.name)
        if len(heads) > 1:
            raise MultipleHeads(module.name, heads)
        return heads[0] if heads else None

    def ancestors(self, revisions: Iterable[str]) -> set[str]:
        """The revisions and everything they build on, through parents and depends_on."""
        seen: set[str] = set()
        stack = [r for r in revisions if r in self.revisions]
        while stack:
            rev = stack.pop()
            if rev in seen:
                continue
            seen.add(rev)
            info = self.revisions[rev]
            stack.extend(p for p in (*info.parents, *info.depends_on) if p in self.revisions)
        return seen

    def resolve(self, module: Module | None, text: str) -> str:
        """A revision named on the command line (id, unique prefix, or `base`) as a full id."""
        candidates = [
            r
            for r in self.revisions.values()
            if r.revision.startswith(text) and (module is None or r.module == module.name)
        ]
        exact = [r for r in candidates if r.revision == text]
        if exact:
            return exact[0].revision
        if len(candidates) == 1:
            return candidates[0].revision
        scope = f" in module '{module.name}'" if module else ""
        if not candidates:
            raise RevisionError(
                f"unknown revision '{text}'{scope}; see `migrate history` for the known revisions"
            )
        raise RevisionError(
            f"revision '{text}'{scope} is ambiguous ({', '.join(r.revision for r in candidates)});"
            " give more characters"
        )

    def upgrade(self, destination: str, *, sql: bool = False) -> None:
        """What `alembic.command.upgrade` does, on the scripts this graph has already loaded:
        Alembic's own would load and execute every revision file again."""
        self._run_env(lambda rev, _: self.script._upgrade_revs(destination, rev), destination, sql)

    def downgrade(self, destination: str) -> None:
        """What `alembic.command.downgrade` does, on the scripts already loaded."""
        self._run_env(lambda rev, _: self.script._downgrade_revs(destination, rev), destination)

    def _run_env(self, fn: Any, destination: str, sql: bool = False) -> None:
        with EnvironmentContext(
            self.config, self.script, fn=fn, as_sql=sql, destination_rev=destination
        ):
            self.script.run_env()

    def positions(
        self, version_rows: Iterable[str], recorded: dict[str, str] | None = None
    ) -> list[Position]:
        """Each module's current revision, head and pending count, from the version table rows.

        `recorded` (revision -> module, from the tool's log) attributes a revision this code
        does not know; without it such a revision is put on every module with none applied.
        """
        rows = list(version_rows)
        applied = self.ancestors(rows)
        unknown = [r for r in rows if r not in self.revisions]
        recorded = recorded or {}
        result = []
        for module in self.manifest.modules:
            mine = self.of_module(module.name)
            done = [r for r in mine if r.revision in applied]
            children = {p for r in done for p in r.parents}
            current = tuple(r.revision for r in done if r.revision not in children)
            heads = tuple(self.heads(module.name))
            pending = len(self.ancestors(heads) & {r.revision for r in mine} - applied)
            theirs = [r for r in unknown if recorded.get(r) == module.name]
            if theirs or (unknown and not current and not set(unknown) & set(recorded)):
                state = "unknown revision"
                current = tuple(theirs or unknown)
            elif pending == 0:
                state = "up to date"
            elif current:
                state = "behind"
            else:
                state = "not started"
            result.append(Position(module.name, module.branch, current, heads, pending, state))
        return result


@contextmanager
def _import_errors(manifest: Manifest) -> Iterator[None]:
    """A revision file that raises while Alembic loads it: name the file, not a traceback."""
    try:
        yield
    except MigrateError:
        raise
    except Exception as exc:
        frames = [f.filename for f in traceback.extract_tb(exc.__traceback__)]
        dirs = {m.versions for m in manifest.modules}
        culprit = next((f for f in reversed(frames) if Path(f).resolve().parent in dirs), None)
        if culprit is None:
            raise
        raise ConfigError(
            f"{Path(culprit).resolve().relative_to(manifest.root)}: raised "
            f"{type(exc).__name__} while loading ({exc}); fix the revision file"
        ) from exc
