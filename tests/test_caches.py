"""Caches that cannot lie: a file restored with its times (`cp -p`, `rsync -t --inplace`,
`unzip -o`, an artifact with fixed mtimes) keeps its size, mtime and inode, but never its
ctime. The revision index must read such a file again, and the manifest is never cached."""

from __future__ import annotations

import json
import marshal
import os
import py_compile
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from shared.migrate.history import index
from shared.migrate.history.index import checksum_of
from shared.migrate.manifest import load_manifest
from tests import pg
from tests.conftest import Project, copy_project

pytestmark = pytest.mark.console_script  # `up` on the main path: the script itself

# longer than the index's margin for timestamp granularity: files this old have cache entries
# it trusts, so only the ctime in the key can tell an edit made afterwards
SETTLE = 2.2


def same_size_edit(path: Path, old: str, new: str) -> None:
    """Edit `path` in place and put its mtime back: size, mtime and inode as before."""
    assert len(old) == len(new)
    before = path.stat()
    path.write_text(path.read_text().replace(old, new, 1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def copy_over(source: Path, target: Path) -> None:
    """`cp -p source target`: the target keeps its inode and takes the source's times."""
    subprocess.run(["cp", "-p", str(source), str(target)], check=True, timeout=30)


def up_runs_the_file_as_it_is(
    project: Project, path: Path, revision: str, made: str, not_made: str
) -> None:
    """`up` applies the revision as its file says now (the table `made`, not `not_made`) and
    logs that file's checksum."""
    up = project.migrate("up")
    assert up.code == 0, up.err
    tables = pg.tables(project.database_url)
    assert made in tables and not_made not in tables
    log = json.loads(project.migrate("log", "--json").out)["entries"]
    [entry] = [e for e in log if e["revision"] == revision]
    assert entry["checksum"] == checksum_of(path)


def test_an_applied_revision_edited_behind_the_cache_is_refused(project: Project) -> None:
    applied = project.write_revision("users", "cac4e0000001", "op.execute('SELECT 1')")
    original = project.root / "original.py"
    shutil.copy2(applied, original)
    time.sleep(SETTLE)
    first = project.migrate("up", "--branch", "users")
    assert first.code == 0, first.err
    assert "cac4e0000001" in first.out

    same_size_edit(applied, "SELECT 1", "SELECT 2")
    refused = project.migrate("up", "--branch", "users")
    assert refused.code == 1, refused.out + refused.err
    where = applied.relative_to(project.root)
    assert f"revision cac4e0000001 ({where}) changed after it was applied" in refused.err

    copy_over(original, applied)  # back as it was, its old mtime restored too
    again = project.migrate("up", "--branch", "users")
    assert again.code == 0, again.err
    assert "No migrations to apply." in again.out


def test_a_pending_revision_replaced_with_cp_p_is_logged_as_it_ran(
    project: Project, tmp_path: Path
) -> None:
    pending = project.write_revision(
        "billing", "cac4e0000002", "op.execute('CREATE TABLE cp_one (a int)')"
    )
    replacement = tmp_path / "replacement.py"
    replacement.write_text(pending.read_text().replace("cp_one", "cp_two"))
    stat = pending.stat()
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    time.sleep(SETTLE)
    assert project.migrate("status").code == 0  # reads (and caches) the index

    copy_over(replacement, pending)
    up_runs_the_file_as_it_is(project, pending, "cac4e0000002", "cp_two", "cp_one")

    # a clean checkout of the same code, with no cache: nothing changed after it was applied
    shutil.rmtree(pending.parent / "__pycache__")
    clean = project.migrate("up")
    assert clean.code == 0, clean.err
    assert "No migrations to apply." in clean.out


def test_a_revision_runs_as_its_file_is_never_as_its_bytecode_was(project: Project) -> None:
    """Python's import trusts a .pyc whose source kept its size and mtime (in whole seconds):
    compileall, an earlier run or an artifact leaves one. The tool runs the file's bytes."""
    pending = project.write_revision(
        "billing", "cac4e0000003", "op.execute('CREATE TABLE pyc_one (a int)')"
    )
    time.sleep(SETTLE)
    py_compile.compile(str(pending), doraise=True)  # as `make install` or compileall does
    same_size_edit(pending, "pyc_one", "pyc_two")
    up_runs_the_file_as_it_is(project, pending, "cac4e0000003", "pyc_two", "pyc_one")
    down = project.migrate("down", "--branch", "billing")  # runs the file's downgrade too
    assert down.code == 0, down.err


def test_a_renamed_module_is_seen_whatever_the_manifest_times(project: Project) -> None:
    assert project.migrate("heads").code == 0
    (project.root / "services" / "billing").rename(project.root / "services" / "billinx")
    same_size_edit(project.root / "migrations.yaml", "name: billing", "name: billinx")
    heads = project.migrate("heads", "--json")
    assert heads.code == 0, heads.err
    assert [m["module"] for m in json.loads(heads.out)["modules"]] == ["users", "agents", "billinx"]


def test_an_entry_cached_in_its_files_clock_tick_is_read_again(tmp_path: Path) -> None:
    """git's racily clean rule: two changes within one tick of the file system's clock leave
    size, mtime, ctime and inode alike, so an entry read that soon after its file changed is
    not trusted; once the file is older than the margin, its entry is."""
    copy_project(tmp_path)
    manifest = load_manifest(tmp_path / "migrations.yaml")
    users = {p.name.split("_")[0] for p in manifest.module("users").versions.glob("*.py")}
    cache = manifest.module("users").versions / "__pycache__" / index.CACHE_NAME

    def messages() -> dict[str, str]:
        return {r.revision: r.message for r in index.scan(manifest) if r.revision in users}

    def tamper() -> None:  # the cache as a change in the same tick would leave it: stale
        data = marshal.loads(cache.read_bytes())
        data["files"] = {
            name: tuple("stale" if value in real.values() else value for value in row)
            for name, row in data["files"].items()
        }
        cache.write_bytes(marshal.dumps(data))

    real = messages()  # the files were copied just now
    assert len(real) == 2 and "stale" not in real.values()
    tamper()
    assert messages() == real
    assert SETTLE * 1e9 > index.TRUST_MARGIN_NS
    time.sleep(SETTLE)
    assert messages() == real  # read again, now that the files are old enough: trusted
    tamper()
    assert set(messages().values()) == {"stale"}
