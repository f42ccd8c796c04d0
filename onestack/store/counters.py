"""Running totals for the dashboard: requests, queries and messages so far."""

from __future__ import annotations

from sqlalchemy import func, select

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
