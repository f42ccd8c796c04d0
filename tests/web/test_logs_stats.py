"""Access logs in the combined format, their rotation, and vhost stats."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from onestack.store import Store
from onestack.store.tables import vhost_stats
from onestack.web.accesslog import AccessEntry, AccessLog, format_entries
from onestack.web.vhost_table import StatsDelta, add_stats
from tests.web.conftest import insert_vhost, start_web

COMBINED = re.compile(
    r"^(?P<addr>\S+) - - \[(?P<time>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<size>\d+|-) "(?P<referer>[^"]*)" '
    r'"(?P<agent>[^"]*)"$'
)


async def read_stats(store: Store, vhost_id: int) -> dict[str, object] | None:
    async with store.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(vhost_stats).where(vhost_stats.c.vhost_id == vhost_id)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def get(port: int, path: bytes, extra: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET %s HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n%s\r\n"
        % (path, extra)
    )
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


async def test_access_log_lines_in_combined_format(
    store: Store, tmp_path: Path, site: Path
) -> None:
    await insert_vhost(store, "example.com", site)
    data_dir = tmp_path / "data"
    web = await start_web(store, data_dir)
    await get(
        web.port,
        b"/style.css?q=1",
        b'Referer: http://ref.test/\r\nUser-Agent: agent "quoted" \xc3\xa9\r\n',
    )
    await get(web.port, b"/missing")
    await web.module.stop()

    lines = (data_dir / "logs" / "example.com.access.log").read_text().splitlines()
    assert len(lines) == 2
    first = COMBINED.match(lines[0])
    assert first is not None, lines[0]
    assert first["addr"] == "127.0.0.1"
    assert first["request"] == "GET /style.css?q=1 HTTP/1.1"
    assert first["status"] == "200"
    assert first["size"] == "20"
    assert first["referer"] == "http://ref.test/"
    assert first["agent"] == r"agent \x22quoted\x22 \xC3\xA9"
    second = COMBINED.match(lines[1])
    assert second is not None
    assert second["status"] == "404"
    assert second["agent"] == "-"


def entry(index: int) -> AccessEntry:
    return (
        b"127.0.0.1",
        time.time(),
        b"GET",
        b"/%d" % index,
        b"1.1",
        200,
        10,
        None,
        None,
    )


def test_access_log_rotated_by_size(tmp_path: Path) -> None:
    log = AccessLog(tmp_path, max_bytes=2048, backups=2)
    line_length = len(format_entries([entry(0)]))
    for round_ in range(20):
        buffer = log.buffer_for("example.com")
        for index in range(10):
            buffer.append(entry(round_ * 10 + index))
        log.flush()
    names = sorted(path.name for path in tmp_path.iterdir() if "access" in path.name)
    assert names == [
        "example.com.access.log",
        "example.com.access.log.1",
        "example.com.access.log.2",
    ]
    assert (
        tmp_path / "example.com.access.log"
    ).stat().st_size < 2048 + 10 * line_length
    newest = (tmp_path / "example.com.access.log.1").read_text()
    assert "/199 " not in newest


def test_access_log_refuses_unsafe_domain(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = AccessLog(tmp_path, max_bytes=2048, backups=1)
    log.buffer_for("../evil").append(entry(1))
    log.flush()
    assert list(tmp_path.iterdir()) == []
    assert "writing the access log of ../evil failed" in caplog.text


async def test_stats_flushed_at_stop(store: Store, tmp_path: Path, site: Path) -> None:
    vhost_id = await insert_vhost(store, "example.com", site)
    web = await start_web(store, tmp_path / "data")
    for _ in range(3):
        await get(web.port, b"/style.css")
    await web.module.stop()
    stats = await read_stats(store, vhost_id)
    assert stats is not None
    assert stats["requests"] == 3
    assert stats["bytes_served"] == 60
    assert stats["response_time_total_ms"] >= 0
    assert stats["last_request"] is not None


async def test_stats_of_two_workers_add_up(
    store: Store, tmp_path: Path, site: Path
) -> None:
    vhost_id = await insert_vhost(store, "example.com", site)
    first = await start_web(store, tmp_path / "data")
    second = await start_web(store, tmp_path / "data")
    await get(first.port, b"/style.css")
    await get(second.port, b"/style.css")
    await get(second.port, b"/")
    await first.module.stop()
    await second.module.stop()
    stats = await read_stats(store, vhost_id)
    assert stats is not None
    assert stats["requests"] == 3
    assert stats["bytes_served"] == 20 + 20 + 14


async def test_stats_flushed_periodically(
    store: Store, tmp_path: Path, site: Path
) -> None:
    vhost_id = await insert_vhost(store, "example.com", site)
    web = await start_web(store, tmp_path / "data")
    try:
        await get(web.port, b"/style.css")
        stats = None
        for _ in range(100):
            stats = await read_stats(store, vhost_id)
            if stats is not None:
                break
            await asyncio.sleep(0.1)
        assert stats is not None
        assert stats["requests"] == 1
    finally:
        await web.module.stop()


async def upsert_twice(store: Store, vhost_id: int) -> None:
    await add_stats(store, {vhost_id: StatsDelta(2, 100, 5.0, 1_700_000_000.0)})
    await add_stats(
        store,
        {
            vhost_id: StatsDelta(3, 50, 2.5, 1_600_000_000.0),
            9999: StatsDelta(1, 1, 1, 1),
        },
    )
    stats = await read_stats(store, vhost_id)
    assert stats is not None
    assert stats["requests"] == 5
    assert stats["bytes_served"] == 150
    assert stats["response_time_total_ms"] == 7.5
    last = stats["last_request"]
    assert isinstance(last, datetime)
    if last.tzinfo is None:
        # SQLite gives datetimes back naive; they are stored in UTC.
        last = last.replace(tzinfo=UTC)
    # The later of the two last-request times wins.
    assert last.timestamp() == pytest.approx(1_700_000_000.0, abs=1)


async def test_add_stats_upsert_adds_on_sqlite(store: Store, site: Path) -> None:
    vhost_id = await insert_vhost(store, "example.com", site)
    await upsert_twice(store, vhost_id)


@pytest.mark.postgres
async def test_add_stats_upsert_adds_on_postgres(postgres_url: str, site: Path) -> None:
    store = Store(postgres_url)
    try:
        await store.migrate()
        vhost_id = await insert_vhost(store, "example.com", site)
        await upsert_twice(store, vhost_id)
    finally:
        await store.close()
