"""The vhost table as the web modules see it, and the stats they write back.

The web modules read the ``vhosts`` table directly and keep it in memory,
keyed by every hostname of each vhost. They add their request counts to
``vhost_stats`` with an UPSERT that adds, so every worker process's counts
end up in the same row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite

from onestack.store import Store
from onestack.store.tables import vhost_stats, vhosts

# Host header values seen, memoised with their vhost; cleared when it grows
# past this, so random Host headers cannot grow memory.
MAX_MEMOISED_HOSTS = 4096


@dataclass(frozen=True)
class Vhost:
    """One website: its names, its resolved document root and its flags."""

    id: int
    domain: str
    names: tuple[str, ...]
    document_root: str
    enabled: bool
    ssl: bool
    redirect_to_https: bool


@dataclass
class StatsDelta:
    """Counts added since the last flush, for one vhost."""

    requests: int = 0
    bytes_served: int = 0
    response_time_ms: float = 0.0
    last_request: float = 0.0  # Unix time


def normalize_host(host: bytes) -> str | None:
    """Turn a Host header value into a lowercase hostname without port or dot.

    Returns None when the value is not a plausible hostname or address.
    """
    try:
        text = host.decode("ascii").strip().lower()
    except UnicodeDecodeError:
        return None
    if text.startswith("["):
        # An IPv6 literal, "[::1]:8080" (RFC 3986 section 3.2.2).
        end = text.find("]")
        if end < 0:
            return None
        return text[: end + 1]
    name, _, port = text.partition(":")
    if port and not port.isdigit():
        return None
    name = name.rstrip(".")
    if not name or len(name) > 253:
        return None
    return name


@dataclass
class VhostTable:
    """Every enabled vhost by each of its hostnames."""

    by_name: dict[str, Vhost] = field(default_factory=dict)
    all: list[Vhost] = field(default_factory=list)
    _by_header: dict[bytes, Vhost | None] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: list[Vhost]) -> VhostTable:
        table = cls(all=rows)
        for vhost in rows:
            if not vhost.enabled:
                continue
            for name in vhost.names:
                table.by_name[name] = vhost
        return table

    def get(self, host: bytes) -> Vhost | None:
        """Return the enabled vhost for a raw Host header value, or None."""
        try:
            return self._by_header[host]
        except KeyError:
            pass
        name = normalize_host(host)
        vhost = self.by_name.get(name) if name is not None else None
        if len(self._by_header) >= MAX_MEMOISED_HOSTS:
            self._by_header.clear()
        self._by_header[host] = vhost
        return vhost


async def load_vhosts(store: Store) -> list[Vhost]:
    """Read every vhost (enabled or not) from the store."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(vhosts))).mappings().all()
    result = []
    for row in rows:
        domain = row["domain"].lower()
        aliases = [str(alias).lower() for alias in row["aliases"] or []]
        result.append(
            Vhost(
                id=row["id"],
                domain=domain,
                names=(domain, *aliases),
                document_root=os.path.realpath(row["document_root"]),
                enabled=bool(row["enabled"]),
                ssl=bool(row["ssl"]),
                redirect_to_https=bool(row["redirect_to_https"]),
            )
        )
    return result


async def add_stats(store: Store, deltas: dict[int, StatsDelta]) -> None:
    """Add per-vhost deltas to ``vhost_stats`` in one transaction.

    Vhosts deleted since their requests were counted are skipped.
    """
    if not deltas:
        return
    insert = sqlite.insert if store.is_sqlite else postgresql.insert
    async with store.engine.begin() as conn:
        existing = set(
            (
                await conn.execute(
                    select(vhosts.c.id).where(vhosts.c.id.in_(list(deltas)))
                )
            ).scalars()
        )
        for vhost_id, delta in deltas.items():
            if vhost_id not in existing:
                continue
            last = datetime.fromtimestamp(delta.last_request, UTC)
            statement = insert(vhost_stats).values(
                vhost_id=vhost_id,
                requests=delta.requests,
                bytes_served=delta.bytes_served,
                response_time_total_ms=delta.response_time_ms,
                last_request=last,
            )
            excluded = statement.excluded
            statement = statement.on_conflict_do_update(
                index_elements=[vhost_stats.c.vhost_id],
                set_={
                    "requests": vhost_stats.c.requests + excluded.requests,
                    "bytes_served": vhost_stats.c.bytes_served + excluded.bytes_served,
                    "response_time_total_ms": vhost_stats.c.response_time_total_ms
                    + excluded.response_time_total_ms,
                    "last_request": case(
                        (vhost_stats.c.last_request.is_(None), excluded.last_request),
                        (
                            excluded.last_request > vhost_stats.c.last_request,
                            excluded.last_request,
                        ),
                        else_=vhost_stats.c.last_request,
                    ),
                },
            )
            await conn.execute(statement)
