"""`migrate module add`: the files of a new module, and its lines in the manifest and
alembic.ini. Either all of it is written, or (on any failure) none of it stays."""

from __future__ import annotations

import shutil
from pathlib import Path

from shared.migrate.errors import ConfigError, shown
from shared.migrate.history.config import ini_path, write_locations
from shared.migrate.manifest import NAME_LIMIT, NAME_PATTERN, Manifest, load_manifest

MODELS_TEMPLATE = '''"""The {name} service's tables."""

from __future__ import annotations

from shared.db import Base  # noqa: F401  (define models on this Base)
'''


def add_module(manifest: Manifest, name: str, depends_on: list[str]) -> Manifest:
    """Create services/NAME (package, models.py, migrations/), list it in the manifest and
    alembic.ini; return the new manifest."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"module name '{shown(name)}' must match [a-z][a-z0-9_]* (lowercase letters, digits, "
            f"underscores; at most {NAME_LIMIT} characters)"
        )
    for module in manifest.modules:
        if name in (module.name, module.branch):
            raise ConfigError(f"module '{name}' is already in migrations.yaml")
    names = [manifest.module(dep).name for dep in depends_on]  # a label names its module
    package = manifest.root / "services" / name
    if package.exists():
        raise ConfigError(
            f"services/{name} already exists; add it to migrations.yaml by hand or pick a name"
        )
    original = manifest.path.read_text(encoding="utf-8")
    ini = ini_path(manifest)
    ini_text = ini.read_text(encoding="utf-8") if ini.is_file() else None
    entry = f"  - name: {name}\n" + (
        f"    depends_on: [{', '.join(dict.fromkeys(names))}]\n" if names else ""
    )
    try:
        _create_package(package, name)
        manifest.path.write_text(original.rstrip("\n") + "\n" + entry, encoding="utf-8")
        try:
            updated = load_manifest(manifest.path)
        except ConfigError as exc:
            raise ConfigError(
                f"could not add module '{name}' to {manifest.path.name} ({exc}); its modules "
                "list is not one this command can extend: add the entry by hand"
            ) from exc
        write_locations(updated)
    except BaseException:
        shutil.rmtree(package, ignore_errors=True)
        manifest.path.write_text(original, encoding="utf-8")
        if ini_text is not None:
            ini.write_text(ini_text, encoding="utf-8")
        raise
    return updated


def _create_package(package: Path, name: str) -> None:
    (package / "migrations").mkdir(parents=True)
    (package / "migrations" / ".gitkeep").write_text("")
    (package / "__init__.py").write_text(f'"""The {name} service."""\n')
    (package / "models.py").write_text(MODELS_TEMPLATE.format(name=name))
