"""The revision graph: every module's revisions, heads and dependencies, walked in linear time.

Built from the revision index (no revision file is executed). Edges are `down_revision`
(within a module) and `depends_on` (across modules); both imply "applied before".
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

from shared.migrate.errors import ConfigError, MultipleHeads, shown
from shared.migrate.history import index
from shared.migrate.history.index import Revision
from shared.migrate.manifest import Manifest, Module

__all__ = ["Revision", "RevisionGraph", "load_graph"]


def load_graph(manifest: Manifest) -> RevisionGraph:
    """Every module's revisions, read through the index and validated."""
    revisions = index.scan(manifest)
    for path in index.legacy_files(manifest):
        raise ConfigError(index.outside_versions(manifest, path))
    return RevisionGraph(manifest, revisions)


class RevisionGraph:
    def __init__(self, manifest: Manifest, revisions: Iterable[Revision]):
        self.manifest = manifest
        listed = list(revisions)
        self.revisions: dict[str, Revision] = {rev.revision: rev for rev in listed}
        for clash in index.clashes(manifest, listed):  # a name that would mean two revisions
            raise ConfigError(clash.detail)
        self._resolve_dependencies()
        self.members: dict[str, list[str]] = {m.name: [] for m in manifest.modules}
        self.children: dict[str, list[str]] = {r: [] for r in self.revisions}
        self.dependents: dict[str, list[str]] = {r: [] for r in self.revisions}
        revisions_of = self.revisions
        children, dependents = self.children, self.dependents
        for rev in revisions_of.values():
            name = rev.revision
            self.members.setdefault(rev.module, []).append(name)
            for parent in rev.parents:
                found = revisions_of.get(parent)
                if found is None or found.module != rev.module:
                    self._bad_parent(rev, parent, found)
                children[parent].append(name)
                dependents[parent].append(name)
            for above in rev.depends_on:
                dependents[above].append(name)
        self._check_acyclic()

    # ---- building ------------------------------------------------------------------------

    def _resolve_dependencies(self) -> None:
        """`depends_on` may name a revision or a branch label (Alembic resolves a label to the
        revision that declares it); store revision ids."""
        known = self.revisions
        pending = [
            r for r in known.values() if r.depends_on and not all(d in known for d in r.depends_on)
        ]
        if not pending:
            return
        labels = {label: r.revision for r in known.values() for label in r.branch_labels}
        for rev in pending:
            resolved: list[str] = []
            for dep in rev.depends_on:
                target = dep if dep in self.revisions else labels.get(dep)
                if target is None:
                    raise ConfigError(
                        f"{self.relative(rev.path)}: depends_on "
                        f"'{shown(dep)}' is neither a known revision nor a branch label; "
                        "fix depends_on"
                    )
                if target not in resolved:
                    resolved.append(target)
            self.revisions[rev.revision] = rev._replace(depends_on=tuple(resolved))

    def _bad_parent(self, rev: Revision, parent: str, other: Revision | None) -> None:
        where = self.relative(rev.path)
        if other is None:
            raise ConfigError(
                f"{where}: down_revision '{shown(parent)}' of revision {rev.revision} "
                f"is not a revision of module '{rev.module}'; fix down_revision"
            )
        raise ConfigError(
            f"{where}: revision {rev.revision} of module '{rev.module}' has parent "
            f"{parent} from module '{other.module}'; a module builds only on its "
            "own revisions: use depends_on for another module's"
        )

    def _check_acyclic(self) -> None:
        """A revision that is its own ancestor (through down_revision or depends_on) would make
        every plan wrong: refuse the history, naming a revision in the loop."""
        waiting = {
            r: len(info.parents) + len(info.depends_on) for r, info in self.revisions.items()
        }
        ready = [r for r, count in waiting.items() if count == 0]
        dependents = self.dependents
        seen = 0
        while ready:
            rev = ready.pop()
            seen += 1
            for below in dependents[rev]:
                left = waiting[below] - 1
                waiting[below] = left
                if left == 0:
                    ready.append(below)
        if seen != len(self.revisions):
            info = self.revisions[min(r for r, count in waiting.items() if count > 0)]
            raise ConfigError(
                f"{self.relative(info.path)}: revision {info.revision} is its "
                "own ancestor through down_revision or depends_on; break the loop"
            )

    @cached_property
    def _by_module(self) -> dict[str, list[Revision]]:
        """Each module's revisions, newest first: every revision after all that build on it
        (Kahn's algorithm from the bases, oldest first, ties by id; then reversed)."""
        result: dict[str, list[Revision]] = {m.name: [] for m in self.manifest.modules}
        waiting = {r: len(info.parents) for r, info in self.revisions.items()}
        ready = [r for r, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        while ready:
            rev = self.revisions[heapq.heappop(ready)]
            result.setdefault(rev.module, []).append(rev)
            for child in self.children[rev.revision]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, child)
        for revisions in result.values():
            revisions.reverse()
        return result

    @cached_property
    def rank(self) -> dict[str, int]:
        """One order for every revision in which each comes after its parents and everything
        it depends on; among those free to go, modules in manifest order, oldest first.
        Any plan sorted by it is a valid order to apply."""
        module_index = {m.name: i for i, m in enumerate(self.manifest.ordered())}
        local = {
            rev.revision: i
            for revs in self._by_module.values()
            for i, rev in enumerate(reversed(revs))
        }
        waiting = {
            r: len(info.parents) + len(info.depends_on) for r, info in self.revisions.items()
        }

        def key(r: str) -> tuple[int, int, str]:
            return (module_index.get(self.revisions[r].module, len(module_index)), local[r], r)

        ready = [key(r) for r, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        rank: dict[str, int] = {}
        while ready:
            next_id = heapq.heappop(ready)[2]
            rank[next_id] = len(rank)
            for below in self.dependents[next_id]:
                waiting[below] -= 1
                if waiting[below] == 0:
                    heapq.heappush(ready, key(below))
        return rank

    # ---- reading -------------------------------------------------------------------------

    def of_module(self, module: str) -> list[Revision]:
        """The module's revisions, newest first (each after everything that builds on it)."""
        return self._by_module.get(module, [])

    def heads(self, module: str) -> list[str]:
        return sorted(r for r in self.members.get(module, []) if not self.children[r])

    def head(self, module: Module) -> str | None:
        """The module's one head (None before its first revision); two heads are an error."""
        heads = self.heads(module.name)
        if len(heads) > 1:
            raise MultipleHeads(module.name, heads)
        return heads[0] if heads else None

    def is_merge(self, revision: str) -> bool:
        return len(self.revisions[revision].parents) > 1

    def ancestors(self, revisions: Iterable[str], beyond: set[str] | None = None) -> set[str]:
        """The revisions and everything they build on, through parents and depends_on; with
        `beyond` (a set closed under ancestry, such as what is applied), only what lies
        outside it."""
        seen: set[str] = set()
        stop = beyond if beyond is not None else set()
        stack = [r for r in revisions if r in self.revisions and r not in stop]
        while stack:
            rev = stack.pop()
            if rev in seen:
                continue
            seen.add(rev)
            info = self.revisions[rev]
            stack.extend(p for p in info.parents if p not in stop)
            stack.extend(d for d in info.depends_on if d not in stop)
        return seen

    def descendants(self, revisions: Iterable[str], within: set[str] | None = None) -> set[str]:
        """The revisions and everything that builds on them (optionally only among `within`)."""
        seen: set[str] = set()
        stack = [r for r in revisions if r in self.revisions]
        while stack:
            rev = stack.pop()
            if rev in seen or (within is not None and rev not in within):
                continue
            seen.add(rev)
            stack.extend(self.dependents[rev])
        return seen

    def maximal(self, applied: set[str]) -> set[str]:
        """The version rows for an applied set: the revisions no other applied one implies."""
        return {r for r in applied if not any(d in applied for d in self.dependents[r])}

    def implied(self, rows: Iterable[str], applied: set[str]) -> set[str]:
        """The version rows another applied revision already implies (a tidy table has none)."""
        return {r for r in rows if any(d in applied for d in self.dependents.get(r, ()))}

    def ordered(self, revisions: Iterable[str], newest_first: bool = False) -> list[str]:
        chosen = list(revisions)
        if len(chosen) < 2:
            return chosen
        return sorted(chosen, key=self.rank.__getitem__, reverse=newest_first)

    def relative(self, path: Path) -> str:
        """A revision file's path as messages name it."""
        return self.manifest.relative(path)
