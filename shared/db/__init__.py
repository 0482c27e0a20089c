"""The one declarative Base every service's models share, and database URL helpers."""

from shared.db.base import Base, metadata

__all__ = ["Base", "metadata"]
