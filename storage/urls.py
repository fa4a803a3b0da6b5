"""Storage URLs: the one string a user types to say where trials live.

Users type these URLs on the command line and in config files, so this module is strict about
what it accepts (a typo should fail here, with a hint, not deep inside SQLAlchemy) and careful
about what it prints (a URL's password must never reach a log line, an error or a table).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from nas.errors import InputError

DEFAULT_STORAGE_URL = "sqlite:///nas.db"

# psycopg 3 is the PostgreSQL driver we ship; SQLAlchemy's bare "postgresql://" means psycopg2.
POSTGRES_DRIVERNAME = "postgresql+psycopg"

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_ACCEPTED = (
    "accepted: sqlite:///relative/path.db, sqlite:////absolute/path.db, a file path ending in .db, "
    "or postgresql+psycopg://user:password@host:5432/dbname"
)
_MASK = "***"

# Fallback for strings SQLAlchemy cannot parse: everything between "user:" and the last "@" is
# treated as the password. Over-masking an odd URL is harmless; leaking a password is not.
_USERINFO_PASSWORD = re.compile(r"^(?P<head>[^:/?#\s]+://[^:/@?#]*:)(?P<password>.*)@")
_SCHEME = re.compile(r"^[A-Za-z][\w+.-]*:")
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)[^&]*", re.IGNORECASE)


def without_password(url: str) -> tuple[str, bool]:
    """``url`` with its password removed (user-info and ``?password=``), and whether it had one.

    For commands printed to be run again: libpq takes the password from ``PGPASSWORD`` (or
    ``~/.pgpass``) when the URL has none, so the command works without showing the secret.
    """
    masked = mask_password(url)
    if masked == url:
        return url, False
    parsed = make_url(url)
    query = {k: v for k, v in parsed.query.items() if k.lower() != "password"}
    # `URL.set(password=None)` keeps the password (None means "unchanged"); URL is a named tuple.
    bare = parsed.set(query=query)._replace(password=None)
    return bare.render_as_string(hide_password=False), True


def mask_password(url: str | os.PathLike[str]) -> str:
    """Return ``url`` with its password replaced by ``***``, fit for messages and logs.

    Both places a password can hide are masked: the user-info part and a libpq-style
    ``?password=`` query parameter. Strings that do not parse as URLs are masked too.
    """
    text = os.fspath(url)
    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError):
        return _mask_unparsed(text)
    if parsed.host is not None and "@" in parsed.host:
        # An unescaped "@" in the password makes SQLAlchemy split the password in two.
        return _mask_unparsed(text)
    if parsed.password is None and not _query_has_password(parsed):
        return text  # Rendering would re-escape SQLite paths such as ":memory:"; keep as typed.
    if _query_has_password(parsed):
        query = {k: (_MASK if k.lower() == "password" else v) for k, v in parsed.query.items()}
        parsed = parsed.set(query=query)
    # render_as_string percent-encodes the masked query value; show it as typed.
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", _MASK)


def normalize_storage_url(url: str | os.PathLike[str]) -> str:
    """Return the SQLAlchemy URL that :func:`~nas.storage.open_storage` should connect to.

    A bare path ending in ``.db`` means a SQLite file, because that is what people type.
    ``postgresql://`` and ``postgres://`` are rewritten to ``postgresql+psycopg://``, because
    SQLAlchemy would otherwise look for psycopg2, which is not installed.

    Raises:
        InputError: The URL is malformed or names a backend or driver we do not support.
    """
    text = os.fspath(url).strip()
    if not text:
        raise InputError(f"empty storage URL; {_ACCEPTED}")
    if "://" not in text:
        if text.lower().endswith(_SQLITE_SUFFIXES) and not _SCHEME.match(text):
            return "sqlite:///" + os.path.expanduser(text)
        raise InputError(f"malformed storage URL {mask_password(text)!r}; {_ACCEPTED}")

    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError):
        raise InputError(f"malformed storage URL {mask_password(text)!r}; {_ACCEPTED}") from None

    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise InputError(f"unsupported SQLite driver in {mask_password(text)!r}; {_ACCEPTED}")
        if parsed.host or not parsed.database:
            raise InputError(
                f"storage URL {mask_password(text)!r} names no database file (note the three "
                f"slashes); {_ACCEPTED}"
            )
        return text
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise InputError(
                f"unsupported PostgreSQL driver {driver!r} in {mask_password(text)!r}; "
                f"psycopg 3 is installed, so use {POSTGRES_DRIVERNAME}://user:password@host/dbname"
            )
        if parsed.host is not None and "@" in parsed.host:
            raise InputError(
                f"malformed storage URL {mask_password(text)!r}: percent-encode special "
                "characters in the user name and password ('@' is %40, ':' is %3A)"
            )
        return parsed.set(drivername=POSTGRES_DRIVERNAME).render_as_string(hide_password=False)
    raise InputError(
        f"unsupported storage URL scheme {parsed.drivername!r} in {mask_password(text)!r}; "
        f"{_ACCEPTED}"
    )


def sqlite_path(url: str | os.PathLike[str]) -> Path | None:
    """Return the database file of a SQLite URL, or ``None`` for in-memory and server databases.

    Artifacts and the WAL setup both need the file itself, not the URL.
    """
    parsed = make_url(normalize_storage_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _query_has_password(parsed: URL) -> bool:
    return any(key.lower() == "password" for key in parsed.query)


def _mask_unparsed(text: str) -> str:
    text = _USERINFO_PASSWORD.sub(lambda m: m.group("head") + _MASK + "@", text)
    return _QUERY_PASSWORD.sub(lambda m: m.group("key") + _MASK, text)
