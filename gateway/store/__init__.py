"""Durable storage behind one interface: :class:`Store` (embedded SQLite, or PostgreSQL for several nodes)."""

from typing import Any

from gateway.store.base import DestinationStats, MessageQuery, MessageRecord, Store

__all__ = ["Store", "MessageRecord", "MessageQuery", "DestinationStats", "open_store", "store_from_settings"]


def open_store(url: str, **options: object) -> Store:
    """A store from its connection string (``sqlite:///path``, a bare path, or ``postgresql://...``)."""
    from gateway.errors import ConfigError

    if url.startswith(("postgres://", "postgresql://")):
        from gateway.store.postgres import PostgresStore

        pg_options = {
            k: v
            for k, v in options.items()
            if k in ("pool_size", "writers", "max_batch", "connect_timeout", "node_name")
        }
        return PostgresStore(url, **pg_options)  # type: ignore[arg-type]
    if "://" in url and not url.startswith("sqlite:///"):
        raise ConfigError(f"unknown store scheme in {url!r}; use sqlite:///PATH or postgresql://...", field="store.url")
    from gateway.store.sqlite import SqliteStore

    return SqliteStore(url, **options)  # type: ignore[arg-type]


def store_from_settings(settings: Any) -> Store:
    """The store a ``[store]`` section selects: ``kind = "sqlite"`` (``url``) or ``kind = "postgresql"`` (``dsn``)."""
    from gateway.errors import ConfigError

    kind = getattr(settings, "kind", "sqlite")
    if kind == "postgresql":
        dsn = getattr(settings, "dsn", None)
        if not dsn:
            raise ConfigError('[store] kind = "postgresql" needs dsn = "postgresql://..."', field="store.dsn")
        if not str(dsn).startswith(("postgres://", "postgresql://")):
            raise ConfigError("store.dsn must be a postgresql:// connection string", field="store.dsn")
        return open_store(dsn, max_batch=min(settings.max_batch, 256), pool_size=getattr(settings, "pool_size", 10))
    return open_store(settings.url, synchronous=settings.synchronous, max_batch=settings.max_batch)
