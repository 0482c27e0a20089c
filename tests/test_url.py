"""The database URL's authority split as libpq and asyncpg split it: the host part ends at the
first `/`, `?` or `#`, so an `@` in the query string never moves the host (and the password
with it). Whatever is wrong, the error never quotes the URL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.db.url import DatabaseURL, InvalidDatabaseURL
from tests.conftest import Project


def with_query(url: DatabaseURL, raw: str) -> str:
    """The URL with `raw` appended to its query string as typed, not percent-encoded."""
    text = url.secret_string()
    return text + ("&" if "?" in text else "?") + raw


@pytest.mark.parametrize("password", [None, "Sup3r-s3cret"])
def test_an_at_in_the_query_string_keeps_the_host(project: Project, password: str | None) -> None:
    parsed = DatabaseURL.parse(project.database_url)
    url = with_query(replace(parsed, password=password), "application_name=deploy@eu")
    result = project.migrate("status", env={"DATABASE_URL": url})
    assert result.code == 0, result.err
    assert "not started" in result.out
    assert "s3cret" not in result.out + result.err


@pytest.mark.parametrize(
    ("url", "user", "password", "hosts", "database"),
    [
        (
            "postgresql://app:s3cret@db.example.com:6432/app?application_name=deploy@eu",
            "app",
            "s3cret",
            (("db.example.com", 6432),),
            "app",
        ),
        (
            "postgresql://app@db.example.com/app?application_name=deploy@eu",
            "app",
            None,
            (("db.example.com", None),),
            "app",
        ),
        (
            "postgresql://db.example.com/app?application_name=deploy@eu",
            None,
            None,
            (("db.example.com", None),),
            "app",
        ),
        (  # no path: the query still ends the authority
            "postgresql://app:s3cret@db.example.com?application_name=deploy@eu",
            "app",
            "s3cret",
            (("db.example.com", None),),
            None,
        ),
        (  # an unencoded '@' or ':' in the password: the authority's last '@' ends it
            "postgresql://app:Tr0ub@d:or@db.example.com/app?application_name=deploy@eu",
            "app",
            "Tr0ub@d:or",
            (("db.example.com", None),),
            "app",
        ),
        (
            "postgresql://app:a%2Fb%3Fc%23d@db1:5433,db2/app%40eu",
            "app",
            "a/b?c#d",
            (("db1", 5433), ("db2", None)),
            "app@eu",
        ),
    ],
)
def test_the_authority_ends_where_libpq_ends_it(
    url: str,
    user: str | None,
    password: str | None,
    hosts: tuple[tuple[str, int | None], ...],
    database: str | None,
) -> None:
    parsed = DatabaseURL.parse(url)
    assert (parsed.user, parsed.password, parsed.hosts, parsed.database) == (
        user,
        password,
        hosts,
        database,
    )
    if "application_name" in url:
        assert parsed.param("application_name") == "deploy@eu"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret/x@db.example.com/app",  # libpq: host 'app', port 's3cret'
        "postgresql://app:s3cret?x@db.example.com/app",
        "postgresql://app:s3cret#x@db.example.com/app",
        "postgresql://app@db.example.com/app#s3cret",
        "postgresql://app:s3cret\t@db.example.com/app",
    ],
)
def test_a_special_character_left_unencoded_is_refused(url: str) -> None:
    with pytest.raises(InvalidDatabaseURL) as error:
        DatabaseURL.parse(url)
    message = str(error.value)
    assert "percent-encode" in message, message
    assert "s3cret" not in message and "example" not in message and "\n" not in message
