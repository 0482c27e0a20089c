"""The one declarative Base every service's models share, and database URL helpers.

`Base` and `metadata` load SQLAlchemy's ORM on first use, so the URL and connection helpers
stay quick to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.db.base import Base, metadata

__all__ = ["Base", "metadata"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from shared.db import base

        return getattr(base, name)
    raise AttributeError(f"module 'shared.db' has no attribute {name!r}")
