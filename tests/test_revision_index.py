"""The revision index reads the history from the files' headers without executing them;
Alembic executes every file. Both must see the same graph: on the repository, and on generated
histories with branch points, merges, cross-module `depends_on` (by id and by branch label), and
headers that only executing the file can read (the index falls back to executing those)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from shared.migrate.history.config import write_locations
from shared.migrate.history.graph import load_graph
from shared.migrate.manifest import load_manifest
from tests.conftest import REPO, Project, copy_project


def alembic_graph(root: Path) -> dict[str, Any]:
    """What Alembic makes of the files: per revision its parents, resolved dependencies,
    branch labels, message and file; the heads; and each revision's ancestors."""
    script = ScriptDirectory.from_config(AlembicConfig(str(root / "alembic.ini")))
    revisions = {}
    ancestors = {}
    for rev in script.walk_revisions():
        revisions[rev.revision] = {
            "parents": sorted(rev._versioned_down_revisions),
            "depends_on": sorted(rev._resolved_dependencies),
            "labels": sorted(rev._orig_branch_labels),  # its own, not inherited
            "message": rev.doc,
            "path": Path(rev.path).resolve().relative_to(root).as_posix(),
        }
        ancestors[rev.revision] = {
            r.revision
            for r in script.revision_map._get_ancestor_nodes([rev], include_dependencies=True)
        }
    return {"revisions": revisions, "heads": sorted(script.get_heads()), "ancestors": ancestors}


def our_graph(root: Path) -> dict[str, Any]:
    graph = load_graph(load_manifest(root / "migrations.yaml"))
    revisions = {
        r.revision: {
            "parents": sorted(r.parents),
            "depends_on": sorted(r.depends_on),
            "labels": sorted(r.branch_labels),
            "message": r.message,
            "path": r.path.resolve().relative_to(root).as_posix(),
        }
        for r in graph.revisions.values()
    }
    heads = sorted(h for m in graph.manifest.modules for h in graph.heads(m.name))
    ancestors = {r: graph.ancestors({r}) for r in graph.revisions}
    return {"revisions": revisions, "heads": heads, "ancestors": ancestors}


def test_the_repository_reads_the_same_as_alembic() -> None:
    assert our_graph(REPO) == alembic_graph(REPO)


# ---- generated histories --------------------------------------------------------------------

LITERAL = '''"""{message}

Revision ID: {revision}
Revises: {revises}
"""
from collections.abc import Sequence

revision: str = {revision!r}
down_revision: str | Sequence[str] | None = {down!r}
branch_labels: str | Sequence[str] | None = {labels!r}
depends_on: str | Sequence[str] | None = {depends!r}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''

# a header only executing the file can read: the index must fall back, never guess
COMPUTED = '''"""{message}"""
PARENTS = {down!r}

revision = "".join([{revision!r}])
down_revision = PARENTS
branch_labels = {labels!r}
depends_on = (lambda given: given)({depends!r})


def upgrade():
    pass


def downgrade():
    pass
'''


def write_revision(
    rng: random.Random,
    package: Path,
    made: list[str],
    earlier: dict[str, list[str]],
    parents: list[str],
    first: bool = False,
) -> str:
    """One revision file of the module in `package` on `parents`, sometimes depending on an
    earlier module's revision (by id, or by branch label) and sometimes with a computed header."""
    name = package.name
    revision = f"{name}{rng.getrandbits(28):07x}"
    depends: list[str] = []
    if first or rng.random() < 0.3:
        other = rng.choice(sorted(earlier))
        # a branch label names the revision that declares it, as in Alembic
        depends.append(other if rng.random() < 0.3 else rng.choice(earlier[other]))
    down: str | tuple[str, ...] | list[str] | None = None
    if len(parents) == 1:
        down = parents[0]
    elif parents:
        down = tuple(parents) if rng.random() < 0.5 else list(parents)
    template = COMPUTED if rng.random() < 0.15 else LITERAL
    text = template.format(
        message=f"step {len(made)} of {name}",
        revision=revision,
        revises=", ".join(parents),
        down=down,
        labels=(name,) if first else None,
        depends=(depends[0] if len(depends) == 1 else depends) or None,
    )
    (package / "migrations" / f"{revision}_step.py").write_text(text)
    made.append(revision)
    return revision


def generate(root: Path, seed: int) -> dict[str, list[str]]:
    """Four modules of branching, merging histories that depend on each other and on the
    example modules, added to the example repository in `root`; each module's revisions."""
    rng = random.Random(seed)
    modules: dict[str, list[str]] = {}
    earlier = {"users": ["a2aac9be69fc", "fe95ecace8c3"], "agents": ["6d1a84599872"]}
    entries = []
    for k in range(4):
        name = f"gen{k}"
        package = root / "services" / name
        (package / "migrations").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "models.py").write_text('"""No tables."""\n')
        made: list[str] = []
        tips = [write_revision(rng, package, made, earlier, [], first=True)]
        for _ in range(rng.randint(8, 16)):
            roll = rng.random()
            if roll < 0.2:  # a branch point: a second line of work from an older revision
                tips.append(write_revision(rng, package, made, earlier, [rng.choice(made)]))
            elif roll < 0.35 and len(tips) > 1:  # a merge of two lines
                a, b = rng.sample(tips, 2)
                merged = write_revision(rng, package, made, earlier, [a, b])
                tips = [t for t in tips if t not in (a, b)] + [merged]
            else:
                i = rng.randrange(len(tips))
                tips[i] = write_revision(rng, package, made, earlier, [tips[i]])
        if len(tips) > 1 and k % 2 == 0:  # every other module ends merged
            tips = [write_revision(rng, package, made, earlier, sorted(tips))]
        modules[name] = made
        earlier[name] = made
        needs = sorted({"users", "agents", *(f"gen{j}" for j in range(k))})
        entries.append(f"  - name: {name}\n    depends_on: [{', '.join(needs)}]\n")
    manifest = root / "migrations.yaml"
    manifest.write_text(manifest.read_text() + "".join(entries))
    write_locations(load_manifest(manifest))
    return modules


@pytest.mark.parametrize("seed", range(6))
def test_generated_histories_read_the_same_as_alembic(tmp_path: Path, seed: int) -> None:
    copy_project(tmp_path)
    modules = generate(tmp_path, seed)
    ours, theirs = our_graph(tmp_path), alembic_graph(tmp_path)
    assert ours["revisions"] == theirs["revisions"]
    assert ours["heads"] == theirs["heads"]
    assert ours["ancestors"] == theirs["ancestors"]
    assert any(len(r["parents"]) > 1 for r in ours["revisions"].values()), "no merge made"
    computed = [
        p for p in tmp_path.glob("services/gen*/migrations/*.py") if "PARENTS" in p.read_text()
    ]
    assert computed, "no header that only executing can read"
    assert sum(len(v) for v in modules.values()) + 6 == len(ours["revisions"])
    # a second read comes from the on-disk cache: still the same graph
    assert our_graph(tmp_path) == ours
    cached = list(tmp_path.glob("services/gen*/migrations/__pycache__/migrate-index.marshal"))
    assert len(cached) == 4


def test_the_command_line_shows_alembics_graph(project: Project) -> None:
    generate(project.root, 7)
    theirs = alembic_graph(project.root)
    history = project.migrate("history", "--json", url=False)
    assert history.code == 0, history.err
    shown = {
        r["revision"]: (sorted(r["parents"]), sorted(r["depends_on"]), r["head"])
        for m in json.loads(history.out)["modules"]
        for r in m["revisions"]
    }
    assert shown == {
        rev: (info["parents"], info["depends_on"], rev in theirs["heads"])
        for rev, info in theirs["revisions"].items()
    }
    heads = json.loads(project.migrate("heads", "--json", url=False).out)["modules"]
    assert sorted(h for m in heads for h in m["heads"]) == theirs["heads"]
