"""How Alembic finds the revisions: the Config the tool builds in code (the tool never reads
alembic.ini, and the database URL never enters a Config), and alembic.ini's
version_locations kept in step with the manifest so plain `alembic` works."""

from __future__ import annotations

import configparser
import re
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from shared.migrate.manifest import Manifest

if TYPE_CHECKING:
    from alembic.config import Config


def build_config(manifest: Manifest) -> Config:
    from alembic.config import Config

    config = Config(cmd_opts=Namespace(quiet=True, x=None))  # quiet: the tool prints, not Alembic
    config.set_main_option("script_location", _escape(manifest.script_location))
    config.set_main_option("path_separator", "newline")
    config.set_main_option(
        "version_locations", "\n".join(_escape(m.versions) for m in manifest.modules)
    )
    config.attributes["manifest"] = manifest
    return config


def _escape(path: Path) -> str:
    return str(path).replace("%", "%%")


INI_NAME = "alembic.ini"
_LOCATIONS_BLOCK = re.compile(r"^version_locations\s*=.*?(?=^\S|\Z)", re.MULTILINE | re.DOTALL)


def ini_path(manifest: Manifest) -> Path:
    return manifest.root / INI_NAME


def expected_locations(manifest: Manifest) -> list[str]:
    """Each module's versions directory, as alembic.ini spells it (relative to %(here)s)."""
    return [f"%(here)s/{manifest.relative(m.versions)}" for m in manifest.modules]


def read_locations(path: Path) -> list[str]:
    """The version_locations alembic.ini lists now (uninterpolated), one per line."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    raw = parser.get("alembic", "version_locations", fallback="")
    return [line.strip() for line in raw.splitlines() if line.strip()]


def in_step(manifest: Manifest) -> bool:
    path = ini_path(manifest)
    return path.is_file() and read_locations(path) == expected_locations(manifest)


def write_locations(manifest: Manifest) -> bool:
    """Rewrite alembic.ini's version_locations from the manifest; True when the file changed."""
    path = ini_path(manifest)
    text = path.read_text(encoding="utf-8")
    block = (
        "version_locations =\n"
        + "".join(f"    {loc}\n" for loc in expected_locations(manifest))
        + "\n"
    )
    new, count = _LOCATIONS_BLOCK.subn(lambda _: block, text, count=1)
    if count == 0:
        new = text.replace("[alembic]\n", "[alembic]\n" + block, 1)
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True
