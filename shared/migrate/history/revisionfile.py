"""Writing revision files from the repository's `script.py.mako`, as Alembic would, but for one
module's versions directory and without loading the history. The message is data: the
template escapes it, and the file is parsed before it is written."""

from __future__ import annotations

import ast
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from shared.migrate.errors import ConfigError, shown
from shared.migrate.manifest import Manifest, Module

SLUG_LIMIT = 40
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Written:
    path: Path
    revision: str


def write(
    manifest: Manifest,
    module: Module,
    message: str,
    *,
    head: str | tuple[str, ...] | None,
    depends_on: tuple[str, ...] = (),
    upgrades: str = "",
    downgrades: str = "",
    imports: str = "",
    labels: tuple[str, ...] = (),
    replaces: tuple[str, ...] = (),
    note: str = "",
) -> Written:
    """Render the template into `module`'s versions directory; `head` is the new revision's
    down_revision (a tuple joins heads: a merge); none starts the module's branch. `labels`
    are branch labels beside the module's (a squash's alias labels), `replaces` the revisions
    it replaces, `note` a paragraph for its docstring."""
    from mako.template import Template

    template = manifest.script_location / "script.py.mako"
    if not template.is_file():
        raise ConfigError(f"{manifest.relative(template)} is missing; restore it")
    revision = uuid.uuid4().hex[-12:]
    text = Template(filename=str(template)).render_unicode(
        up_revision=revision,
        down_revision=head,
        branch_labels=None if head else (module.branch, *labels),
        depends_on=(depends_on[0] if len(depends_on) == 1 else depends_on) or None,
        create_date=datetime.now(),
        comma=_comma,
        message=message,
        upgrades=upgrades,
        downgrades=downgrades,
        imports=imports,
    )
    text = _with_replaces(_with_note(text, note), replaces)
    ast.parse(text)  # a template edit must never write a file that breaks every command
    path = module.versions / f"{revision}_{slug(message)}.py"
    path.write_text(text, encoding="utf-8")
    return Written(path, revision)


REPLACES_COMMENT = (
    "# the revisions this one replaces, with all they build on: kept in a replaced folder for\n"
    "# the databases still inside them (see `replaces` in the README)\n"
)
_DEPENDS_LINE = re.compile(r"^depends_on\s*[:=].*$", re.MULTILINE)


def _with_replaces(text: str, replaces: tuple[str, ...]) -> str:
    """The `replaces` line, after `depends_on` (or before the first function)."""
    if not replaces:
        return text
    line = REPLACES_COMMENT + f"replaces: tuple[str, ...] = {tuple(replaces)!r}\n"
    found = _DEPENDS_LINE.search(text)
    if found:
        return text[: found.end() + 1] + line + text[found.end() + 1 :]
    return text.replace("\ndef upgrade", "\n" + line + "\n\ndef upgrade", 1)


def _with_note(text: str, note: str) -> str:
    """A paragraph after the docstring's first line (Alembic's template: before Revision ID)."""
    if not note:
        return text
    escaped = note.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return text.replace("\n\nRevision ID:", f"\n\n{escaped}\n\nRevision ID:", 1)


def _comma(value: str | tuple[str, ...] | list[str] | None) -> str:
    """The template's `comma` (Alembic's format_as_comma, whose module imports SQLAlchemy)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else ", ".join(value)


def slug(message: str) -> str:
    """Alembic's file name slug: the message's words, lowercase, at most 40 characters."""
    text = "_".join(_WORD.findall(message)).lower()
    if len(text) > SLUG_LIMIT:
        text = text[:SLUG_LIMIT].rsplit("_", 1)[0] + "_"
    return text or "revision"


# ---- what a replacing revision builds, kept beside it ----------------------------------------

EXPECTED_SUFFIX = ".catalog.json"
EXPECTED_FORMAT = 1


def expected_path(path: Path) -> Path:
    """Where the catalog a replacing revision builds is kept: beside it, `<file>.catalog.json`
    (written by adopt, baseline and squash; proved by check)."""
    return path.with_name(path.stem + EXPECTED_SUFFIX)


def read_expected(path: Path) -> list[tuple[str, str, str]] | None:
    """The catalog kept beside the revision file at `path`, or None when there is none."""
    import json

    try:
        data = json.loads(expected_path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{expected_path(path).name}: cannot be read ({shown(str(exc), 120)}); restore it "
            "from version control"
        ) from None
    if not isinstance(data, dict) or data.get("format") != EXPECTED_FORMAT:
        raise ConfigError(f"{expected_path(path).name}: not a catalog this version can read")
    return [(str(k), str(n), str(d)) for k, n, d in data.get("objects", [])]


def write_expected(path: Path, rows: list[list[str]]) -> Path:
    import json

    target = expected_path(path)
    text = json.dumps({"format": EXPECTED_FORMAT, "objects": rows}, indent=1) + "\n"
    target.write_text(text, encoding="utf-8")
    return target
