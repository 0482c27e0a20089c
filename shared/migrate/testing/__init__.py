"""Testing migrations with pytest: the plugin (`plugin`, the `pytest11` entry point), the
`Migrator` its fixtures hand out (`migrator`), and the standard tests per module (`builtin`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.migrate.testing.migrator import Migrator

__all__ = ["Migrator"]


def __getattr__(name: str) -> Any:
    if name == "Migrator":  # imported on use: the plugin loads in every pytest run
        from shared.migrate.testing.migrator import Migrator

        return Migrator
    raise AttributeError(f"module 'shared.migrate.testing' has no attribute {name!r}")
