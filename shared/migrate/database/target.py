"""Where a command points: the manifest, the database URL as given (or not), the database each
module lives in, and (for schema-per-tenant runs) the tenant's schema."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from shared.db.url import DatabaseURL, InvalidDatabaseURL, resolve_url
from shared.migrate.errors import ConfigError, shown
from shared.migrate.manifest import NAME_PATTERN, Manifest, Module

if TYPE_CHECKING:
    from shared.migrate.history.graph import RevisionGraph


@dataclass(frozen=True)
class Placement:
    """One database and the modules that live in it (in manifest order)."""

    url: DatabaseURL
    modules: tuple[str, ...]
    envs: tuple[str, ...]  # the variables that name it

    @property
    def name(self) -> str:
        """host:port/database: what output calls it, and the order its lock is taken in."""
        return self.url.display()


def tenant_schema_problem(schema: object, manifest: Manifest) -> str | None:
    """Why `schema` cannot be a tenant's (None: it can). Not `public` (where the untenanted
    tables and bookkeeping are, under another lock), not the system's, not a module's own."""
    if not isinstance(schema, str) or not NAME_PATTERN.match(schema):
        return (
            f"'{shown(schema)}' is not a tenant schema name ([a-z][a-z0-9_]*, at most 63 "
            "characters)"
        )
    owners = {m.schema: m.name for m in manifest.modules if m.schema}
    if schema == "public" or schema.startswith("pg_") or schema == "information_schema":
        return f"'{schema}' is not a tenant's schema; give each tenant a schema of its own"
    if schema in owners:
        return f"'{schema}' is the schema module '{owners[schema]}' owns, not a tenant's"
    return None


@dataclass(frozen=True)
class Target:
    """Where the command points: the manifest, the database URL as given (or not), and the
    tenant schema of a schema-per-tenant run (`--tenant-schema`)."""

    manifest: Manifest
    database_url: str | None = None
    tenant_schema: str | None = None
    own: DatabaseURL | None = None  # `at()`: one database of a manifest that has several

    @property
    def url(self) -> DatabaseURL:
        """The shared database (or, from `at()`, the one database this target is about)."""
        return self.own if self.own is not None else self._shared()

    def _shared(self) -> DatabaseURL:
        try:
            return resolve_url(self.database_url, self.manifest.settings.database_url_env)
        except InvalidDatabaseURL as exc:
            raise ConfigError(str(exc)) from None

    def url_of(self, module: Module) -> DatabaseURL:
        """The database `module` lives in: the shared one, or its own (`database_url_env`)."""
        env = module.database_url_env
        if env is None or env == self.manifest.settings.database_url_env:
            return self.url
        value = os.environ.get(env)
        if not value:
            raise ConfigError(
                f"module '{module.name}' lives in a database of its own, named by ${env} "
                f"(database_url_env in {self.manifest.path.name}), which is not set; export "
                f"{env}=postgresql://USER@HOST:PORT/DATABASE"
            )
        try:
            return DatabaseURL.parse(value, f"${env}")
        except InvalidDatabaseURL as exc:
            raise ConfigError(str(exc)) from None

    def placements(self, modules: Iterable[Module] | None = None) -> list[Placement]:
        """The databases `modules` (default: all) live in, each with its modules, in the one
        global order every command takes their locks in (host:port/database). Two variables
        that name the same database make one placement: one session, one lock."""
        chosen = list(self.manifest.modules if modules is None else modules)
        if not self.manifest.split:
            url = self.url
            return [Placement(url, tuple(m.name for m in chosen), (self._shared_env(),))]
        found: dict[str, tuple[DatabaseURL, list[str], list[str]]] = {}
        for module in chosen:
            url = self.url_of(module)
            _, names, envs = found.setdefault(url.display(), (url, [], []))
            names.append(module.name)
            env = self.manifest.database_env(module)
            if env not in envs:
                envs.append(env)
        for module in self.manifest.modules:  # the others' rows there are not strays
            env = self.manifest.database_env(module)
            try:
                where = self.url_of(module).display()
            except ConfigError:
                continue  # not set: not where any of these live
            if where in found and env not in found[where][2]:
                found[where][2].append(env)
        return [
            Placement(url, tuple(names), tuple(envs))
            for _, (url, names, envs) in sorted(found.items())
        ]

    def _shared_env(self) -> str:
        env = self.manifest.settings.database_url_env
        return "--database-url" if self.database_url else env

    def at(self, placement: Placement) -> Target:
        """This target pointed at one of its databases (its shadow on that server too)."""
        return replace(self, own=placement.url)

    def graph(self) -> RevisionGraph:
        """The revision graph, as the databases hold it (history/placed.py)."""
        from shared.migrate.history.graph import load_graph
        from shared.migrate.history.placed import placed

        return placed(load_graph(self.manifest))

    def for_tenant(self, schema: str | None) -> Target:
        """This target on a tenant's schema: the version and log tables in it, its own lock,
        and the search_path starting with it (`--tenant-schema`)."""
        if schema is None:
            return self
        problem = tenant_schema_problem(schema, self.manifest)
        if problem:
            raise ConfigError(f"--tenant-schema: {problem}")
        settings = replace(self.manifest.settings, version_table_schema=schema)
        return replace(
            self, manifest=replace(self.manifest, settings=settings), tenant_schema=schema
        )

    def session_settings(self) -> dict[str, str]:
        """What a migrating session sets for this target: a tenant's search_path."""
        if self.tenant_schema is None:
            return {}
        return {"search_path": f'"{self.tenant_schema}", public'}

    def refuse_owned_schemas(self, modules: Iterable[Module]) -> None:
        """A module that owns a schema names it in its tables: every tenant would share it."""
        if self.tenant_schema is None:
            return
        for module in modules:
            if module.schema:
                raise ConfigError(
                    f"module '{module.name}' owns schema '{module.schema}' (schema: in "
                    f"{self.manifest.path.name}), which every tenant would share; leave it out "
                    "of per-tenant runs with --branch and migrate it once without "
                    "--tenant-schema, or drop its schema: to keep its tables per tenant"
                )

    def shadow_server(self, shadow_url: str | None, module: Module | None = None) -> DatabaseURL:
        """Where shadow databases go: --shadow-url; else, for a module in a database of its own
        (or a target `at()` one), that database's server; else $SHADOW_DATABASE_URL, else the
        database URL's server."""
        env = self.manifest.settings.shadow_database_url_env
        try:
            if shadow_url:
                return DatabaseURL.parse(shadow_url, "--shadow-url")
            if self.own is not None and self.own.display() != self._shared().display():
                return self.own
            if module is not None and module.database_url_env not in (
                None,
                self.manifest.settings.database_url_env,
            ):
                return self.url_of(module)
            if os.environ.get(env):
                return DatabaseURL.parse(os.environ[env], f"${env}")
        except InvalidDatabaseURL as exc:
            raise ConfigError(str(exc)) from None
        return self.url
