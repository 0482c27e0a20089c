"""Imports the modules' models and works out which module owns each table.

A table belongs to the module whose models created it: for a mapped class, the class's module
(`mapper.class_.__module__`); for a Core `Table(...)`, the module whose code called it. Both
are the innermost module of a `models` package on the stack when SQLAlchemy attaches the
table to the MetaData, so a models module that imports another module's models (run there
and then, or earlier) never claims their tables. Tables made before discovery (a test suite
that imported the models itself) are found from the loaded models modules instead: a mapped
class's table by the class's module, a Core table by the one module whose models hold it.

Tables are named as SQLAlchemy's MetaData keys them: `table`, or `schema.table` outside the
default schema.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from sqlalchemy import MetaData, Table, event
from sqlalchemy import inspect as inspect_mapped
from sqlalchemy.orm import Mapper

from shared.migrate.errors import ConfigError, shown
from shared.migrate.manifest import Manifest, Module


@dataclass(frozen=True)
class Discovery:
    metadata: MetaData
    owners: dict[str, str]  # table name (schema-qualified outside the default) -> module

    def tables_of(self, module: str) -> set[str]:
        return {table for table, owner in self.owners.items() if owner == module}

    def schemas(self) -> set[str]:
        """The PostgreSQL schemas the models put tables in (besides the default one)."""
        return {t.schema for t in self.metadata.tables.values() if t.schema}


def load_metadata(spec: str) -> MetaData:
    """The MetaData named by settings.metadata, as `package.module:attribute`."""
    module_name, _, attr = spec.partition(":")
    target = _import(module_name, "settings.metadata")
    value = target
    for part in (attr or "metadata").split("."):
        value = getattr(value, part, None)
    if not isinstance(value, MetaData):
        raise ConfigError(
            f"migrations.yaml: settings.metadata '{shown(spec)}' is not a SQLAlchemy MetaData; "
            "name one as package.module:attribute"
        )
    return value


# The MetaData is process-wide, and so is what discovery learnt about it: a second discover()
# in one process sees no new tables but must give the same owners.
_OWNERS: dict[str, str] = {}


def discover(manifest: Manifest, modules: list[Module] | None = None) -> Discovery:
    """Import the models of `modules` (default: all; dependencies first) and attribute every
    new table to the module whose models defined it."""
    root = str(manifest.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    metadata = load_metadata(manifest.settings.metadata)
    wanted = {m.name for m in modules} if modules is not None else None
    with _attributing(manifest, metadata):
        for module in manifest.ordered():
            if wanted is not None and module.name not in wanted:
                continue
            try:
                _import(module.models, f"module '{module.name}' models")
            except ConfigError as exc:
                _two_owners(exc, module.name, manifest.names)
                raise
    if set(metadata.tables) - set(_OWNERS):
        _loaded_before(manifest, metadata)
    stray = sorted(set(metadata.tables) - set(_OWNERS))
    if stray:
        raise ConfigError(
            f"table '{shown(stray[0])}' is defined outside every module's models; move it into one"
        )
    owners = {t: _OWNERS[t] for t in metadata.tables}
    if wanted is not None:
        owners = {t: o for t, o in owners.items() if o in wanted}
    _check_schemas(manifest, metadata, owners)
    return Discovery(metadata=metadata, owners=owners)


@contextmanager
def _attributing(manifest: Manifest, metadata: MetaData) -> Iterator[None]:
    """While models are imported, note the module of each table attached to `metadata`."""
    packages = _packages(manifest)

    def attached(table: Table, parent: object) -> None:
        if parent is metadata:
            owner = _creator(inspect.currentframe(), packages)
            if owner is not None:
                _OWNERS.setdefault(table.key, owner)

    event.listen(Table, "after_parent_attach", attached)
    try:
        yield
    finally:
        event.remove(Table, "after_parent_attach", attached)


def _creator(frame: FrameType | None, packages: list[tuple[str, str]]) -> str | None:
    """The module whose models package runs the innermost frame of `frame`'s stack."""
    while frame is not None:
        owner = _owner_of(str(frame.f_globals.get("__name__", "")), packages)
        if owner is not None:
            return owner
        frame = frame.f_back
    return None


def _loaded_before(manifest: Manifest, metadata: MetaData) -> None:
    """Attribute the tables already in `metadata` when discovery began, from the models
    modules loaded then: mapped classes by their module; Core tables held by one module."""
    packages = _packages(manifest)
    holders: dict[str, set[str]] = {}
    for name, loaded in list(sys.modules.items()):
        where = _owner_of(name, packages)
        if where is None:
            continue
        for value in list(vars(loaded).values()):
            if isinstance(value, Table) and value.metadata is metadata:
                holders.setdefault(value.key, set()).add(where)
            mapper = inspect_mapped(value, raiseerr=False) if isinstance(value, type) else None
            if not isinstance(mapper, Mapper):
                continue
            owner = _owner_of(mapper.class_.__module__, packages)
            for table in mapper.tables if owner is not None else ():
                if isinstance(table, Table) and table.metadata is metadata:
                    _OWNERS.setdefault(table.key, owner)
    for key, modules in holders.items():
        if len(modules) == 1:
            _OWNERS.setdefault(key, modules.pop())


def _packages(manifest: Manifest) -> list[tuple[str, str]]:
    return [(m.models, m.name) for m in manifest.modules]


def _owner_of(python_module: str, packages: list[tuple[str, str]]) -> str | None:
    """The module whose models package holds `python_module`, if any."""
    for package, module in packages:
        if python_module == package or python_module.startswith(package + "."):
            return module
    return None


def _check_schemas(manifest: Manifest, metadata: MetaData, owners: dict[str, str]) -> None:
    """A module's tables live in the default schema or in a schema a module owns: its own."""
    owner_of_schema = {m.schema: m.name for m in manifest.modules if m.schema}
    for name, module in sorted(owners.items()):
        schema = metadata.tables[name].schema
        if not schema or schema == "public":
            continue
        owner = owner_of_schema.get(schema)
        if owner is None:
            raise ConfigError(
                f"table '{shown(name)}' of module '{module}' is in schema '{shown(schema)}', "
                f"which no module owns; add `schema: {shown(schema)}` to module '{module}' in "
                "migrations.yaml"
            )
        if owner != module:
            raise ConfigError(
                f"table '{shown(name)}' of module '{module}' is in schema '{schema}', which "
                f"module '{owner}' owns; put the table in the default schema or in a schema "
                f"of '{module}'"
            )


def _two_owners(exc: ConfigError, module: str, order: list[str]) -> None:
    """SQLAlchemy's "Table 'x' is already defined": say which two modules both define it."""
    found = _ALREADY_DEFINED.search(str(exc))
    if found and found.group(1) in _OWNERS:
        table = found.group(1)
        first, second = sorted({_OWNERS[table], module}, key=order.index)
        raise ConfigError(
            f"table '{table}' is defined by the models of both '{first}' and "
            f"'{second}'; one module must own it: remove or rename one of them"
        ) from exc


_ALREADY_DEFINED = re.compile(r"Table '([\w.]+)' is already defined")


def _import(name: str, what: str) -> object:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            path = name.replace(".", "/") + ".py"
            raise ConfigError(
                f"{what}: cannot import '{shown(name)}'; create {shown(path)} or fix "
                "'models' in migrations.yaml"
            ) from exc
        raise ConfigError(
            f"{what}: importing '{shown(name)}' failed: {shown(str(exc), 200)}"
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"{what}: importing '{shown(name)}' raised {type(exc).__name__}: {shown(str(exc), 200)}"
        ) from exc
