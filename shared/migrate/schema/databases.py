"""Foreign keys between modules that live in different databases: PostgreSQL cannot have them,
so `check` reports each one and `create` refuses to write one."""

from __future__ import annotations

from dataclasses import dataclass

from shared.migrate.errors import ConfigError
from shared.migrate.manifest import Manifest
from shared.migrate.schema.discovery import Discovery


@dataclass(frozen=True)
class Crossing:
    """A foreign key from `table` (of `module`) to `target` (of `target_module`), whose
    modules the manifest puts in different databases."""

    module: str
    table: str
    columns: tuple[str, ...]
    target: str
    target_module: str

    def detail(self, manifest: Manifest) -> str:
        env = manifest.database_env(manifest.module(self.module))
        target_env = manifest.database_env(manifest.module(self.target_module))
        return (
            f"table '{self.table}' of module '{self.module}' (database ${env}) has a foreign "
            f"key ({', '.join(self.columns)}) to table '{self.target}' of module "
            f"'{self.target_module}' (database ${target_env}), and no foreign key crosses "
            f"databases; drop it from {self.module}'s models (keep the column) and create a "
            f"revision, or keep both modules in one database"
        )


def crossings(
    manifest: Manifest, discovery: Discovery, module: str | None = None
) -> list[Crossing]:
    """Every foreign key between tables of modules in different databases (only from
    `module`'s tables, when given)."""
    if not manifest.split:
        return []
    env = {m.name: manifest.database_env(m) for m in manifest.modules}
    found = []
    for name, owner in sorted(discovery.owners.items()):
        if module is not None and owner != module:
            continue
        table = discovery.metadata.tables[name]
        for fk in sorted(table.foreign_key_constraints, key=lambda fk: tuple(fk.column_keys)):
            target = fk.referred_table.key
            target_owner = discovery.owners.get(target)
            if target_owner is not None and env[target_owner] != env[owner]:
                columns = tuple(fk.column_keys)
                found.append(Crossing(owner, name, columns, target, target_owner))
    return found


def refuse_crossings(manifest: Manifest, discovery: Discovery, module: str) -> None:
    """`create`: a module's models that reference a table in another database stop it."""
    found = crossings(manifest, discovery, module)
    if found:
        raise ConfigError(found[0].detail(manifest))
