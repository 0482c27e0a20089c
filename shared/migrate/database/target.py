"""Where a command points: the manifest, and the database URL as given (or not)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from shared.db.url import DatabaseURL, InvalidDatabaseURL, resolve_url
from shared.migrate.errors import ConfigError
from shared.migrate.manifest import Manifest


@dataclass(frozen=True)
class Target:
    """Where the command points: the manifest and the database URL as given (or not)."""

    manifest: Manifest
    database_url: str | None = None

    @property
    def url(self) -> DatabaseURL:
        try:
            return resolve_url(self.database_url, self.manifest.settings.database_url_env)
        except InvalidDatabaseURL as exc:
            raise ConfigError(str(exc)) from None

    def shadow_server(self, shadow_url: str | None) -> DatabaseURL:
        """Where shadow databases go: --shadow-url, else $SHADOW_DATABASE_URL, else the
        database URL's server."""
        env = self.manifest.settings.shadow_database_url_env
        try:
            if shadow_url:
                return DatabaseURL.parse(shadow_url, "--shadow-url")
            if os.environ.get(env):
                return DatabaseURL.parse(os.environ[env], f"${env}")
        except InvalidDatabaseURL as exc:
            raise ConfigError(str(exc)) from None
        return self.url
