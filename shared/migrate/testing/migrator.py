"""Testing migrations against a real database: what the pytest plugin's fixtures hand out.

`Migrator` is bound to one database and moves it the way `migrate up` and `down` do, one
module or all of them, to a revision or one step at a time, and reads it back (rows and the
schema), so a data migration can be tested with data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.db.url import DatabaseURL
from shared.migrate.commands import RunOptions, Target, down, up
from shared.migrate.database.catalog import SNAPSHOT_SQL, Catalog, kept
from shared.migrate.database.progress import Progress
from shared.migrate.database.state import read_state
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.manifest import Manifest
from shared.migrate.schema.build import Built

QUIET = RunOptions(progress=Progress(), lock_wait=30.0)


@dataclass
class Migrator:
    """One database, moved by the tool and read back."""

    manifest: Manifest
    url: DatabaseURL
    _graph: RevisionGraph | None = field(default=None, repr=False)

    @property
    def target(self) -> Target:
        return Target(self.manifest, self.url.secret_string())

    @property
    def graph(self) -> RevisionGraph:
        if self._graph is None:
            self._graph = load_graph(self.manifest)
        return self._graph

    # ---- moving --------------------------------------------------------------------------

    def up(self, revision: str | None = None, module: str | None = None) -> list[str]:
        """Apply what `migrate up [--branch MODULE] [--revision R]` would; the revisions run."""
        return [s.revision for s in up(self.target, module, revision, options=QUIET).steps]

    def down(
        self, revision: str | None = None, module: str | None = None, cascade: bool = False
    ) -> list[str]:
        """Unapply what `migrate down` would; the revisions run."""
        result = down(self.target, module, revision, cascade=cascade, options=QUIET)
        return [s.revision for s in result.steps]

    def step_up(self, module: str) -> list[str]:
        """The module's next revision (and whatever it needs)."""
        return self.up("+1", module)

    def step_down(self, module: str) -> list[str]:
        return self.down("-1", module)

    def up_before(self, revision: str) -> list[str]:
        """Everything the revision needs, not the revision itself (to seed data for it)."""
        needed = self.graph.ancestors([revision]) - {revision}
        applied = self.applied()
        ran = []
        for rev in self.graph.ordered(needed - applied):
            ran += self.up(rev, self.graph.revisions[rev].module)
        return ran

    def stairway(
        self,
        module: str,
        data: Mapping[str, Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]] | None = None,
    ) -> Built:
        """Bring the module's dependencies to their heads and walk the module's revisions:
        up, down (the schema must be exactly as before), up again; with `data` inserted
        before and after each of the module's revisions it names."""
        from shared.migrate.database import recorder
        from shared.migrate.database.session import Session, run_session
        from shared.migrate.schema.build import build, heads_of

        graph, name = self.graph, self.manifest.module(module).name
        targets = heads_of(graph, self.manifest.dependency_closure(name))
        stair = set(graph.members.get(name, []))
        settings = self.manifest.settings
        seeds = {rev: rows for rev, rows in (data or {}).items() if rev in stair}

        async def work(session: Session) -> Built:
            await session.conn.execute(
                recorder.create_tables(settings, version=False, log=False, log_current=False)
            )
            return await session.run_sync(
                lambda conn: build(conn, graph, targets, stair, self.applied_in(conn), data=seeds)
            )

        return run_session(self.url, "tests", work)

    def drift(self, module: str) -> list[str]:
        """What the module's models need beyond what its migrations build (one line per
        operation, as `check` shows them); brings the module and its dependencies to head."""
        from shared.migrate.database import recorder
        from shared.migrate.database.session import Session, run_session
        from shared.migrate.schema.autogen import compare, describe
        from shared.migrate.schema.build import build, heads_of
        from shared.migrate.schema.discovery import discover

        graph, name = self.graph, self.manifest.module(module).name
        closure = self.manifest.dependency_closure(name)
        discovery = discover(self.manifest, closure)
        settings = self.manifest.settings
        schemas = discovery.schemas() | {m.schema for m in closure if m.schema}

        def run(conn: Any) -> list[str]:
            built = build(conn, graph, heads_of(graph, closure), applied=self.applied_in(conn))
            mine = discovery.tables_of(name) | {
                t for t, owner in built.created_by.items() if owner == name
            }
            script = compare(conn, discovery, mine, schemas)
            return describe(script.upgrade_ops) if script and script.upgrade_ops else []

        async def work(session: Session) -> list[str]:
            await session.conn.execute(
                recorder.create_tables(settings, version=False, log=False, log_current=False)
            )
            return await session.run_sync(run)

        return run_session(self.url, "tests", work)

    def applied_in(self, conn: Any) -> set[str]:
        from sqlalchemy import text

        table = self.manifest.settings.qualified(self.manifest.settings.version_table)
        rows = conn.execute(text(f"SELECT version_num FROM {table}")).scalars().all()
        conn.commit()
        return self.graph.ancestors(rows)

    # ---- reading -------------------------------------------------------------------------

    def revisions(self, module: str) -> list[str]:
        """The module's revisions, oldest first."""
        name = self.manifest.module(module).name
        return [r.revision for r in reversed(self.graph.of_module(name))]

    def applied(self) -> set[str]:
        state = self._run(lambda conn: read_state(conn, self.manifest.settings, full=True))
        return set(state.applied(self.graph))

    def current(self, module: str) -> tuple[str, ...]:
        mine = set(self.revisions(module))
        done = self.applied() & mine
        return tuple(sorted(r for r in done if not any(c in done for c in self.graph.children[r])))

    def schema(self) -> Catalog:
        """Every schema object, by name and definition, never by oid (the version and log
        tables apart): the snapshot the tool's own stairway compares."""
        settings = self.manifest.settings
        schema = settings.version_table_schema or "public"
        ignored = {f"{schema}.{settings.version_table}", f"{schema}.{settings.log_table}"}
        return kept(self.fetch(SNAPSHOT_SQL), ignored)

    def tables(self) -> set[str]:
        return {
            r[0] if r[1] == "public" else f"{r[1]}.{r[0]}"
            for r in self.fetch(
                "SELECT tablename, schemaname FROM pg_tables WHERE schemaname NOT LIKE "
                "'pg\\_%' AND schemaname <> 'information_schema'"
            )
        }

    # ---- data ----------------------------------------------------------------------------

    def execute(self, sql: str, *args: Any) -> None:
        self._run(lambda conn: conn.execute(sql, *args))

    def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        rows = self._run(lambda conn: conn.fetch(sql, *args))
        return [tuple(r) for r in rows]

    def insert(self, table: str, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """Rows into a table (column names from the first row; values as parameters)."""
        batch = [rows] if isinstance(rows, Mapping) else list(rows)
        if not batch:
            return
        columns = list(batch[0])
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        quoted = ".".join(f'"{part}"' for part in table.split("."))
        sql = f"INSERT INTO {quoted} ({names}) VALUES ({marks})"
        self._run(lambda conn: conn.executemany(sql, [[row[c] for c in columns] for row in batch]))

    def insert_all(self, data: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        for table, rows in data.items():
            self.insert(table, list(rows))

    def _run(self, fn: Any) -> Any:
        from shared.db.connect import connect

        async def main() -> Any:
            conn = await connect(self.url, application_name="migrate tests")
            try:
                return await fn(conn)
            finally:
                await conn.close()

        return asyncio.run(main())
