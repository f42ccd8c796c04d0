"""Running totals for the dashboard: requests, queries and messages so far."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from onestack.store import Store
from onestack.store.tables import counters, vhost_stats


async def traffic_totals(store: Store) -> dict[str, int]:
    """Return the totals across every worker, as last flushed to the store.

    httpRequests sums the vhosts' stats, so it drops when a vhost is deleted;
    the other totals only grow.
    """
    async with store.engine.connect() as conn:
        http = (await conn.execute(select(func.sum(vhost_stats.c.requests)))).scalar()
        rows = await conn.execute(select(counters.c.name, counters.c.value))
        named = {name: int(value) for name, value in rows}
    return {
        "httpRequests": int(http or 0),
        "dnsQueries": named.get("dnsQueries", 0),
        "mailMessages": named.get("messagesReceived", 0) + named.get("messagesSent", 0),
    }


async def add_counters(conn: AsyncConnection, increments: dict[str, int]) -> None:
    """Add to named counters inside the caller's transaction (upsert)."""
    dialect = conn.dialect.name
    for name, amount in sorted(increments.items()):
        if not amount:
            continue
        if dialect == "postgresql":
            statement: Any = postgresql.insert(counters)
        else:
            statement = sqlite.insert(counters)
        statement = statement.values(name=name, value=amount).on_conflict_do_update(
            index_elements=[counters.c.name],
            set_={"value": counters.c.value + amount},
        )
        await conn.execute(statement)
