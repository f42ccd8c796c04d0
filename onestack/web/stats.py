"""Per-vhost request counts, kept in memory and added to the store as deltas."""

from __future__ import annotations

import logging

from onestack.store import Store
from onestack.web.vhost_table import StatsDelta, add_stats

logger = logging.getLogger(__name__)


class VhostStats:
    """Counts since the last flush, by vhost id."""

    def __init__(self) -> None:
        self.deltas: dict[int, StatsDelta] = {}

    def delta_for(self, vhost_id: int) -> StatsDelta:
        """Return the delta a request adds to (created on first use)."""
        delta = self.deltas.get(vhost_id)
        if delta is None:
            delta = self.deltas[vhost_id] = StatsDelta()
        return delta

    async def flush(self, store: Store) -> None:
        """Add the deltas to ``vhost_stats``; on failure keep them for next time."""
        if not self.deltas:
            return
        pending, self.deltas = self.deltas, {}
        try:
            await add_stats(store, pending)
        except Exception:
            logger.exception("writing vhost stats failed; keeping them for retry")
            for vhost_id, delta in pending.items():
                current = self.delta_for(vhost_id)
                current.requests += delta.requests
                current.bytes_served += delta.bytes_served
                current.response_time_ms += delta.response_time_ms
                current.last_request = max(current.last_request, delta.last_request)
