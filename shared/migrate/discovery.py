"""Imports every module's models and works out which module owns each table."""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass

from sqlalchemy import MetaData

from shared.migrate.errors import ConfigError
from shared.migrate.manifest import Manifest


@dataclass(frozen=True)
class Discovery:
    metadata: MetaData
    owners: dict[str, str]  # table name -> module name

    def tables_of(self, module: str) -> set[str]:
        return {table for table, owner in self.owners.items() if owner == module}


def load_metadata(spec: str) -> MetaData:
    """The MetaData named by settings.metadata, as `package.module:attribute`."""
    module_name, _, attr = spec.partition(":")
    target = _import(module_name, "settings.metadata")
    value = target
    for part in (attr or "metadata").split("."):
        value = getattr(value, part, None)
    if not isinstance(value, MetaData):
        raise ConfigError(
            f"migrations.yaml: settings.metadata '{spec}' is not a SQLAlchemy MetaData; "
            "name one as package.module:attribute"
        )
    return value


# The MetaData is process-wide, and so is what discovery learnt about it: a second discover()
# in one process sees no new tables but must give the same owners.
_OWNERS: dict[str, str] = {}


def discover(manifest: Manifest) -> Discovery:
    """Import each module's models (dependencies first) and attribute every new table to it."""
    root = str(manifest.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    metadata = load_metadata(manifest.settings.metadata)
    for module in manifest.ordered():
        before = set(metadata.tables)
        try:
            _import(module.models, f"module '{module.name}' models")
        except ConfigError as exc:
            _two_owners(exc, module.name)
            raise
        for table in set(metadata.tables) - before:
            _OWNERS.setdefault(table, module.name)
    stray = sorted(set(metadata.tables) - set(_OWNERS))
    if stray:
        raise ConfigError(
            f"table '{stray[0]}' is defined outside every module's models; move it into one"
        )
    return Discovery(metadata=metadata, owners={t: _OWNERS[t] for t in metadata.tables})


def _two_owners(exc: ConfigError, module: str) -> None:
    """SQLAlchemy's "Table 'x' is already defined": say which two modules both define it."""
    found = _ALREADY_DEFINED.search(str(exc))
    if found and found.group(1) in _OWNERS:
        table = found.group(1)
        raise ConfigError(
            f"table '{table}' is defined by the models of both '{_OWNERS[table]}' and "
            f"'{module}'; one module must own it: remove or rename one of them"
        ) from exc


_ALREADY_DEFINED = re.compile(r"Table '(\w+)' is already defined")


def _import(name: str, what: str) -> object:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ConfigError(
                f"{what}: cannot import '{name}'; create it or fix the name in migrations.yaml"
            ) from exc
        raise ConfigError(f"{what}: importing '{name}' failed: {exc}") from exc
    except Exception as exc:
        raise ConfigError(f"{what}: importing '{name}' raised {type(exc).__name__}: {exc}") from exc
