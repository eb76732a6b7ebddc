"""Durable storage behind one interface: :class:`Store` (embedded SQLite, or PostgreSQL for several nodes)."""

from typing import Any

from gateway.store.base import DestinationStats, MessageQuery, MessageRecord, Store

__all__ = ["Store", "MessageRecord", "MessageQuery", "DestinationStats", "open_store", "store_from_settings"]

_POSTGRES = ("postgres://", "postgresql://")


def open_store(url: str, **options: object) -> Store:
    """A store from its connection string (``sqlite:///path``, a bare path, or ``postgresql://...``)."""
    from gateway.errors import ConfigError

    if url.startswith(_POSTGRES):
        from gateway.store.postgres import PostgresStore

        pg_options = {
            k: v
            for k, v in options.items()
            if k in ("pool_size", "writers", "max_batch", "connect_timeout", "node_name", "node_timeout", "journal")
        }
        return PostgresStore(url, **pg_options)  # type: ignore[arg-type]
    if "://" in url and not url.startswith("sqlite:///"):
        raise ConfigError(f"unknown store scheme in {url!r}; use sqlite:///PATH or postgresql://...", field="store.url")
    from gateway.store.sqlite import SqliteStore

    return SqliteStore(url, **options)  # type: ignore[arg-type]


def store_from_settings(settings: Any) -> Store:
    """The store ``[store] kind`` selects: ``"sqlite"`` (on ``url``) or ``"postgresql"`` (on ``dsn``).

    ``kind`` alone decides; a connection string of the other kind is a :class:`~gateway.errors.ConfigError`
    (:class:`~gateway.config.StoreSettings` already refuses one at load).
    """
    from gateway.errors import ConfigError

    if settings.kind == "postgresql":
        from gateway.store.postgres import PostgresStore

        dsn = settings.dsn
        if not dsn:
            raise ConfigError('[store] kind = "postgresql" needs dsn = "postgresql://..."', field="store.dsn")
        if not str(dsn).startswith(_POSTGRES):
            raise ConfigError("store.dsn must be a postgresql:// connection string", field="store.dsn")
        return PostgresStore(
            str(dsn),
            max_batch=min(settings.max_batch, 256),
            pool_size=settings.pool_size,
            node_timeout=settings.node_timeout,
            journal=settings.journal,
        )
    url = str(settings.url)
    if "://" in url and not url.startswith("sqlite:///"):
        raise ConfigError(f'[store] kind = "sqlite" needs url = "sqlite:///PATH", not {url!r}', field="store.url")
    from gateway.store.sqlite import SqliteStore

    return SqliteStore(
        url,
        synchronous=settings.synchronous,
        max_batch=settings.max_batch,
        min_free_bytes=settings.min_free_bytes,
        integrity_interval=settings.integrity_interval,
    )
