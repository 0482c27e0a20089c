"""Who owns each table: the module whose models define it, else the one whose migrations made it.

Tables are named as MetaData keys them: `table`, or `schema.table` outside the default schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import MetaData, Table


@dataclass(frozen=True)
class Owner:
    table: str
    module: str
    source: str  # "models", "migrations" (model deleted) or "models, migrations"


@dataclass(frozen=True)
class Conflict:
    table: str
    modules: tuple[str, str]
    detail: str


@dataclass(frozen=True)
class OwnershipMap:
    owners: list[Owner]
    conflicts: list[Conflict]
    unowned: list[str]  # tables in the database that no module owns (never dropped)

    def of(self, module: str) -> list[Owner]:
        return [o for o in self.owners if o.module == module]


def ownership(
    model_owners: dict[str, str],
    created_by: dict[str, str],
    database_tables: set[str],
    ignored: set[str],
) -> OwnershipMap:
    """Combine what the models say with what the migrations did, and what the database holds."""
    owners: list[Owner] = []
    conflicts: list[Conflict] = []
    for table in sorted(set(model_owners) | set(created_by)):
        by_model, by_migration = model_owners.get(table), created_by.get(table)
        if by_model and by_migration and by_model != by_migration:
            conflicts.append(
                Conflict(
                    table,
                    (by_model, by_migration),
                    f"table '{table}' is defined in the models of '{by_model}' but created by "
                    f"the migrations of '{by_migration}'; move the model or the migration so "
                    "one module owns it",
                )
            )
        owner = by_model or by_migration
        assert owner is not None
        source = ", ".join(
            s for s, who in (("models", by_model), ("migrations", by_migration)) if who
        )
        owners.append(Owner(table, owner, source))
    known = {o.table for o in owners} | ignored
    return OwnershipMap(owners, conflicts, sorted(database_tables - known))


def table_key(table: Table) -> str:
    return table.fullname if table.schema and table.schema != "public" else table.name


def undeclared_references(
    metadata: MetaData, model_owners: dict[str, str], allowed: dict[str, set[str]]
) -> list[tuple[str, str, str]]:
    """(module, table, referenced module) for each foreign key into a module not depended on."""
    found: list[tuple[str, str, str]] = []
    for name, table in sorted(metadata.tables.items()):
        module = model_owners.get(name)
        if module is None:
            continue
        for fk in table.foreign_keys:
            target = model_owners.get(table_key(fk.column.table))
            if target and target != module and target not in allowed[module]:
                found.append((module, name, target))
    return sorted(set(found))
