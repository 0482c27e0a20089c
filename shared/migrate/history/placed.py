"""The revision graph as the databases hold it, when some module lives in a database of its own.

A revision's `depends_on` into a module in another database cannot be checked by either
database (no foreign key crosses databases, and each version table holds only its own
modules' rows), so it only orders the runs: the manifest's module order (`RevisionGraph.rank`)
still puts the modules a module depends on first. Every other edge stays.
"""

from __future__ import annotations

from shared.migrate.history.graph import RevisionGraph


def placed(graph: RevisionGraph) -> RevisionGraph:
    """`graph` without its `depends_on` edges between modules in different databases (as the
    manifest names them); the graph itself when every module shares one database."""
    manifest = graph.manifest
    if not manifest.split:
        return graph
    env = {m.name: manifest.database_env(m) for m in manifest.modules}
    revisions = graph.revisions

    def same_database(revision: str, above: str) -> bool:
        return env.get(revisions[above].module) == env.get(revisions[revision].module)

    # from the edges as the files declare them: the new graph remaps those into a replaced
    # range itself, and keeps the originals that tell a database inside the range apart
    return RevisionGraph(
        manifest,
        (
            rev._replace(
                depends_on=tuple(
                    d
                    for d in graph.original_depends.get(name, rev.depends_on)
                    if same_database(name, d)
                )
            )
            for name, rev in revisions.items()
        ),
    )
