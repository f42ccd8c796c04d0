"""Per-vhost request counts, kept in memory and added to the store as deltas."""

from __future__ import annotations

import logging

from onestack.store import Store
from onestack.web.vhost_table import StatsDelta, add_stats

logger = logging.getLogger(__name__)


class VhostStats:
    """Counts since the last flush, by vhost id.

    Each vhost's ``StatsDelta`` lives as long as the worker: a flush copies
    and zeroes it, so that the request path can keep a reference to it and
    count with plain attribute additions.
    """

    def __init__(self) -> None:
        self.deltas: dict[int, StatsDelta] = {}

    def delta_for(self, vhost_id: int) -> StatsDelta:
        """Return the delta a request adds to (created on first use)."""
        delta = self.deltas.get(vhost_id)
        if delta is None:
            delta = self.deltas[vhost_id] = StatsDelta()
        return delta

    def pending(self) -> bool:
        """Tell whether any request was counted since the last flush."""
        return any(delta.requests for delta in self.deltas.values())

    def take(self) -> dict[int, StatsDelta]:
        """Return copies of the non-zero deltas and zero them."""
        copies: dict[int, StatsDelta] = {}
        for vhost_id, delta in self.deltas.items():
            if not delta.requests:
                continue
            copies[vhost_id] = StatsDelta(
                delta.requests,
                delta.bytes_served,
                delta.response_time_ms,
                delta.last_request,
            )
            delta.requests = 0
            delta.bytes_served = 0
            delta.response_time_ms = 0.0
        return copies

    async def flush(self, store: Store) -> None:
        """Add the deltas to ``vhost_stats``; on failure keep them for next time."""
        pending = self.take()
        if not pending:
            return
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
