"""Database URLs as libpq users write them: parsed once, driven through asyncpg, shown masked.

`DatabaseURL.parse` accepts `postgresql://` (and `postgres://`, `postgresql+<driver>://`) URLs
with the libpq parameters asyncpg can honour. The authority ends at the first `/`, `?` or `#`
(`urllib.parse.urlsplit`, as libpq and asyncpg split it), so an `@` in the database name or the
query never moves the host; a password's `/`, `?` and `#` must be percent-encoded, as for
libpq. Whatever is wrong with a URL, the error never quotes the URL, its password, or any part
that could hold one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres:postgres@postgres:5432/postgres"

# libpq parameters, by what becomes of them
_SSL_PARAMS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslpassword",
    "sslnegotiation",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
)
_DSN_PARAMS = (*_SSL_PARAMS, "target_session_attrs", "passfile", "krbsrvname", "gsslib", "service")
_KEEPALIVES = {
    "keepalives_idle": "tcp_keepalives_idle",
    "keepalives_interval": "tcp_keepalives_interval",
    "keepalives_count": "tcp_keepalives_count",
}
_OTHER_PARAMS = (
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "connect_timeout",
    "application_name",
    "fallback_application_name",
    "options",
    "keepalives",
)
SUPPORTED_PARAMS = frozenset((*_DSN_PARAMS, *_KEEPALIVES, *_OTHER_PARAMS))
_UNSUPPORTED = {  # libpq knows them, asyncpg cannot honour them
    "channel_binding",
    "gssencmode",
    "requiressl",
    "requirepeer",
    "tcp_user_timeout",
    "replication",
    "load_balance_hosts",
    "gssdelegation",
    "require_auth",
    "sslcompression",
    "sslcertmode",
    "sslsni",
}
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\Z")
_IPV6 = re.compile(r"[0-9A-Fa-f:.%A-Za-z]+\Z")
_ADVICE = (
    "; if the password holds special characters, percent-encode them "
    "(@ as %40, / as %2F, ? as %3F, # as %23)"
)


class InvalidDatabaseURL(ValueError):
    """The URL cannot be used; the message never holds the URL or a part of it that might."""


@dataclass(frozen=True)
class DatabaseURL:
    """A PostgreSQL URL, parsed. `repr` and `str` never show the password."""

    hosts: tuple[tuple[str, int | None], ...]
    database: str | None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    params: tuple[tuple[str, str], ...] = ()
    source: str = field(default="--database-url", compare=False)

    @classmethod
    def parse(cls, raw: str, source: str = "--database-url") -> DatabaseURL:
        return _parse(raw, source)

    def __str__(self) -> str:
        return self.display()

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)

    def display(self) -> str:
        """host:port/database, for messages (a socket directory counts as host)."""
        hosts = ",".join(
            (f"[{h}]" if ":" in h else h) + (f":{p}" if p else ":5432") for h, p in self.hosts
        )
        return f"{hosts or 'localhost:5432'}/{self.database or ''}"

    def with_database(self, name: str) -> DatabaseURL:
        return replace(self, database=name)

    def with_user(self, user: str, password: str | None = None) -> DatabaseURL:
        return replace(self, user=user, password=password)

    def secret_string(self) -> str:
        """The whole URL with its password, percent-encoded: for a child process's environment
        only, never for output."""
        auth = ""
        if self.user is not None:
            auth = quote(self.user, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        hosts = ",".join(
            (f"[{h}]" if ":" in h else quote(h, safe="")) + (f":{p}" if p else "")
            for h, p in self.hosts
            if not h.startswith("/")
        )
        query = list(self.params)
        sockets = [h for h, _ in self.hosts if h.startswith("/")]
        if sockets:
            query.insert(0, ("host", ",".join(sockets)))
            ports = [str(p) for h, p in self.hosts if h.startswith("/") and p]
            if ports:
                query.insert(1, ("port", ",".join(ports)))
        tail = f"?{urlencode(query)}" if query else ""
        return f"postgresql://{auth}{hosts}/{quote(self.database or '', safe='')}{tail}"

    def keepalive_settings(self) -> dict[str, str]:
        """libpq's keepalives_* parameters as the server's tcp_keepalives_* settings (set after
        connecting: a pooler refuses them at startup, where libpq never sends them)."""
        values = {setting: self.param(key) for key, setting in _KEEPALIVES.items()}
        return {setting: value for setting, value in values.items() if value is not None}

    def connect_kwargs(self, server_settings: dict[str, str]) -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect`: credentials and hosts explicit, the SSL and
        other libpq parameters through a DSN without any secret in it."""
        settings = dict(server_settings)
        dsn_params = [(k, v) for k, v in self.params if k in _DSN_PARAMS]
        options = self.param("options")
        if options:
            settings["options"] = options
        name = self.param("application_name") or self.param("fallback_application_name")
        if name and "application_name" in settings:
            settings["application_name"] = f"{name}: {settings['application_name']}"[:63]
        kwargs: dict[str, Any] = {
            "dsn": "postgresql://" + (f"?{urlencode(dsn_params)}" if dsn_params else ""),
            "user": self.user,
            "password": self.password,
            "database": self.database,
            "server_settings": settings,
        }
        if self.hosts:
            kwargs["host"] = [h for h, _ in self.hosts]
            kwargs["port"] = [p or 5432 for _, p in self.hosts]
        timeout = self.param("connect_timeout")
        if timeout is not None and int(timeout) > 0:
            kwargs["timeout"] = max(int(timeout), 2)  # libpq treats 1 as 2
        return {k: v for k, v in kwargs.items() if v is not None}


def resolve_url(explicit: str | None, env_var: str = "DATABASE_URL") -> DatabaseURL:
    """The URL from `--database-url`, else the environment variable, else the seed's default."""
    if explicit:
        return DatabaseURL.parse(explicit, "--database-url")
    from_env = os.environ.get(env_var)
    if from_env:
        return DatabaseURL.parse(from_env, f"${env_var}")
    return DatabaseURL.parse(DEFAULT_DATABASE_URL, "the built-in default")


def _parse(raw: str, source: str) -> DatabaseURL:
    where = f"the database URL ({source})"
    text = raw.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise InvalidDatabaseURL(
            f"{where} cannot be parsed; expected postgresql://user:password@host:port/database"
        )
    backend = scheme.split("+", 1)[0].lower()
    if backend not in ("postgresql", "postgres"):
        shown = backend if re.fullmatch(r"[a-z0-9]{1,20}", backend) else "another scheme"
        raise InvalidDatabaseURL(f"{where} uses '{shown}', only postgresql is supported")
    if any(not c.isprintable() for c in rest):  # urlsplit would drop tabs and newlines
        raise InvalidDatabaseURL(f"{where} holds a control character; percent-encode it")
    if "#" in rest:  # libpq keeps '#' as text, URL parsers start a fragment there
        raise InvalidDatabaseURL(f"{where} holds a '#'; percent-encode it as %23")
    try:
        parts = urlsplit(text)
    except ValueError:  # unbalanced or invalid brackets
        raise InvalidDatabaseURL(f"{where}: a host in brackets must be an IPv6 address") from None
    # as in libpq and asyncpg, the authority ends at the first '/', '?' or '#'; a host never
    # holds '@', so the credentials end at its last '@' (libpq's first would leave one in it)
    userinfo, at, netloc = parts.netloc.rpartition("@")
    user = password = None
    if at:
        name, colon, secret = userinfo.partition(":")
        user = unquote(name) or None
        password = unquote(secret) if colon else None
    # an '@' past the authority: most likely a password with a '/' or '?' left unencoded
    unencoded = "@" in text[len(scheme) + 3 + len(parts.netloc) :]
    advice = _ADVICE if unencoded else ""
    hosts = _hosts(netloc, where, advice)
    params = _query(parts.query, where, advice)
    socket_hosts = dict(params).get("host")
    if socket_hosts:
        ports = _ports(dict(params).get("port", ""), where)
        names = [h for h in socket_hosts.split(",") if h]
        for host in names:
            if not (host.startswith("/") or _HOSTNAME.match(host)):
                raise InvalidDatabaseURL(
                    f"{where}: parameter 'host' must be host names or socket directories"
                )
        hosts = (
            tuple(
                (h, ports[i] if i < len(ports) else (ports[-1] if ports else None))
                for i, h in enumerate(names)
            )
            + hosts
        )
    elif "port" in dict(params) and hosts:
        port = _ports(dict(params)["port"], where)[0]
        hosts = tuple((h, p or port) for h, p in hosts)
    params = tuple((k, v) for k, v in params if k not in ("host", "port"))
    extras = dict(params)
    database = unquote(parts.path[1:]) or extras.get("dbname") or None
    user = user or extras.get("user") or None
    password = password if password is not None else extras.get("password")
    params = tuple((k, v) for k, v in params if k not in ("dbname", "user", "password"))
    return DatabaseURL(hosts, database, user, password, params, source)


def _query(query: str, where: str, advice: str = "") -> tuple[tuple[str, str], ...]:
    result: list[tuple[str, str]] = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        key, value = unquote(key.replace("+", " ")), unquote(value.replace("+", " "))
        if not key:
            continue
        shown = key if re.fullmatch(r"[A-Za-z0-9_]{1,40}", key) else "(unreadable)"
        if key in _UNSUPPORTED:
            raise InvalidDatabaseURL(
                f"{where}: parameter '{shown}' is not supported by the asyncpg driver; remove it"
            )
        if key not in SUPPORTED_PARAMS:
            raise InvalidDatabaseURL(
                f"{where} has an unknown parameter '{shown}'; supported: "
                + ", ".join(sorted(SUPPORTED_PARAMS - {"hostaddr", "keepalives"}))
                + advice
            )
        if key == "sslmode" and value not in SSL_MODES:
            raise InvalidDatabaseURL(f"{where}: sslmode must be one of {', '.join(SSL_MODES)}")
        if key in ("connect_timeout", *_KEEPALIVES) and not value.isdigit():
            raise InvalidDatabaseURL(f"{where}: {key} must be a whole number of seconds")
        if key == "hostaddr":
            key = "host"
        result.append((key, value))
    return tuple(result)


def _hosts(netloc: str, where: str, advice: str) -> tuple[tuple[str, int | None], ...]:
    """The authority's hosts and ports; `advice` ends an error where the URL suggests a
    password with special characters left unencoded."""
    hosts: list[tuple[str, int | None]] = []
    for item in netloc.split(",") if netloc else []:
        if item.startswith("["):
            host, bracket, port_text = item[1:].partition("]")
            if not bracket or not _IPV6.match(host) or (port_text and port_text[0] != ":"):
                raise InvalidDatabaseURL(f"{where}: a host in brackets must be an IPv6 address")
            port_text = port_text[1:]
        else:
            host, _, port_text = item.partition(":")
            host = unquote(host)
            if host and not _HOSTNAME.match(host):
                raise InvalidDatabaseURL(f"{where}: the host is not a valid host name{_ADVICE}")
        port = _ports(port_text, where, advice)[0] if port_text else None
        hosts.append((host or "localhost", port))
    return tuple(hosts)


def _ports(text: str, where: str, advice: str = "") -> list[int | None]:
    ports: list[int | None] = []
    for item in text.split(","):
        if not item:
            ports.append(None)
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise InvalidDatabaseURL(f"{where}: the port must be a number from 1 to 65535{advice}")
        ports.append(int(item))
    return ports
