"""The http module in-process on a free port, driven by curl and raw sockets."""

from __future__ import annotations

import asyncio
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from onestack.store import Store
from tests.web.conftest import (
    RunningWeb,
    delete_vhost,
    insert_vhost,
    parse_responses,
    start_web,
    update_vhost,
)


@dataclass
class CurlResult:
    status: int
    headers: dict[str, str]
    body: bytes
    stderr: str


async def curl(
    web: RunningWeb, path: str, *args: str, host: str = "example.com"
) -> CurlResult:
    """Run curl against the module and return the last response it received."""
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "-v",
        "--path-as-is",
        "-D",
        "-",
        "-H",
        f"Host: {host}",
        *args,
        f"http://127.0.0.1:{web.port}{path}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    head, _, body = stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResult(int(lines[0].split()[1]), headers, body, stderr.decode("latin-1"))


# --- routing ----------------------------------------------------------------


async def test_domain_serves_index(web: RunningWeb) -> None:
    result = await curl(web, "/")
    assert result.status == 200
    assert result.body == b"<h1>home</h1>\n"
    assert result.headers["content-type"] == "text/html; charset=utf-8"
    assert result.headers["content-length"] == "14"


@pytest.mark.parametrize(
    "host",
    [
        "www.example.com",
        "EXAMPLE.COM",
        "Example.Com:8080",
        "example.com.",
        "www.example.com.:80",
    ],
)
async def test_host_variants_route_to_vhost(web: RunningWeb, host: str) -> None:
    result = await curl(web, "/", host=host)
    assert result.status == 200
    assert result.body == b"<h1>home</h1>\n"


async def test_unknown_host_is_404(web: RunningWeb) -> None:
    result = await curl(web, "/", host="other.test")
    assert result.status == 404


async def test_disabled_vhost_not_served(
    web: RunningWeb, store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "off"
    root.mkdir()
    (root / "index.html").write_text("off")
    vhost_id = await insert_vhost(store, "off.test", root, enabled=False)
    await web.reload()
    assert (await curl(web, "/", host="off.test")).status == 404
    await update_vhost(store, vhost_id, enabled=True)
    await web.reload()
    assert (await curl(web, "/", host="off.test")).body == b"off"


async def test_vhost_changes_follow_events(
    web: RunningWeb, store: Store, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    for root in (first, second):
        root.mkdir()
        (root / "index.html").write_text(root.name)
    assert (await curl(web, "/", host="new.test")).status == 404

    vhost_id = await insert_vhost(store, "new.test", first)
    await web.module.on_event({"type": "vhostCreated", "data": {}})
    assert (await curl(web, "/", host="new.test")).body == b"first"

    await update_vhost(store, vhost_id, document_root=str(second))
    await web.module.on_event({"type": "vhostUpdated", "data": {}})
    assert (await curl(web, "/", host="new.test")).body == b"second"

    await delete_vhost(store, vhost_id)
    await web.module.on_event({"type": "vhostDeleted", "data": {}})
    assert (await curl(web, "/", host="new.test")).status == 404


# --- files and paths ----------------------------------------------------------


async def test_directory_without_slash_redirects(web: RunningWeb) -> None:
    result = await curl(web, "/about?x=1")
    assert result.status == 301
    assert result.headers["location"] == "/about/?x=1"
    followed = await curl(web, "/about/")
    assert followed.body == b"<h1>about</h1>\n"


async def test_directory_without_index_is_404(web: RunningWeb, site: Path) -> None:
    (site / "empty").mkdir()
    (site / "empty" / "file.txt").write_text("listed?")
    result = await curl(web, "/empty/")
    assert result.status == 404
    assert b"file.txt" not in result.body


async def test_missing_file_is_404(web: RunningWeb) -> None:
    assert (await curl(web, "/nope.html")).status == 404


async def test_vhost_own_404_page(web: RunningWeb, site: Path) -> None:
    (site / "404.html").write_text("custom not found")
    result = await curl(web, "/nope.html")
    assert result.status == 404
    assert result.body == b"custom not found"


async def test_dotfiles_not_served(web: RunningWeb, site: Path) -> None:
    (site / ".env").write_text("SECRET=1")
    (site / ".git").mkdir()
    (site / ".git" / "config").write_text("[core]")
    for path in ("/.env", "/.git/config", "/%2eenv"):
        result = await curl(web, path)
        assert result.status == 404, path
        assert b"SECRET" not in result.body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/../secret.txt", 403),
        ("/%2e%2e/secret.txt", 403),
        ("/about/%2e%2e/%2e%2e/secret.txt", 403),
        ("/..%2fsecret.txt", 404),
        ("/about%2F..%2F..%2Fsecret.txt", 404),
        ("/index.html%00.txt", 400),
        ("/escape/secret.txt", 403),
        ("/secret-link", 403),
    ],
)
async def test_paths_cannot_leave_root(
    web: RunningWeb, site: Path, path: str, status: int
) -> None:
    (site.parent / "secret.txt").write_text("SECRET")
    (site / "escape").symlink_to(site.parent)
    (site / "secret-link").symlink_to(site.parent / "secret.txt")
    result = await curl(web, path)
    assert result.status == status
    assert b"SECRET" not in result.body


async def test_unreadable_file_is_403(web: RunningWeb, site: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    (site / "locked.html").write_text("locked")
    (site / "locked.html").chmod(0)
    assert (await curl(web, "/locked.html")).status == 403


async def test_content_types(web: RunningWeb, site: Path) -> None:
    (site / "app.js").write_text("1")
    (site / "photo.png").write_bytes(b"\x89PNG")
    (site / "blob").write_bytes(b"\x00")
    assert (await curl(web, "/app.js")).headers[
        "content-type"
    ] == "text/javascript; charset=utf-8"
    assert (await curl(web, "/photo.png")).headers["content-type"] == "image/png"
    assert (await curl(web, "/blob")).headers[
        "content-type"
    ] == "application/octet-stream"


async def test_changed_file_served_after_revalidation(
    web: RunningWeb, site: Path
) -> None:
    assert (await curl(web, "/style.css")).body == b"body { color: red }\n"
    (site / "style.css").write_text("body { color: blue; margin: 0 }\n")
    await asyncio.sleep(1.1)
    result = await curl(web, "/style.css")
    assert result.body == b"body { color: blue; margin: 0 }\n"


async def test_large_file_streamed_whole(web: RunningWeb, site: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (site / "big.bin").write_bytes(data)
    result = await curl(web, "/big.bin")
    assert result.status == 200
    assert result.headers["content-length"] == str(len(data))
    assert result.body == data


async def test_large_file_pipelined_between_small(web: RunningWeb, site: Path) -> None:
    data = os.urandom(2 * 1024 * 1024)
    (site / "big.bin").write_bytes(data)
    raw = await web.exchange(
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"GET /big.bin HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"GET /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n"
    )
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200, 200, 200]
    assert responses[1].body == data
    assert responses[2].body == b"body { color: red }\n"


# --- HTTP semantics -------------------------------------------------------------


async def test_date_and_server_headers(web: RunningWeb) -> None:
    result = await curl(web, "/")
    assert result.headers["server"] == "OneStack"
    assert result.headers["date"].endswith(" GMT")


async def test_head_has_get_headers_without_body(web: RunningWeb, site: Path) -> None:
    (site / "big.bin").write_bytes(os.urandom(600_000))
    for path in ("/style.css", "/big.bin"):
        get = await curl(web, path)
        head = await curl(web, path, "-I")
        assert head.status == 200
        for name in (
            "content-type",
            "content-length",
            "etag",
            "last-modified",
            "accept-ranges",
        ):
            assert head.headers[name] == get.headers[name], name


async def test_head_sends_no_body_on_the_wire(web: RunningWeb, site: Path) -> None:
    (site / "big.bin").write_bytes(os.urandom(600_000))
    for path, length in ((b"/style.css", b"20"), (b"/big.bin", b"600000")):
        raw = await web.exchange(
            b"HEAD %s HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n" % path
        )
        assert raw.endswith(b"\r\n\r\n")
        assert raw.count(b"\r\n\r\n") == 1
        assert b"Content-Length: %s\r\n" % length in raw


async def test_etag_and_last_modified(web: RunningWeb) -> None:
    result = await curl(web, "/style.css")
    etag = result.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert result.headers["last-modified"].endswith(" GMT")


async def test_if_none_match_gives_304(web: RunningWeb) -> None:
    etag = (await curl(web, "/style.css")).headers["etag"]
    result = await curl(web, "/style.css", "-H", f"If-None-Match: {etag}")
    assert result.status == 304
    assert result.body == b""
    assert result.headers["etag"] == etag
    other = await curl(web, "/style.css", "-H", 'If-None-Match: "other"')
    assert other.status == 200


async def test_if_modified_since_gives_304(web: RunningWeb) -> None:
    modified = (await curl(web, "/style.css")).headers["last-modified"]
    result = await curl(web, "/style.css", "-H", f"If-Modified-Since: {modified}")
    assert result.status == 304
    old = await curl(
        web, "/style.css", "-H", "If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT"
    )
    assert old.status == 200


async def test_single_range_gives_206(web: RunningWeb) -> None:
    result = await curl(web, "/data.bin", "-r", "10-19")
    assert result.status == 206
    assert result.headers["content-range"] == "bytes 10-19/1024"
    assert result.headers["content-length"] == "10"
    assert result.body == bytes(range(10, 20))


async def test_suffix_range(web: RunningWeb) -> None:
    result = await curl(web, "/data.bin", "-r", "-4")
    assert result.status == 206
    assert result.body == bytes([252, 253, 254, 255])


async def test_multiple_ranges_give_multipart(web: RunningWeb) -> None:
    result = await curl(web, "/data.bin", "-r", "0-3,100-103")
    assert result.status == 206
    content_type = result.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    boundary = content_type.split("boundary=")[1].encode()
    assert int(result.headers["content-length"]) == len(result.body)
    parts = result.body.split(b"--" + boundary)
    assert parts[-1] == b"--\r\n"
    assert (
        b"Content-Range: bytes 0-3/1024\r\n\r\n" + bytes([0, 1, 2, 3]) + b"\r\n"
        in parts[1]
    )
    assert (
        b"Content-Range: bytes 100-103/1024\r\n\r\n" + bytes([100, 101, 102, 103])
        in parts[2]
    )


async def test_unsatisfiable_range_gives_416(web: RunningWeb) -> None:
    result = await curl(web, "/data.bin", "-r", "5000-6000")
    assert result.status == 416
    assert result.headers["content-range"] == "bytes */1024"


async def test_ranges_of_large_file(web: RunningWeb, site: Path) -> None:
    data = os.urandom(1024 * 1024)
    (site / "big.bin").write_bytes(data)
    single = await curl(web, "/big.bin", "-r", "500000-500099")
    assert single.status == 206
    assert single.body == data[500000:500100]
    multi = await curl(web, "/big.bin", "-r", "0-9,900000-900009")
    assert multi.status == 206
    assert data[:10] in multi.body
    assert data[900000:900010] in multi.body
    assert int(multi.headers["content-length"]) == len(multi.body)


async def test_if_range_matching_etag_honours_range(web: RunningWeb) -> None:
    etag = (await curl(web, "/data.bin")).headers["etag"]
    result = await curl(web, "/data.bin", "-r", "0-1", "-H", f"If-Range: {etag}")
    assert result.status == 206


async def test_if_range_stale_sends_whole_file(web: RunningWeb) -> None:
    result = await curl(web, "/data.bin", "-r", "0-1", "-H", 'If-Range: "stale"')
    assert result.status == 200
    assert len(result.body) == 1024


async def test_if_range_date(web: RunningWeb) -> None:
    modified = (await curl(web, "/data.bin")).headers["last-modified"]
    fresh = await curl(web, "/data.bin", "-r", "0-1", "-H", f"If-Range: {modified}")
    assert fresh.status == 206
    stale = await curl(
        web, "/data.bin", "-r", "0-1", "-H", "If-Range: Thu, 01 Jan 1998 00:00:00 GMT"
    )
    assert stale.status == 200


async def test_precompressed_siblings(web: RunningWeb, site: Path) -> None:
    text = b"hello compressed world\n" * 50
    (site / "page.txt").write_bytes(text)
    (site / "page.txt.gz").write_bytes(gzip.compress(text))
    (site / "page.txt.br").write_bytes(b"brotli-bytes")

    gz = await curl(web, "/page.txt", "-H", "Accept-Encoding: gzip")
    assert gz.headers["content-encoding"] == "gzip"
    assert gz.headers["vary"] == "Accept-Encoding"
    assert gz.headers["content-type"] == "text/plain; charset=utf-8"
    assert gzip.decompress(gz.body) == text

    br = await curl(web, "/page.txt", "-H", "Accept-Encoding: gzip, br")
    assert br.headers["content-encoding"] == "br"
    assert br.body == b"brotli-bytes"

    refused = await curl(web, "/page.txt", "-H", "Accept-Encoding: br;q=0, gzip;q=0")
    assert "content-encoding" not in refused.headers
    assert refused.headers["vary"] == "Accept-Encoding"
    assert refused.body == text

    plain = await curl(web, "/page.txt")
    assert "content-encoding" not in plain.headers
    assert plain.body == text


async def test_gzip_sibling_decoded_by_curl(web: RunningWeb, site: Path) -> None:
    text = b"hello compressed world\n" * 50
    (site / "page.txt").write_bytes(text)
    (site / "page.txt.gz").write_bytes(gzip.compress(text))
    decoded = await curl(web, "/page.txt", "--compressed")
    assert decoded.headers["content-encoding"] == "gzip"
    assert decoded.body == text


async def test_persistent_connection_reused(web: RunningWeb) -> None:
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "-v",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-H",
        "Host: example.com",
        f"http://127.0.0.1:{web.port}/",
        f"http://127.0.0.1:{web.port}/style.css",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    text = stderr.decode()
    assert (
        "Re-using existing connection" in text or "Reusing existing connection" in text
    )


async def test_method_not_allowed(web: RunningWeb) -> None:
    result = await curl(web, "/", "-X", "POST", "-d", "x=1")
    assert result.status == 405
    assert result.headers["allow"] == "GET, HEAD"


# --- ACME and redirects -----------------------------------------------------------


async def test_acme_challenge_for_any_host(web: RunningWeb) -> None:
    challenges = web.data_dir / "acme" / "challenges"
    challenges.mkdir(parents=True)
    (challenges / "tok-EN_123").write_text("tok-EN_123.thumbprint")
    for host in ("example.com", "unknown.test"):
        result = await curl(web, "/.well-known/acme-challenge/tok-EN_123", host=host)
        assert result.status == 200
        assert result.body == b"tok-EN_123.thumbprint"
    assert (await curl(web, "/.well-known/acme-challenge/missing")).status == 404
    assert (
        await curl(web, "/.well-known/acme-challenge/..%2fconfig.json")
    ).status == 404
    assert (await curl(web, "/.well-known/acme-challenge/a.b")).status == 404


async def test_redirect_to_https(store: Store, tmp_path: Path, site: Path) -> None:
    await insert_vhost(store, "secure.test", site, ssl=True, redirect_to_https=True)
    await insert_vhost(store, "plain.test", site, ssl=False, redirect_to_https=True)
    web = await start_web(store, tmp_path / "data", httpsPort=9443)
    try:
        result = await curl(web, "/a/b?c=d&e", host="Secure.Test:8080")
        assert result.status == 301
        assert result.headers["location"] == "https://secure.test:9443/a/b?c=d&e"
        assert (await curl(web, "/", host="plain.test")).status == 200
    finally:
        await web.module.stop()
    web = await start_web(store, tmp_path / "data", httpsPort=443)
    try:
        result = await curl(web, "/x", host="secure.test")
        assert result.headers["location"] == "https://secure.test/x"
    finally:
        await web.module.stop()


async def test_reconnect_to_event_hub_reloads(
    store: Store, tmp_path: Path, site: Path
) -> None:
    from onestack.config import HttpConfig
    from onestack.events import EventClient
    from onestack.modules import WorkerContext
    from onestack.web.module import HttpModule
    from tests.support import free_port

    events = EventClient(tmp_path / "events.sock")
    port = free_port()
    config = HttpConfig.model_validate({"host": "127.0.0.1", "port": port})
    module = HttpModule(config, WorkerContext(tmp_path / "data", store, events=events))
    await module.start()
    try:
        assert events.on_reconnect is not None
        await insert_vhost(store, "late.test", site)
        # Events sent while the worker was disconnected are lost; the
        # reconnect hook reloads the table instead.
        await events.on_reconnect()
        web = RunningWeb(module, port, store, tmp_path / "data")
        assert (await curl(web, "/", host="late.test")).status == 200
    finally:
        await module.stop()
