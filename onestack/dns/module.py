"""The dns module: authoritative answers for the stored zones on UDP and TCP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar

from onestack.config import DnsConfig
from onestack.dns import records, transfer
from onestack.dns.answers import CompiledZone, ZoneData, ZoneTable
from onestack.dns.records import Record
from onestack.dns.responder import Responder
from onestack.dns.server import TcpLimits, UdpListener, start_listeners
from onestack.dns.zonefile import Soa
from onestack.events import Event
from onestack.modules import Module, WorkerContext
from onestack.store import dns as store_dns
from onestack.store.counters import add_counters
from onestack.store.dns import RecordRow, ZoneRow

logger = logging.getLogger(__name__)

ZONE_EVENTS = frozenset(
    {
        "dnsZoneCreated",
        "dnsZoneUpdated",
        "dnsZoneDeleted",
        "dnsRecordAdded",
        "dnsRecordUpdated",
        "dnsRecordDeleted",
    }
)
# Worker 0 waits this long after its own reload before it sends NOTIFY, so
# that every worker (each reloads within a second) answers the secondary's
# SOA query with the new serial.
NOTIFY_DELAY = 1.0
# How often a worker adds its query count to the dashboard total.
COUNTER_FLUSH_SECONDS = 2.0


def zone_data(zone: ZoneRow, zone_records: list[RecordRow]) -> ZoneData:
    soa = Soa(
        zone.primary_ns,
        zone.email,
        zone.serial,
        zone.refresh,
        zone.retry,
        zone.expire,
        zone.minimum,
        zone.ttl,
    )
    return ZoneData(
        name=zone.name,
        ttl=zone.ttl,
        soa=soa,
        records=[
            Record(r.name, r.type, r.data, r.ttl, r.priority, r.id)
            for r in zone_records
        ],
        allow_transfer=zone.allow_transfer,
        also_notify=zone.also_notify,
    )


class DnsModule(Module):
    """Serves every enabled zone; reloads a zone when its events arrive."""

    name: ClassVar[str] = "dns"
    config_model: ClassVar[type[DnsConfig]] = DnsConfig

    def __init__(self, config: DnsConfig, context: WorkerContext) -> None:
        super().__init__(config, context)
        self.dns_config = config
        self.zones = ZoneTable()
        self.responder = Responder(self.zones, config.maxCachedAnswers)
        self.responder.transfer = transfer.Transfers(self.zones)
        self.udp: UdpListener | None = None
        self.tcp: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.reload_lock = asyncio.Lock()
        self._counting: asyncio.Task[None] | None = None
        self._queries_stored = 0

    @property
    def sends_notify(self) -> bool:
        # One worker sends NOTIFY, so that secondaries get it once: worker 0
        # sends it after it has loaded the change itself. The admin process
        # does not send it because it cannot tell whether the dns module runs
        # or when the workers have loaded the change.
        return self.context.worker_index == 0

    async def start(self) -> None:
        await self.reload_all()
        limits = TcpLimits(
            self.dns_config.maxTcpConnections, self.dns_config.tcpIdleTimeout
        )
        self.udp, self.tcp = await start_listeners(
            self.responder,
            self.dns_config.host,
            self.dns_config.port,
            limits,
            self.dns_config.workers,
        )
        if self.context.events is not None:
            self.context.events.on_reconnect = self.reload_all
        logger.info(
            "dns listening on %s:%d (UDP and TCP), %d zones",
            self.dns_config.host,
            self.dns_config.port,
            len(self.zones.by_name),
        )
        if self.sends_notify:
            for zone in self.zones.by_name.values():
                self._notify(zone)
        self._counting = asyncio.create_task(self._count_queries())

    async def _count_queries(self) -> None:
        """Add this worker's query count to the store's dnsQueries total."""
        while True:
            await asyncio.sleep(COUNTER_FLUSH_SECONDS)
            await self._flush_query_count()

    async def _flush_query_count(self) -> None:
        delta = self.responder.queries - self._queries_stored
        if not delta:
            return
        try:
            async with self.context.store.engine.begin() as conn:
                await add_counters(conn, {"dnsQueries": delta})
        except Exception:
            logger.exception("storing the DNS query count failed")
            return
        self._queries_stored += delta

    async def stop(self) -> None:
        counting, self._counting = self._counting, None
        if counting is not None:
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counting
            await self._flush_query_count()
        if self.udp is not None:
            self.udp.close()
            self.udp = None
        if self.tcp is not None:
            self.tcp.close()
            await self.tcp.wait_closed()
            self.tcp = None
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def on_event(self, event: Event) -> None:
        if event["type"] not in ZONE_EVENTS:
            return
        name = event["data"].get("zone") or event["data"].get("name")
        if isinstance(name, str):
            await self.reload_zone(name)

    async def reload_all(self) -> None:
        """Load every enabled zone from the store (at start and on reconnect)."""
        async with self.reload_lock:
            loaded = await store_dns.list_zones(self.context.store)
            fresh = ZoneTable()
            for zone, zone_records in loaded:
                compiled = self._compile(zone, zone_records)
                if compiled is not None:
                    fresh.put(compiled)
            self.zones.zones, self.zones.by_name = fresh.zones, fresh.by_name
            self.responder.clear()
        logger.info("dns zones loaded: %d", len(self.zones.by_name))

    async def reload_zone(self, name: str) -> None:
        """Recompile one zone from the store, or drop it when gone or disabled."""
        async with self.reload_lock:
            found = await store_dns.get_zone(self.context.store, name)
            old = self.zones.get(name)
            compiled = self._compile(*found) if found is not None else None
            if compiled is None:
                self.zones.remove(name)
            else:
                self.zones.put(compiled)
            self.responder.clear()
        logger.info(
            "dns zone %s reloaded: %s",
            name,
            f"serial {compiled.serial}" if compiled is not None else "not served",
        )
        if compiled is not None and self.sends_notify:
            if old is None or old.serial != compiled.serial:
                self._notify(compiled)

    def _compile(
        self, zone: ZoneRow, zone_records: list[RecordRow]
    ) -> CompiledZone | None:
        if not zone.enabled:
            return None
        try:
            return CompiledZone(zone_data(zone, zone_records))
        except (records.RecordError, ValueError):
            logger.exception("zone %s has stored data that does not compile", zone.name)
            return None

    def _notify(self, zone: CompiledZone) -> None:
        if not zone.also_notify:
            return
        task = asyncio.get_running_loop().create_task(
            transfer.notify_all(zone, NOTIFY_DELAY)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
