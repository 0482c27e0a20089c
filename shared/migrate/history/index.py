"""The revision index: each module's revision files read without executing them.

A revision's header (`revision`, `down_revision`, `branch_labels`, `depends_on`, the message)
and its checksum come from the file's syntax tree. The result is cached beside the files
(`<versions>/__pycache__/migrate-index.marshal`), keyed by each file's size, mtime, ctime and
inode: safe to delete, and never trusted over a file that changed. A file whose header is not
plain literals is executed instead, so the graph is never wrong, only slower.

Restoring a file with its times (`cp -p`, `rsync -t --inplace`, `unzip -o`) keeps its size,
mtime and inode but sets its ctime, which nothing but a change can set. Two changes within one
tick of the file system's clock leave even the ctime alike, so an entry is trusted only when
the file had not changed for TRUST_MARGIN_NS before it was read (git's "racily clean" rule);
a file younger than that is read again, and cached for good once it is old enough.
"""

from __future__ import annotations

import ast
import hashlib
import marshal
import os
import time
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any, NamedTuple

from shared.migrate.errors import ConfigError, shown
from shared.migrate.history.scripts import load_script, syntax_error
from shared.migrate.manifest import REPLACED_FOLDER, Manifest, Module, relative

CACHE_NAME = "migrate-index.marshal"
CACHE_FORMAT = 4
# the coarsest timestamp a file system keeps (FAT's 2 s; Linux stamps from a clock of one tick,
# at most 10 ms): a file changed more recently than this may change again unseen in its tick
TRUST_MARGIN_NS = 2_000_000_000
CHECKSUM_PREFIX = "v2:"
HEADER_FIELDS = ("revision", "down_revision", "branch_labels", "depends_on", "replaces")


class Revision(NamedTuple):
    """One revision file, attributed to the module whose versions directory holds it.

    `depends_on` holds revision ids once the graph has resolved branch labels. (A named tuple,
    and a path made only when asked for: thousands of these are built on every command.)
    """

    revision: str
    module: str  # the module, or the adopted history's name
    parents: tuple[str, ...]
    depends_on: tuple[str, ...]
    message: str
    location: str  # the file's path
    branch_labels: tuple[str, ...]
    checksum: str
    replaces: tuple[str, ...] = ()  # the revisions it replaces (with all they build on)
    replaced: bool = False  # kept in a replaced folder: run only to leave a replaced range

    @property
    def path(self) -> Path:
        return Path(self.location)


@dataclass(frozen=True)
class Problem:
    """A file that stops every command, reported by `check` as a finding."""

    module: str
    kind: str  # "stray file", "revision file", "duplicate revision"
    detail: str


def scan(manifest: Manifest, modules: list[Module] | None = None) -> list[Revision]:
    """Every revision file of `modules` (default: all), each read once, with the revisions
    they replaced (each module's `replaced/` folder, the adopted history); the first bad file
    raises ConfigError."""
    found: list[Revision] = []
    for module in modules if modules is not None else manifest.modules:
        found += _scan_module(manifest.root, module, None)
    if modules is None:
        found += _scan_adopted(manifest, None)
    return found


def scan_all(manifest: Manifest) -> tuple[list[Revision], list[Problem]]:
    """Every revision file, and every problem with the files (for `check`), none raised."""
    found: list[Revision] = []
    problems: list[Problem] = []
    for module in manifest.modules:
        found += _scan_module(manifest.root, module, problems)
    found += _scan_adopted(manifest, problems)
    for path in legacy_files(manifest):
        problems.append(Problem("-", "stray file", outside_versions(manifest, path)))
    problems += clashes(manifest, found)
    return found, problems


def scan_folder(manifest: Manifest, directory: Path, owner: str) -> list[Revision]:
    """The revision files of one directory as live revisions of `owner`: how `adopt` reads a
    single-application history before it becomes the adopted one."""
    return _scan(manifest.root, directory, owner, False, None)


def _scan_module(root: Path, module: Module, problems: list[Problem] | None) -> list[Revision]:
    """The module's revisions, and those it replaced (its versions directory's `replaced/`)."""
    found = _scan(root, module.versions, module.name, False, problems)
    replaced = module.versions / REPLACED_FOLDER
    if replaced.is_dir():
        found += _scan(root, replaced, module.name, True, problems)
    return found


def _scan_adopted(manifest: Manifest, problems: list[Problem] | None) -> list[Revision]:
    adopted = manifest.adopted
    if adopted is None:
        return []
    return _scan(manifest.root, adopted.versions, adopted.name, True, problems)


def clashes(manifest: Manifest, revisions: list[Revision]) -> list[Problem]:
    """Names that would mean two revisions, refused as Alembic refuses them: a revision id
    declared by two files, a branch label declared twice (by two revisions, or twice by one),
    and a branch label that is also a revision id. Each names the files and the fix."""
    by_id: dict[str, list[Revision]] = {}
    for rev in revisions:
        by_id.setdefault(rev.revision, []).append(rev)
    found = [
        Problem(
            revs[-1].module,
            "duplicate revision",
            f"revision id {rev_id} is declared by "
            + " and ".join(manifest.relative(r.path) for r in revs)
            + "; give one of them a new id",
        )
        for rev_id, revs in by_id.items()
        if len(revs) > 1
    ]
    for replaced in (False, True):  # a replacing revision takes its module's label again
        found += _label_clashes(manifest, [r for r in revisions if r.replaced is replaced], by_id)
    return found


def _label_clashes(
    manifest: Manifest, revisions: list[Revision], by_id: dict[str, list[Revision]]
) -> list[Problem]:
    found: list[Problem] = []
    labelled: dict[str, Revision] = {}
    for rev in revisions:
        if len(by_id[rev.revision]) > 1:
            continue  # a copied file: its id is the problem
        for label in rev.branch_labels:
            if rev.replaced and label in labelled and (rev.replaces or labelled[label].replaces):
                continue  # an earlier squash, replaced in turn, took its module's label again
            where = manifest.relative(rev.path)
            name = f"branch label '{shown(label)}'"
            if label in by_id and not (rev.replaces and by_id[label][0].replaced):
                # (a replacing revision may carry a replaced id as a label: plain Alembic then
                # resolves a depends_on on that revision to the one that replaced it)
                other = manifest.relative(by_id[label][0].path)
                detail = f"{name} of {where} is also the id of revision {label} ({other})"
                found.append(Problem(rev.module, "duplicate label", f"{detail}; rename the label"))
            elif label in labelled:
                first = labelled[label]
                both = (
                    f"twice by {where}; list it once"
                    if first is rev
                    else f"by {manifest.relative(first.path)} and {where}; keep it on one of them"
                )
                found.append(Problem(rev.module, "duplicate label", f"{name} is declared {both}"))
            labelled.setdefault(label, rev)
    return found


def outside_versions(manifest: Manifest, path: Path) -> str:
    """What is wrong with a file in the script location's own versions/ (see legacy_files)."""
    return (
        f"{manifest.relative(path)} is outside every module's versions directory and is "
        "never run; move it into services/<module>/migrations"
    )


def legacy_files(manifest: Manifest) -> list[Path]:
    """Revision files left in the script location's own versions/, which nothing runs."""
    legacy = manifest.script_location / "versions"
    return sorted(legacy.glob("*.py")) if legacy.is_dir() else []


def checksum_of(path: Path) -> str:
    """The checksum of what runs on `up`: the file's syntax tree without docstrings, comments,
    formatting, or its `downgrade()` (fixing a downgrade is not an edit of applied code)."""
    return _checksum(_parse(path, path.parent))


def _scan(
    root: Path, directory: Path, owner: str, replaced: bool, problems: list[Problem] | None
) -> list[Revision]:
    """The revision files of one directory, attributed to `owner` (a module, or the adopted
    history), through the directory's cache."""
    cache_path = directory / "__pycache__" / CACHE_NAME
    cached = _read_cache(cache_path)
    fresh: dict[str, tuple[Any, ...]] = {}
    revisions: list[Revision] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise ConfigError(
            f"'{owner}': cannot read its versions directory {relative(directory, root)} "
            f"({exc.strerror})"
        ) from None
    now = time.time_ns()  # before any file is read: an entry's files were read after it
    for entry in entries:
        name = entry.name
        if not name.endswith(".py") or name[0] == "." or name == "__init__.py":
            continue
        stat = entry.stat()
        if not S_ISREG(stat.st_mode):
            continue
        key = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        row = cached.get(name)
        if row is None or row[:4] != key or not _settled(row):
            try:
                row = (*key, now, *_read(Path(entry.path), root))
            except ConfigError as exc:
                if problems is None:
                    raise
                kind = "stray file" if "declares no revision" in str(exc) else "revision file"
                problems.append(Problem(owner, kind, str(exc)))
                continue
        if row[12]:  # a file that had to be executed is never cached
            fresh[name] = row
        # row: size, mtime, ctime, inode, read at, revision, parents, labels, depends_on,
        # replaces, message, checksum, static
        revisions.append(
            Revision(
                row[5],
                owner,
                row[6],
                row[8],
                row[10],
                entry.path,
                row[7],
                row[11],
                row[9],
                replaced,
            )
        )
    if fresh != cached:
        _write_cache(cache_path, fresh)
    return revisions


def _settled(row: tuple[Any, ...]) -> bool:
    """Whether the entry was read when its file had not changed for TRUST_MARGIN_NS (mtime and
    ctime both): a change after the read cannot then share the ctime the entry holds."""
    changed: int = max(row[1], row[2])
    read_at: int = row[4]
    return changed + TRUST_MARGIN_NS < read_at


def _read(path: Path, root: Path) -> tuple[Any, ...]:
    """(revision, parents, branch_labels, depends_on, replaces, message, checksum, static)."""
    tree = _parse(path, root)
    values = _static_header(tree)
    static = values is not None
    if values is None:
        module = load_script(path, root)
        values = {name: getattr(module, name) for name in HEADER_FIELDS if hasattr(module, name)}
    where = relative(path, root)
    if "revision" not in values:
        raise ConfigError(
            f"{where} is in a versions directory but declares no revision; move it out"
        )
    revision = values["revision"]
    if not isinstance(revision, str) or not revision.strip():
        raise ConfigError(f"{where}: revision must be a non-empty string")
    if "down_revision" not in values:
        raise ConfigError(f"{where}: revision {shown(revision)} declares no down_revision")
    fields = [_ids(values.get(name), name, where) for name in HEADER_FIELDS[1:]]
    doc = (ast.get_docstring(tree, clean=False) or "").strip()
    message = doc.split("\n\n", 1)[0]
    return (revision, *fields, message, _checksum(tree), static)


def _parse(path: Path, root: Path) -> ast.Module:
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{relative(path, root)}: cannot be read ({exc.strerror})") from None
    try:
        return ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        raise syntax_error(path, root, exc) from None


def _ids(value: object, name: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where}: {name} must be None, a revision id or a list of them")


def _static_header(tree: ast.Module) -> dict[str, Any] | None:
    """The header's literal values, or None when anything could bind them another way."""
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is None:
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    if target.id in HEADER_FIELDS:
                        try:
                            found[target.id] = ast.literal_eval(node.value)
                        except ValueError:
                            return None
                elif _binds_header(target):
                    return None
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name) in HEADER_FIELDS:
                    return None
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name in HEADER_FIELDS:
                return None
        elif _binds_header(node):
            return None
    return found


def _binds_header(node: ast.AST) -> bool:
    return any(
        isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store) and sub.id in HEADER_FIELDS
        for sub in ast.walk(node)
    )


def _checksum(tree: ast.Module) -> str:
    body = [
        node
        for node in _without_docstring(tree.body)
        if not (isinstance(node, ast.FunctionDef) and node.name == "downgrade")
    ]
    out: list[str] = []
    _canonical(body, out)
    return CHECKSUM_PREFIX + hashlib.sha256("".join(out).encode()).hexdigest()


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        return body[1:] if isinstance(first.value.value, str) else body
    return body


# fields that differ between Python versions without changing what the code does
_SKIPPED_FIELDS = {"type_comment", "kind", "type_params"}


def _canonical(node: object, out: list[str]) -> None:
    """A serialisation of a syntax tree that is the same on every supported Python (unlike
    `ast.dump`, whose output changed in 3.13)."""
    if isinstance(node, list):
        out.append("[")
        for item in node:
            _canonical(item, out)
            out.append(",")
        out.append("]")
        return
    if not isinstance(node, ast.AST):
        out.append(f"{type(node).__name__}:{node!r}")
        return
    out.append(type(node).__name__ + "(")
    for name in node._fields:
        if name in _SKIPPED_FIELDS:
            continue
        value = getattr(node, name, None)
        if name == "body" and isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            value = _without_docstring(list(value or []))
        if value is None or value == []:
            continue
        out.append(name + "=")
        _canonical(value, out)
    out.append(")")


def _read_cache(path: Path) -> dict[str, tuple[Any, ...]]:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _write_cache(path: Path, files: dict[str, tuple[Any, ...]]) -> None:
    """Best effort: a read-only checkout just reads the files every time."""
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(marshal.dumps({"format": CACHE_FORMAT, "files": files}))
        os.replace(tmp, path)
    except OSError:
        pass
