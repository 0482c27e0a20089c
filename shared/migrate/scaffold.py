"""`migrate module add`: the files of a new module, and its line in the manifest."""

from __future__ import annotations

from pathlib import Path

from shared.migrate.errors import ConfigError
from shared.migrate.inifile import write_locations
from shared.migrate.manifest import NAME_PATTERN, Manifest, load_manifest

MODELS_TEMPLATE = '''"""The {name} service's tables."""

from __future__ import annotations

from shared.db import Base  # noqa: F401  (define models on this Base)
'''


def add_module(manifest: Manifest, name: str, depends_on: list[str]) -> Manifest:
    """Create services/NAME (package, models.py, migrations/), list it in the manifest and
    alembic.ini; return the new manifest. Nothing is written when a check fails."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"module name {name!r} must match [a-z][a-z0-9_]* (lowercase letters, digits, _)"
        )
    for module in manifest.modules:
        if name in (module.name, module.branch):
            raise ConfigError(f"module '{name}' is already in migrations.yaml")
    for dep in depends_on:
        manifest.module(dep)  # unknown: UnknownModule
    package = manifest.root / "services" / name
    if package.exists():
        raise ConfigError(
            f"services/{name} already exists; add it to migrations.yaml by hand or pick a name"
        )
    original = manifest.path.read_text(encoding="utf-8")
    entry = f"  - name: {name}\n" + (
        f"    depends_on: [{', '.join(depends_on)}]\n" if depends_on else ""
    )
    _create_package(package, name)
    manifest.path.write_text(original.rstrip("\n") + "\n" + entry, encoding="utf-8")
    try:
        updated = load_manifest(manifest.path)
    except ConfigError:
        manifest.path.write_text(original, encoding="utf-8")
        raise
    write_locations(updated)
    return updated


def _create_package(package: Path, name: str) -> None:
    (package / "migrations").mkdir(parents=True)
    (package / "migrations" / ".gitkeep").write_text("")
    (package / "__init__.py").write_text(f'"""The {name} service."""\n')
    (package / "models.py").write_text(MODELS_TEMPLATE.format(name=name))
