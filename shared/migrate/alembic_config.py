"""The Alembic Config for the manifest, built in code: plain `alembic` reads alembic.ini, the
tool never does, and the database URL never enters a Config."""

from __future__ import annotations

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
