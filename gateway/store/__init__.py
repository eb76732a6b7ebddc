"""Durable storage behind one interface: :class:`Store` (SQLite now, PostgreSQL next)."""

from gateway.store.base import DestinationStats, MessageQuery, MessageRecord, Store

__all__ = ["Store", "MessageRecord", "MessageQuery", "DestinationStats", "open_store"]


def open_store(url: str, **options: object) -> Store:
    """A store from its connection string (``sqlite:///path`` or a bare path)."""
    from gateway.errors import ConfigError

    if url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("the PostgreSQL store is not available yet", field="store.url")
    if "://" in url and not url.startswith("sqlite:///"):
        raise ConfigError(f"unknown store scheme in {url!r}; use sqlite:///PATH", field="store.url")
    from gateway.store.sqlite import SqliteStore

    return SqliteStore(url, **options)  # type: ignore[arg-type]
