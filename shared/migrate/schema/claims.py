"""Which module each object of a database belongs to, for `adopt` and `baseline`: a table to
the module whose models define it (or the one `--assign TABLE=MODULE` names); what is not a
table to the module of the tables that use it (a trigger and its function to the table's, a
type to the tables whose columns have it, a view to the tables it reads); used by several
modules' tables, to the one they all depend on. What nothing settles is listed, never
dropped: `--assign` settles it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.migrate.database.holdings import Holdings, Thing
from shared.migrate.errors import ConfigError, shown
from shared.migrate.manifest import Manifest
from shared.migrate.schema.replica import referenced_table


@dataclass
class Claims:
    tables: dict[str, str] = field(default_factory=dict)  # schema.table -> module
    things: dict[tuple[str, str], str] = field(default_factory=dict)  # catalog key -> module
    unclaimed: list[str] = field(default_factory=list)  # "table currencies", ...
    notes: list[str] = field(default_factory=list)  # how an object found its module

    def of(self, module: str) -> tuple[set[str], set[tuple[str, str]]]:
        """The tables and the other objects (keys) of `module`."""
        tables = {t for t, m in self.tables.items() if m == module}
        return tables, {k for k, m in self.things.items() if m == module}

    def modules(self) -> list[str]:
        return sorted(set(self.tables.values()) | set(self.things.values()))


def catalog_name(key: str) -> str:
    """A table as MetaData keys it (`accounts`, `catalog.books`) as the catalog names it."""
    return key if "." in key else f"public.{key}"


def parse_assignments(manifest: Manifest, given: list[str]) -> dict[str, str]:
    """`--assign NAME=MODULE` (repeatable) as name -> module name."""
    found: dict[str, str] = {}
    for item in given:
        name, sep, module = item.partition("=")
        if not sep or not name.strip() or not module.strip():
            raise ConfigError(
                f"--assign '{shown(item)}' is not NAME=MODULE; for example --assign "
                f"currencies={manifest.names[0]}"
            )
        found[name.strip()] = manifest.module(module.strip()).name
    return found


def claim(
    manifest: Manifest,
    holdings: Holdings,
    models: dict[str, str],
    assigned: dict[str, str],
    *,
    what: str,
) -> Claims:
    """Every table and object of `holdings` with its module (`models`: catalog name ->
    module; `assigned`: from --assign). `what` names the database in messages."""
    claims = Claims()
    by_name = _assignment_targets(holdings, assigned, what)
    for table in sorted(holdings.tables):
        owner = by_name.get(("table", table)) or models.get(table)
        if owner is None:
            claims.unclaimed.append(f"table {_short(table)}")
        else:
            claims.tables[table] = owner
    ordered = sorted(holdings.things, key=lambda t: (t.kind == "schema", t.phase, t.oid))
    for thing in ordered:  # a schema once what is in it has its module
        owner = by_name.get(thing.key) or _owner(manifest, claims, thing)
        if owner is None:
            claims.unclaimed.append(f"{thing.kind} {_short(thing.name)}")
        else:
            claims.things[thing.key] = owner
    return claims


def _assignment_targets(
    holdings: Holdings, assigned: dict[str, str], what: str
) -> dict[tuple[str, str], str]:
    """Each --assign NAME as the catalog key it names: a table, or another object by its name
    (schema-qualified or not; a function by its name without arguments)."""
    keys = [("table", t) for t in holdings.tables] + [t.key for t in holdings.things]
    found: dict[tuple[str, str], str] = {}
    for name, module in assigned.items():
        matches = [k for k in keys if _names(k, name)]
        if not matches:
            raise ConfigError(
                f"--assign {shown(name)}={module}: {what} has no table or object named "
                f"'{shown(name)}'; `migrate adopt` lists the unclaimed ones"
            )
        if len(matches) > 1:
            options = ", ".join(f"{k} {n}" for k, n in matches)
            raise ConfigError(
                f"--assign {shown(name)}={module}: '{shown(name)}' names several objects "
                f"({options}); give the schema-qualified name"
            )
        found[matches[0]] = module
    return found


def _names(key: tuple[str, str], given: str) -> bool:
    full = key[1]
    candidates = {full, full.removeprefix("public.")}
    if key[0] == "function":
        base = full.partition("(")[0]
        candidates |= {base, base.removeprefix("public.")}
    return given in candidates


def _owner(manifest: Manifest, claims: Claims, thing: Thing) -> str | None:
    if thing.kind == "schema":
        owners = [m.name for m in manifest.modules if m.schema == thing.name]
        if owners:
            return owners[0]
        return _common(manifest, _inside(claims, thing.name))
    modules = {_module_of(claims, relation) for relation in thing.users} - {None}
    found = _common(manifest, {m for m in modules if m is not None})
    if found is None and thing.kind == "extension" and not thing.users:
        first = manifest.ordered()[0].name
        claims.notes.append(
            f"extension {thing.name}: no table uses it; given to '{first}' (the first module); "
            f"--assign {thing.name}=MODULE gives it to another"
        )
        return first
    return found


def _inside(claims: Claims, schema: str) -> set[str]:
    """The modules of the tables and objects in `schema`."""
    found = {m for t, m in claims.tables.items() if t.partition(".")[0] == schema}
    found |= {
        m
        for (kind, name), m in claims.things.items()
        if kind != "extension" and _schema(name) == schema
    }
    return found


def _schema(name: str) -> str:
    return name.partition(".")[0] if "." in name.partition("(")[0] else ""


def _module_of(claims: Claims, relation: str) -> str | None:
    if relation in claims.tables:
        return claims.tables[relation]
    for kind in ("view", "materialized view", "sequence"):
        if (kind, relation) in claims.things:
            return claims.things[(kind, relation)]
    return None


def _common(manifest: Manifest, modules: set[str]) -> str | None:
    """The one of `modules` every other one depends on (it is created first), if any."""
    for candidate in (m.name for m in manifest.ordered()):
        if candidate not in modules:
            continue
        if all(
            candidate in {d.name for d in manifest.dependency_closure(other)} for other in modules
        ):
            return candidate
    return None


def dependencies(manifest: Manifest, holdings: Holdings, claims: Claims) -> dict[str, set[str]]:
    """Module -> the other modules whose objects its objects need (a foreign key into their
    table, their type or function, a view on their table); each must be in its depends_on."""
    needs: dict[str, set[str]] = {m: set() for m in claims.modules()}
    reasons: dict[tuple[str, str], str] = {}

    def need(module: str, other: str | None, why: str) -> None:
        if other is not None and other != module:
            needs[module].add(other)
            reasons.setdefault((module, other), why)

    for table, module in claims.tables.items():
        for fk in holdings.tables[table].foreign_key_constraints:
            target = referenced_table(fk)
            why = f"table {_short(table)} references {_short(target)}"
            need(module, claims.tables.get(target), why)
    for key, owner in claims.things.items():
        thing = holdings.thing(key)
        if thing is None:
            continue
        for relation in thing.users:
            user = _module_of(claims, relation)
            if user is None:
                continue
            if thing.kind in ("view", "materialized view"):
                need(owner, user, f"{thing.kind} {_short(thing.name)} reads {_short(relation)}")
            else:
                need(user, owner, f"{_short(relation)} uses {thing.kind} {_short(thing.name)}")
    schemas = {name: m for (kind, name), m in claims.things.items() if kind == "schema"}
    for table, module in claims.tables.items():
        schema = table.partition(".")[0]
        need(module, schemas.get(schema), f"table {_short(table)} is in schema {schema}")
    for (kind, name), module in claims.things.items():
        schema = _schema(name) if kind not in ("schema", "extension") else ""
        need(module, schemas.get(schema), f"{kind} {_short(name)} is in schema {schema}")
    for (module, other), why in sorted(reasons.items()):
        allowed = {d.name for d in manifest.dependency_closure(module)}
        if other not in allowed:
            raise ConfigError(
                f"module '{module}': {why}, which module '{other}' owns, but '{other}' is not "
                f"in its depends_on; add '{other}' to depends_on of module '{module}' in "
                "migrations.yaml"
            )
    return needs


def _short(name: str) -> str:
    return name.removeprefix("public.")
