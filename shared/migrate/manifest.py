"""`migrations.yaml`: the modules, their paths and dependencies, and the global settings.

Loaded once into frozen dataclasses; every problem is a ConfigError naming the key and the fix.
"""

from __future__ import annotations

import marshal
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.migrate.errors import ConfigError, did_you_mean, shown

MANIFEST_NAME = "migrations.yaml"
CACHE_FORMAT = 2  # the cache keeps the bytes it was parsed from
NAME_LIMIT = 63  # PostgreSQL's identifier length; names become labels, paths and identifiers
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
MODULE_KEYS = {
    "name",
    "path",
    "models",
    "versions",
    "branch",
    "depends_on",
    "schema",
    "database_url_env",
}
MODULE_KEYS |= {"lint", "lint_from"}  # migrate lint: see the block at the end
ENV_NAME_PATTERN = re.compile(r"[A-Z_][A-Z0-9_]{0,99}\Z")
SETTINGS_KEYS = {
    "version_table",
    "version_table_schema",
    "log_table",
    "database_url_env",
    "shadow_database_url_env",
    "metadata",
    "script_location",
    "lock_timeout",
    "statement_timeout",
    "lock_wait",
    "lock_retries",
    "shadow_templates",
}
DURATION_PATTERN = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\Z")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, None: 1.0}
DURATION_KEYS = ("lock_timeout", "statement_timeout", "lock_wait")
TIMEOUT_KEYS = ("lock_timeout", "statement_timeout")  # PostgreSQL's: at most INT_MAX ms
PG_TIMEOUT_MAX_MS = 2**31 - 1
TOP_KEYS = {"settings", "modules", "adopted", "lint"}
ADOPTED_KEYS = {"name", "versions"}
REPLACED_FOLDER = "replaced"  # in a module's versions directory: the revisions a squash replaced


@dataclass(frozen=True)
class Module:
    name: str
    branch: str
    path: Path
    models: str
    versions: Path
    depends_on: tuple[str, ...]
    schema: str | None = None  # the PostgreSQL schema this module owns, if any
    lint_from: str | None = None  # migrate lint judges this revision and those after it
    lint: tuple[tuple[str, str], ...] = ()  # rule -> level, over the project's
    database_url_env: str | None = None  # a database of its own (None: the shared one)

    def models_file(self, root: Path) -> Path | None:
        """Where the models module lives in the repository, if it does."""
        base = root.joinpath(*self.models.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class Settings:
    version_table: str = "alembic_version"
    version_table_schema: str | None = None  # also the log table's schema
    log_table: str = "migrate_log"
    database_url_env: str = "DATABASE_URL"
    shadow_database_url_env: str = "SHADOW_DATABASE_URL"
    metadata: str = "shared.db:metadata"
    script_location: str = "alembic"
    # session settings of the migrating connection, in seconds (0: no limit): a revision
    # waiting this long for a table lock gives up instead of queueing every query behind it
    lock_timeout: float = 5.0
    statement_timeout: float = 0.0
    lock_wait: float = 300.0  # how long `up`/`down` wait for another migration's lock
    lock_retries: int = 3  # how often a revision that hit lock_timeout is tried again
    shadow_templates: int = 3  # shadow builds kept as templates on the server (0: none)

    def qualified(self, table: str) -> str:
        """A bookkeeping table's name as SQL, quoted, in its schema if one is set."""
        schema = self.version_table_schema
        return f'"{schema}"."{table}"' if schema else f'"{table}"'

    @property
    def lock_name(self) -> str:
        """What the migration lock is named after: the version table (one lock per history)."""
        schema = self.version_table_schema
        return f"{schema}.{self.version_table}" if schema else self.version_table


@dataclass(frozen=True)
class Adopted:
    """The single-application history `migrate adopt` replaced with the modules' baselines:
    kept (out of plain Alembic's sight) for the databases still inside it."""

    name: str  # what its revisions are logged and reported under
    versions: Path


@dataclass(frozen=True)
class Manifest:
    path: Path
    settings: Settings
    modules: tuple[Module, ...]
    adopted: Adopted | None = None
    lint: tuple[tuple[str, str], ...] = ()  # rule -> level for every module (migrate lint)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def script_location(self) -> Path:
        return self.root / self.settings.script_location

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modules]

    def relative(self, path: Path) -> str:
        """A path in the repository as messages and output name it (see `relative`)."""
        return relative(path, self.root)

    def module(self, name_or_branch: str) -> Module:
        """The module named NAME or labelled NAME (`--branch` and `--module` accept both)."""
        from shared.migrate.errors import UnknownModule

        for module in self.modules:
            if name_or_branch in (module.name, module.branch):
                return module
        raise UnknownModule(name_or_branch, self.names, [m.branch for m in self.modules])

    def dependency_closure(self, name: str) -> list[Module]:
        """The module and everything it depends on, dependencies first."""
        seen: list[Module] = []

        def visit(module: Module) -> None:
            if module in seen:
                return
            for dep in module.depends_on:
                visit(self.module(dep))
            seen.append(module)

        visit(self.module(name))
        return seen

    def dependents(self, name: str) -> list[Module]:
        """Modules that declare `name` among their dependencies, directly or not."""
        return [m for m in self.modules if m.name != name and name in self._deps_of(m.name)]

    def _deps_of(self, name: str) -> set[str]:
        return {m.name for m in self.dependency_closure(name)} - {name}

    def database_env(self, module: Module) -> str:
        """The variable naming the database `module` lives in: its own, else the shared one."""
        return module.database_url_env or self.settings.database_url_env

    @property
    def split(self) -> bool:
        """Whether some module lives in a database of its own (`database_url_env`)."""
        shared = self.settings.database_url_env
        return any(m.database_url_env not in (None, shared) for m in self.modules)

    def ordered(self) -> list[Module]:
        """Every module, each after the modules it depends on."""
        result: list[Module] = []
        for module in self.modules:
            for dep in self.dependency_closure(module.name):
                if dep not in result:
                    result.append(dep)
        return result


def relative(path: Path, root: Path) -> str:
    """`path` relative to the repository root `root`, with forward slashes, as every message
    and output names a file; a path outside the repository as given."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        return str(path)


def find_manifest(start: Path) -> Path:
    """`migrations.yaml` in `start` or the nearest directory above it (the `--config` default)."""
    for directory in [start, *start.parents]:
        candidate = directory / MANIFEST_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {MANIFEST_NAME} found in {start} or any parent directory; "
        "run from the repository or pass --config PATH"
    )


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file. Parsing it takes PyYAML well under a millisecond,
    importing PyYAML 10-20 ms: the parsed document is kept beside the file
    (`__pycache__/migrations.yaml.marshal`) with the very bytes it was parsed from, and used
    only when the file holds those bytes, so it can never be stale."""
    path = path.resolve()
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the manifest ({exc.strerror})") from None
    cache = path.parent / "__pycache__" / f"{path.name}.marshal"
    try:
        kept = marshal.loads(cache.read_bytes())
        if isinstance(kept, tuple) and len(kept) == 3 and kept[:2] == (CACHE_FORMAT, text):
            return parse_manifest(path, kept[2])
    except (OSError, EOFError, ValueError, TypeError):
        pass
    data = _read_yaml(path, text)
    manifest = parse_manifest(path, data)  # only a valid manifest is kept
    try:
        cache.parent.mkdir(exist_ok=True)
        spare = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        spare.write_bytes(marshal.dumps((CACHE_FORMAT, text, data)))
        os.replace(spare, cache)
    except (OSError, ValueError):
        pass  # a read-only checkout parses the YAML every time
    return manifest


def _read_yaml(path: Path, raw: bytes) -> Any:
    import yaml

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text; save it as UTF-8") from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path.name}{at}: not valid YAML; fix the syntax") from None


def parse_manifest(path: Path, data: Any) -> Manifest:
    """Validate the YAML document `data` read from `path`."""
    where = path.name
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with 'modules' (and optional 'settings')")
    _no_unknown_keys(data, TOP_KEYS, where)
    settings = _parse_settings(data.get("settings") or {}, where)
    raw_modules = data.get("modules")
    if not isinstance(raw_modules, list) or not raw_modules:
        raise ConfigError(f"{where}: 'modules' must be a non-empty list of modules")
    modules = tuple(_parse_module(path.parent, raw, i, where) for i, raw in enumerate(raw_modules))
    _check_unique(modules, where)
    adopted = _parse_adopted(path.parent, data.get("adopted"), modules, where)
    manifest = Manifest(
        path=path,
        settings=settings,
        modules=modules,
        adopted=adopted,
        lint=lint_levels(data.get("lint"), where),
    )
    _check_dependencies(manifest, where)
    return manifest


def _parse_adopted(root: Path, raw: Any, modules: tuple[Module, ...], where: str) -> Adopted | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'adopted' must be a mapping with 'name' and 'versions'")
    _no_unknown_keys(raw, ADOPTED_KEYS, f"{where} adopted")
    name = _string(raw, "name", "legacy", f"{where}: adopted")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{where}: adopted.name {_quoted(name)} must match [a-z][a-z0-9_]*")
    if name in {m.name for m in modules} | {m.branch for m in modules}:
        raise ConfigError(
            f"{where}: adopted.name '{name}' is also a module's name or branch; rename it"
        )
    versions = _inside(root, _string(raw, "versions", "", f"{where}: adopted"), "adopted.versions")
    if not _is_dir(versions):
        raise ConfigError(
            f"{where}: adopted.versions '{shown(relative(versions, root))}' is not a directory; "
            "restore it (the databases still inside the adopted history need its files) or "
            "fix the path"
        )
    return Adopted(name, versions)


def _no_unknown_keys(data: dict[Any, Any], allowed: set[str], where: str) -> None:
    unknown = sorted((k for k in data if k not in allowed), key=str)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{shown(unknown[0])}'; {did_you_mean(unknown[0], allowed)}"
            f"allowed keys: {', '.join(sorted(allowed))}"
        )


def _parse_settings(raw: Any, where: str) -> Settings:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'settings' must be a mapping")
    _no_unknown_keys(raw, SETTINGS_KEYS, f"{where} settings")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{where}: settings.{key}"
        if key in TIMEOUT_KEYS:
            values[key] = parse_timeout(value, name)
        elif key in DURATION_KEYS:
            values[key] = parse_duration(value, name)
        elif key in ("lock_retries", "shadow_templates"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise ConfigError(f"{name} must be a whole number from 0 to 100, e.g. 3")
            values[key] = value
        elif key == "version_table_schema" and value is None:
            continue
        elif not isinstance(value, str) or not value:
            raise ConfigError(f"{name} must be a non-empty string")
        else:
            values[key] = value
    for key in ("version_table", "log_table", "version_table_schema"):
        if key in values and not NAME_PATTERN.match(values[key]):
            raise ConfigError(
                f"{where}: settings.{key} '{shown(values[key])}' must match [a-z][a-z0-9_]* "
                f"(at most {NAME_LIMIT} characters)"
            )
    return Settings(**values)


def parse_duration(value: object, key: str) -> float:
    """Seconds, from a number (seconds) or a text such as 5s, 500ms, 2min, 1h or 0."""
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a duration such as 5s, 500ms or 2min")
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"{key} must not be negative")
        return float(value)
    match = DURATION_PATTERN.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(
            f"{key} '{shown(value)}' is not a duration; use e.g. 5s, 500ms, 2min or 0 "
            "(a bare number means seconds)"
        )
    return float(match.group(1)) * DURATION_UNITS[match.group(2)]


def parse_timeout(value: object, key: str) -> float:
    """A duration for one of PostgreSQL's timeouts (`--lock-timeout`, `lock_timeout`, ...),
    which take at most INT_MAX milliseconds."""
    seconds = parse_duration(value, key)
    if seconds > 0 and round(seconds * 1000) == 0:  # PostgreSQL would read it as 0: no limit
        raise ConfigError(
            f"{key} '{shown(value)}' is shorter than PostgreSQL takes (1ms, whole milliseconds); "
            "give at least 1ms, or 0 for no limit"
        )
    if round(seconds * 1000) > PG_TIMEOUT_MAX_MS:
        raise ConfigError(
            f"{key} '{shown(value)}' is longer than PostgreSQL takes; the largest is "
            f"{PG_TIMEOUT_MAX_MS}ms (about {PG_TIMEOUT_MAX_MS // 3_600_000}h), or 0 for no limit"
        )
    return seconds


def pg_duration(seconds: float) -> str:
    """A duration as PostgreSQL's timeout settings take it (0: no limit)."""
    return f"{round(seconds * 1000)}ms"


def _parse_module(root: Path, raw: Any, index: int, where: str) -> Module:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: modules[{index}] must be a name or a mapping with 'name'")
    _no_unknown_keys(raw, MODULE_KEYS, f"{where} modules[{index}]")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(
            f"{where}: modules[{index}].name {_quoted(name)} must match [a-z][a-z0-9_]* "
            f"(lowercase letters, digits, underscores; at most {NAME_LIMIT} characters)"
        )
    key = f"{where}: module '{name}'"
    branch = _string(raw, "branch", name, key)
    if not NAME_PATTERN.match(branch):
        raise ConfigError(f"{key}: branch {_quoted(branch)} must match [a-z][a-z0-9_]*")
    schema = raw.get("schema")
    if schema is not None and (not isinstance(schema, str) or not NAME_PATTERN.match(schema)):
        raise ConfigError(f"{key}: schema {_quoted(schema)} must match [a-z][a-z0-9_]*")
    package = _inside(root, _string(raw, "path", f"services/{name}", key), f"{key}: path")
    versions = _inside(
        root,
        _string(raw, "versions", f"{raw.get('path', f'services/{name}')}/migrations", key),
        f"{key}: versions",
    )
    if not _is_dir(package):
        raise ConfigError(
            f"{key}: path '{shown(relative(package, root))}' is not a directory; "
            "create it or fix 'path'"
        )
    if not _is_dir(versions):
        raise ConfigError(
            f"{key}: versions directory '{shown(relative(versions, root))}' does "
            "not exist; create it or fix 'versions'"
        )
    depends_on = raw.get("depends_on") or []
    if isinstance(depends_on, str):
        depends_on = [depends_on]
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        raise ConfigError(f"{key}: depends_on must be a list of module names")
    database_url_env = raw.get("database_url_env")
    if database_url_env is not None and (
        not isinstance(database_url_env, str) or not ENV_NAME_PATTERN.match(database_url_env)
    ):
        raise ConfigError(
            f"{key}: database_url_env {_quoted(database_url_env)} must be the name of an "
            "environment variable ([A-Z_][A-Z0-9_]*), e.g. BILLING_DATABASE_URL"
        )
    models = _string(raw, "models", f"services.{name}.models", key)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", models):
        raise ConfigError(f"{key}: models {_quoted(models)} must be a dotted module name")
    return Module(
        name=name,
        branch=branch,
        path=package,
        models=models,
        versions=versions,
        depends_on=tuple(depends_on),
        schema=schema,
        lint_from=_lint_from(raw.get("lint_from"), key),
        lint=lint_levels(raw.get("lint"), key),
        database_url_env=database_url_env,
    )


def _string(raw: dict[str, Any], field: str, default: str, key: str) -> str:
    value = raw.get(field, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: '{field}' must be a non-empty string")
    return value


def _quoted(value: object) -> str:
    return f"'{shown(value)}'" if isinstance(value, str) else shown(value)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name longer than the file system allows, say
        return False


def _inside(root: Path, given: str, key: str) -> Path:
    """A path from the manifest, refused when it leaves the repository."""
    try:
        resolved = (root / given).resolve()
    except (OSError, ValueError):
        raise ConfigError(f"{key} '{shown(given)}' is not a usable path") from None
    if not resolved.is_relative_to(root.resolve()):
        raise ConfigError(f"{key} '{shown(given)}' points outside the repository; use a path in it")
    return resolved


def _check_unique(modules: tuple[Module, ...], where: str) -> None:
    names: dict[str, str] = {}
    for module in modules:
        for kind, value in (("name", module.name), ("branch", module.branch)):
            if value in names and not (kind == "branch" and names[value] == module.name):
                raise ConfigError(
                    f"{where}: {kind} '{value}' is used by two modules ('{names[value]}' and "
                    f"'{module.name}'); give each module its own"
                )
            names.setdefault(value, module.name)
    schemas: dict[str, str] = {}
    for module in modules:
        if module.schema and module.schema in schemas:
            raise ConfigError(
                f"{where}: modules '{schemas[module.schema]}' and '{module.name}' both own "
                f"schema '{module.schema}'; one module owns a schema"
            )
        if module.schema:
            schemas[module.schema] = module.name
    dirs: dict[Path, str] = {}
    for module in modules:
        if module.versions in dirs:
            raise ConfigError(
                f"{where}: modules '{dirs[module.versions]}' and '{module.name}' share the "
                "versions directory; give each module its own"
            )
        dirs[module.versions] = module.name


def _check_dependencies(manifest: Manifest, where: str) -> None:
    known = set(manifest.names)
    for module in manifest.modules:
        for dep in module.depends_on:
            if dep not in known:
                raise ConfigError(
                    f"{where}: module '{module.name}' depends_on unknown module "
                    f"'{shown(dep)}'; {did_you_mean(dep, known)}known modules: "
                    f"{', '.join(manifest.names)}"
                )
            if dep == module.name:
                raise ConfigError(f"{where}: module '{module.name}' depends_on itself; remove it")
    for module in manifest.modules:
        _find_cycle(manifest, module.name, [], where)


def _find_cycle(manifest: Manifest, name: str, path: list[str], where: str) -> None:
    if name in path:
        cycle = " -> ".join([*path[path.index(name) :], name])
        raise ConfigError(f"{where}: depends_on forms a cycle ({cycle}); remove one of them")
    module = next(m for m in manifest.modules if m.name == name)
    for dep in module.depends_on:
        _find_cycle(manifest, dep, [*path, name], where)


# ---- migrate lint: rule levels (project and module) and where a module's lint starts --------
# The rule names are checked by lint itself (schema/lint), which knows them.

LINT_LEVELS = ("error", "warning", "off")


def lint_levels(raw: Any, key: str) -> tuple[tuple[str, str], ...]:
    """`lint: {rule: error|warning|off}`, as pairs."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: 'lint' must map rule names to error, warning or off")
    pairs = []
    for rule, level in raw.items():
        if level is False:
            level = "off"  # YAML reads a bare `off` as false
        if not isinstance(rule, str) or level not in LINT_LEVELS:
            raise ConfigError(
                f"{key}: lint rule '{shown(rule)}' must be set to error, warning or off"
            )
        pairs.append((rule, str(level)))
    return tuple(pairs)


def _lint_from(raw: Any, key: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{key}: lint_from must be a revision id")
    return raw
