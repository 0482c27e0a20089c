"""The revision graph: every module's revisions, heads and dependencies, walked in linear time.

Built from the revision index (no revision file is executed). Edges are `down_revision`
(within a module) and `depends_on` (across modules); both imply "applied before".
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path

from shared.migrate.errors import ConfigError, MultipleHeads, shown
from shared.migrate.history import index
from shared.migrate.history.index import Revision
from shared.migrate.manifest import REPLACED_FOLDER, Manifest, Module

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
        self.replaced = {r for r, info in self.revisions.items() if info.replaced}
        self._resolve_dependencies()
        self.replacing: dict[str, frozenset[str]] = {}  # a revision -> the revisions it replaces
        self.replacers: dict[str, list[str]] = {}  # a replaced revision -> what replaces it
        # a revision's depends_on as its file gave them, where a replaced one was remapped
        self.original_depends: dict[str, tuple[str, ...]] = {}
        # a replacing revision -> what it names in `replaces` that is gone (folder deleted)
        self.forgotten: dict[str, tuple[str, ...]] = {}
        if self.replaced or any(r.replaces for r in listed):
            self._replacements()
        self.members: dict[str, list[str]] = {m.name: [] for m in manifest.modules}
        self.children: dict[str, list[str]] = {r: [] for r in self.revisions}
        self.dependents: dict[str, list[str]] = {r: [] for r in self.revisions}
        revisions_of = self.revisions
        children, dependents = self.children, self.dependents
        for rev in revisions_of.values():
            name = rev.revision
            if not rev.replaced:
                self.members.setdefault(rev.module, []).append(name)
            for parent in rev.parents:
                found = revisions_of.get(parent)
                if found is None or found.module != rev.module or found.replaced != rev.replaced:
                    self._bad_parent(rev, parent, found)
                children[parent].append(name)
                dependents[parent].append(name)
            for above in rev.depends_on:
                dependents[above].append(name)
            for top in rev.replaces:  # it comes after what it replaces, and implies it
                dependents[top].append(name)
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
        labels = {  # a replacing revision takes its module's label again: the live one wins
            label: r.revision
            for r in sorted(known.values(), key=lambda r: not r.replaced)
            for label in r.branch_labels
        }
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

    def _replacements(self) -> None:
        """What each replacing revision replaces: the revisions it names and all they build on
        (their parents, among the replaced revisions); a live revision that depends on a
        replaced one depends on what replaced it (Django's loader remaps them the same way)."""
        revisions = self.revisions
        for rev in list(revisions.values()):
            gone = [name for name in rev.replaces if name not in revisions]
            if gone and self._deleted(rev):
                # the replaced folder was deleted once no database needed it: the revision
                # stands alone, and a database still at one of those is at an unknown revision
                self.forgotten[rev.revision] = tuple(gone)
                rev = rev._replace(replaces=tuple(n for n in rev.replaces if n in revisions))
                revisions[rev.revision] = rev
            if not rev.replaces:
                continue
            where = self.relative(rev.path)
            covered: set[str] = set()
            stack = list(rev.replaces)
            while stack:
                name = stack.pop()
                if name in covered:
                    continue
                found = revisions.get(name)
                if found is None or not found.replaced:
                    raise ConfigError(
                        f"{where}: revision {rev.revision} replaces '{shown(name)}', which is "
                        "not a revision in a replaced folder (a module's migrations/"
                        f"{REPLACED_FOLDER}/, or the adopted history); fix replaces, or move "
                        "that file there"
                    )
                covered.add(name)
                stack.extend(p for p in found.parents if p in self.replaced)
            self.replacing[rev.revision] = frozenset(covered)
            for name in covered:
                self.replacers.setdefault(name, []).append(rev.revision)
        for name in sorted(self.replaced - set(self.replacers)):
            raise ConfigError(
                f"{self.relative(revisions[name].path)}: revision {name} is in a replaced folder "
                "but no revision replaces it; list it in a revision's replaces, or move the "
                "file back into its versions directory"
            )
        for rev in list(revisions.values()):
            if rev.replaced or not any(d in self.replaced for d in rev.depends_on):
                continue
            self.original_depends[rev.revision] = rev.depends_on
            remapped: list[str] = []
            for dep in rev.depends_on:
                for target in self._live_replacers(dep) if dep in self.replaced else [dep]:
                    if target not in remapped:
                        remapped.append(target)
            revisions[rev.revision] = rev._replace(depends_on=tuple(remapped))

    def _deleted(self, rev: Revision) -> bool:
        """Whether the revisions `rev` replaces can no longer be anywhere: its module keeps
        no replaced revision and there is no adopted history (else a name it gives that is
        not found is a mistake, and refused)."""
        return self.manifest.adopted is None and not any(
            r.replaced and r.module == rev.module for r in self.revisions.values()
        )

    def _live_replacers(self, name: str) -> list[str]:
        """The live revisions that (through replacements of replacements) replace `name`."""
        found: list[str] = []
        for replacer in self.replacers.get(name, []):
            if self.revisions[replacer].replaced:
                found += [r for r in self._live_replacers(replacer) if r not in found]
            elif replacer not in found:
                found.append(replacer)
        return found

    def _bad_parent(self, rev: Revision, parent: str, other: Revision | None) -> None:
        where = self.relative(rev.path)
        if other is not None and other.replaced and not rev.replaced:
            raise ConfigError(
                f"{where}: revision {rev.revision} builds on {parent}, which revision "
                f"{', '.join(self.replacers.get(parent, ['?']))} replaced; plain Alembic cannot "
                "follow a down_revision into a replaced folder: squash up to the head, or move "
                f"{parent} back"
            )
        if other is not None and rev.replaced and not other.replaced:
            raise ConfigError(
                f"{where}: replaced revision {rev.revision} builds on {parent}, which is not "
                "replaced; move it into the same replaced folder"
            )
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
        waiting = {r: _above(info) for r, info in self.revisions.items()}
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
        waiting = {r: _above(info) for r, info in self.revisions.items()}

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
        """The module's revisions, newest first (each after everything that builds on it);
        not those it replaced (see `replaced_of`)."""
        return [r for r in self._by_module.get(module, []) if not r.replaced]

    def replaced_of(self, owner: str) -> list[Revision]:
        """The replaced revisions of a module (or of the adopted history), newest first."""
        return [r for r in self._by_module.get(owner, []) if r.replaced]

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
        return self._walk(revisions, lambda info: info.depends_on, beyond or set())

    def _walk(
        self,
        revisions: Iterable[str],
        depends: Callable[[Revision], Iterable[str]],
        stop: set[str],
    ) -> set[str]:
        """The revisions and all they build on: their parents and what `depends` names."""
        seen: set[str] = set()
        stack = [r for r in revisions if r in self.revisions and r not in stop]
        while stack:
            rev = stack.pop()
            if rev in seen:
                continue
            seen.add(rev)
            info = self.revisions[rev]
            stack.extend(p for p in info.parents if p not in stop)
            stack.extend(d for d in depends(info) if d not in stop)
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
        """The version rows for an applied set: the revisions no other applied one implies
        (a replacing revision implies what it replaces)."""
        return {r for r in applied if not any(d in applied for d in self.dependents[r])}

    # ---- replaced revisions ----------------------------------------------------------------

    def reached(self, rows: Iterable[str], moved: Callable[[str], bool]) -> set[str]:
        """What a database whose version rows are `rows` ran: they and all they build on. A
        revision that depends on a replaced one (its file predates the replacement) stands on
        what replaced it only once the database was moved onto that (`moved`, from the log):
        the same rows mean the replaced revision on a database that never was."""
        if not self.original_depends:
            return self.ancestors(rows)

        def depends(info: Revision) -> list[str]:
            found: list[str] = []
            for dep in self.original_depends.get(info.revision, info.depends_on):
                live = self._live_replacers(dep) if dep in self.replaced else []
                found += live if live and all(moved(s) for s in live) else [dep]
            return found

        return self._walk(rows, depends, set())

    def applied(self, reached: set[str]) -> set[str]:
        """What is applied on a database that ran `reached`: that, and a replacing revision
        once everything it replaces is (a database at the top of a replaced range is at the
        revision that replaced it)."""
        applied = set(reached)
        grew = bool(self.replacing)
        while grew:
            grew = False
            for name, covered in self.replacing.items():
                if name not in applied and covered <= applied:
                    applied |= self.ancestors([name])
                    grew = True
        return applied

    def pending(self, reached: set[str]) -> set[str]:
        """What `up` would still run on a database that ran `reached`: the live revisions not
        applied, and the replaced ones left of a range it is inside (never the replaced
        revisions of a range it is past, or never entered)."""
        applied = self.applied(reached)
        live = {r for r in self.revisions if r not in self.replaced and r not in applied}
        inside = self.inside(reached)
        rest = {r for name in inside for r in self.covered(name) if r not in reached}
        return (
            (live - inside)
            | (rest - set(self.replacing))
            | {r for r in rest & set(self.replacing) if not self.covered(r) & reached}
        )

    def covered(self, name: str) -> set[str]:
        """Every revision `name` replaces, and what those replaced in turn."""
        found = set(self.replacing.get(name, ()))
        for inner in list(found):
            if inner in self.replacing:
                found |= self.covered(inner)
        return found

    def before(self, names: Iterable[str]) -> RevisionGraph:
        """The history as it stood before the revisions `names` replaced others: those and
        what builds on them left out, what they replace live again (`check` builds it to
        prove that a squash or an adoption still builds what it replaced)."""
        chosen = list(names)
        dropped = self.descendants(chosen)
        covered = set().union(*(self.covered(n) for n in chosen)) if chosen else set()
        kept = [
            rev._replace(
                replaced=rev.replaced and rev.revision not in covered,
                depends_on=self.original_depends.get(rev.revision, rev.depends_on),
            )
            for rev in self.revisions.values()
            if rev.revision not in dropped
        ]
        return RevisionGraph(self.manifest, kept)

    def inside(self, reached: set[str]) -> set[str]:
        """The live replacing revisions a database that reached `reached` (its rows and all
        they build on) still has to be moved onto: it ran some or all of what they replace."""
        return {
            name
            for name in self.replacing
            if not self.revisions[name].replaced
            and name not in reached
            and self.covered(name) & reached
        }

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


def _above(info: Revision) -> int:
    """How many revisions must come before it: its parents, what it depends on, and the
    revisions it replaces."""
    return len(info.parents) + len(info.depends_on) + len(info.replaces)
