"""The store: one database for every resource, through SQLAlchemy 2 (async)."""

from onestack.store.db import Store, database_url, open_store

__all__ = ["Store", "database_url", "open_store"]
