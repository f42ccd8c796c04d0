"""The vhosts endpoints over real HTTP against `onestack serve`."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, insert

from onestack.store.tables import certificates
from tests.support import Server

_counter = itertools.count()


def unique_domain(label: str = "site") -> str:
    return f"{label}-{next(_counter)}-{secrets.token_hex(3)}.example"


def create(server: Server, **body: Any) -> httpx.Response:
    body.setdefault("domain", unique_domain())
    return server.api("POST", "/api/vhosts", json=body)


def vhost_count(server: Server) -> int:
    return len(server.api("GET", "/api/vhosts").json())


def test_create_answers_201_with_vhost(shared_server: Server) -> None:
    domain = unique_domain()
    response = create(shared_server, domain=domain, aliases=["www." + domain])
    assert response.status_code == 201
    vhost = response.json()
    assert isinstance(vhost["id"], int)
    assert vhost["domain"] == domain
    assert vhost["aliases"] == ["www." + domain]
    assert vhost["enabled"] is True
    assert vhost["ssl"] is False
    assert vhost["redirectToHttps"] is False
    assert vhost["stats"] == {
        "requests": 0,
        "bytesServed": 0,
        "lastRequest": None,
        "averageResponseTime": 0.0,
    }
    assert "certificate" not in vhost


def test_missing_root_is_created_with_placeholder(shared_server: Server) -> None:
    domain = unique_domain()
    vhost = create(shared_server, domain=domain).json()
    root = Path(vhost["documentRoot"])
    assert root == (shared_server.data_dir / "sites" / domain).resolve()
    index = root / "index.html"
    assert index.is_file()
    assert domain in index.read_text()


def test_domain_is_lowercased_without_trailing_dot(shared_server: Server) -> None:
    domain = unique_domain()
    vhost = create(
        shared_server, domain=domain.upper() + ".", aliases=["WWW." + domain.upper()]
    ).json()
    assert vhost["domain"] == domain
    assert vhost["aliases"] == ["www." + domain]


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("", "empty"),
        ("192.0.2.1", "IP address"),
        ("2001:db8::1", "IP address"),
        ("*.example.com", "wildcard"),
        ("a..example.com", "empty label"),
        ("-bad.example.com", "letters, digits"),
        ("bad-.example.com", "letters, digits"),
        ("under_score.example.com", "letters, digits"),
        ("spaced name.example.com", "letters, digits"),
        ("x" * 64 + ".example.com", "maximum is 63"),
        (".".join(["abcdefghi"] * 26), "maximum is 253"),
        ("host.123", "numeric"),
        ("bücher.example", "punycode"),
    ],
)
def test_invalid_domain_is_400(shared_server: Server, domain: str, reason: str) -> None:
    before = vhost_count(shared_server)
    response = create(shared_server, domain=domain)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_REQUEST"
    assert body["details"]["field"] == "domain"
    assert reason in body["error"]
    assert vhost_count(shared_server) == before


def test_invalid_alias_names_its_index(shared_server: Server) -> None:
    response = create(shared_server, aliases=["ok.example", "bad..example"])
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "aliases.1"


def test_alias_repeating_domain_is_400(shared_server: Server) -> None:
    domain = unique_domain()
    response = create(shared_server, domain=domain, aliases=[domain.upper()])
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "aliases.0"


def test_duplicate_domain_is_409(shared_server: Server) -> None:
    domain = unique_domain()
    assert create(shared_server, domain=domain).status_code == 201
    before = vhost_count(shared_server)
    response = create(shared_server, domain=domain.upper())
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "ALREADY_EXISTS"
    assert body["details"]["field"] == "domain"
    assert domain in body["error"]
    assert vhost_count(shared_server) == before


def test_alias_taken_by_other_vhost_is_409(shared_server: Server) -> None:
    first = unique_domain()
    assert (
        create(shared_server, domain=first, aliases=["www." + first]).status_code == 201
    )
    response = create(shared_server, aliases=["www." + first])
    assert response.status_code == 409
    assert response.json()["details"]["field"] == "aliases.0"
    # A domain equal to another vhost's alias is a conflict too.
    response = create(shared_server, domain="www." + first)
    assert response.status_code == 409


def test_conflicting_create_leaves_no_folder(shared_server: Server) -> None:
    first = unique_domain()
    assert (
        create(shared_server, domain=first, aliases=["alias." + first]).status_code
        == 201
    )
    response = create(shared_server, domain="alias." + first)
    assert response.status_code == 409
    assert not (shared_server.data_dir / "sites" / ("alias." + first)).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"ssl": 1}, "ssl"),
        ({"aliases": "www.example.com"}, "aliases"),
        ({"aliases": [1]}, "aliases.0"),
        ({"domain": 42}, "domain"),
        ({"documentRoot": 7}, "documentRoot"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_wrong_type_or_unknown_field_is_400(
    shared_server: Server, body: dict[str, Any], field: str
) -> None:
    before = vhost_count(shared_server)
    body.setdefault("domain", unique_domain())
    response = shared_server.api("POST", "/api/vhosts", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    assert response.json()["details"]["field"] == field
    assert vhost_count(shared_server) == before


def test_missing_domain_is_400(shared_server: Server) -> None:
    response = shared_server.api("POST", "/api/vhosts", json={"enabled": True})
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "domain"


def test_malformed_json_is_400(shared_server: Server) -> None:
    before = vhost_count(shared_server)
    response = shared_server.api(
        "POST",
        "/api/vhosts",
        content=b'{"domain": "broken.example",',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    assert "malformed JSON" in response.json()["error"]
    assert vhost_count(shared_server) == before


def test_relative_document_root_is_400(shared_server: Server) -> None:
    response = create(shared_server, documentRoot="relative/path")
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "documentRoot"


def test_user_document_root_is_kept(shared_server: Server, tmp_path: Path) -> None:
    root = tmp_path / "mysite"
    root.mkdir()
    vhost = create(shared_server, documentRoot=str(root) + "/").json()
    assert vhost["documentRoot"] == str(root)
    assert list(root.iterdir()) == []


def test_list_and_get_show_stats(shared_server: Server) -> None:
    created = create(shared_server).json()
    listed = shared_server.api("GET", "/api/vhosts").json()
    assert isinstance(listed, list)
    match = [v for v in listed if v["id"] == created["id"]]
    assert len(match) == 1
    assert match[0]["stats"]["requests"] == 0
    one = shared_server.api("GET", f"/api/vhosts/{created['id']}")
    assert one.status_code == 200
    assert one.json() == match[0]


def test_unknown_vhost_is_404(shared_server: Server) -> None:
    for method, path in [
        ("GET", "/api/vhosts/999999"),
        ("PUT", "/api/vhosts/999999"),
        ("DELETE", "/api/vhosts/999999"),
        ("GET", "/api/vhosts/999999/stats"),
    ]:
        kwargs = {"json": {"enabled": False}} if method == "PUT" else {}
        response = shared_server.api(method, path, **kwargs)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "NOT_FOUND"


def test_non_numeric_id_is_400(shared_server: Server) -> None:
    response = shared_server.api("GET", "/api/vhosts/abc")
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "vhost_id"


def test_update_is_partial(shared_server: Server) -> None:
    domain = unique_domain()
    created = create(shared_server, domain=domain, aliases=["www." + domain]).json()
    response = shared_server.api(
        "PUT", f"/api/vhosts/{created['id']}", json={"enabled": False}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["vhost"]["enabled"] is False
    assert body["vhost"]["aliases"] == ["www." + domain]
    assert body["vhost"]["documentRoot"] == created["documentRoot"]
    assert (
        shared_server.api("GET", f"/api/vhosts/{created['id']}").json()["enabled"]
        is False
    )


def test_update_aliases_frees_old_names(shared_server: Server) -> None:
    domain = unique_domain()
    created = create(shared_server, domain=domain, aliases=["old." + domain]).json()
    response = shared_server.api(
        "PUT", f"/api/vhosts/{created['id']}", json={"aliases": ["New." + domain]}
    )
    assert response.json()["vhost"]["aliases"] == ["new." + domain]
    # The dropped alias is free for another vhost now.
    assert create(shared_server, domain="old." + domain).status_code == 201


def test_update_to_taken_name_is_409(shared_server: Server) -> None:
    first = create(shared_server).json()
    second = create(shared_server).json()
    response = shared_server.api(
        "PUT", f"/api/vhosts/{second['id']}", json={"domain": first["domain"]}
    )
    assert response.status_code == 409
    assert response.json()["details"]["field"] == "domain"
    assert (
        shared_server.api("GET", f"/api/vhosts/{second['id']}").json()["domain"]
        == second["domain"]
    )


def test_update_rejects_null_and_bad_types(shared_server: Server) -> None:
    created = create(shared_server).json()
    for body, field in [
        ({"domain": None}, "domain"),
        ({"enabled": "false"}, "enabled"),
        ({"unknown": True}, "unknown"),
    ]:
        response = shared_server.api("PUT", f"/api/vhosts/{created['id']}", json=body)
        assert response.status_code == 400, body
        assert response.json()["details"]["field"] == field
    assert (
        shared_server.api("GET", f"/api/vhosts/{created['id']}").json()["enabled"]
        is True
    )


def test_delete_keeps_files_by_default(shared_server: Server) -> None:
    created = create(shared_server).json()
    response = shared_server.api("DELETE", f"/api/vhosts/{created['id']}")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert shared_server.api("GET", f"/api/vhosts/{created['id']}").status_code == 404
    assert Path(created["documentRoot"]).is_dir()


def test_delete_files_removes_managed_root(shared_server: Server) -> None:
    created = create(shared_server).json()
    response = shared_server.api(
        "DELETE", f"/api/vhosts/{created['id']}?deleteFiles=true"
    )
    assert response.status_code == 200
    assert not Path(created["documentRoot"]).exists()


def test_delete_files_keeps_user_root(shared_server: Server, tmp_path: Path) -> None:
    root = tmp_path / "owned"
    root.mkdir()
    (root / "index.html").write_text("mine")
    created = create(shared_server, documentRoot=str(root)).json()
    response = shared_server.api(
        "DELETE", f"/api/vhosts/{created['id']}?deleteFiles=true"
    )
    assert response.status_code == 200
    assert (root / "index.html").read_text() == "mine"


def test_delete_frees_the_names(shared_server: Server) -> None:
    domain = unique_domain()
    created = create(shared_server, domain=domain, aliases=["www." + domain]).json()
    shared_server.api("DELETE", f"/api/vhosts/{created['id']}")
    assert create(shared_server, domain="www." + domain).status_code == 201


def test_stats_from_store(shared_server: Server) -> None:
    created = create(shared_server).json()
    engine = create_engine(f"sqlite:///{shared_server.data_dir / 'onestack.db'}")
    last = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE vhost_stats SET requests = 4, bytes_served = 1000, "
            "response_time_total_ms = 10.0, last_request = ? WHERE vhost_id = ?",
            (last.replace(tzinfo=None), created["id"]),
        )
    engine.dispose()
    stats = shared_server.api("GET", f"/api/vhosts/{created['id']}/stats").json()
    assert stats == {
        "requests": 4,
        "bytesServed": 1000,
        "lastRequest": "2026-01-02T03:04:05.000Z",
        "averageResponseTime": 2.5,
    }
    listed = shared_server.api("GET", f"/api/vhosts/{created['id']}").json()
    assert listed["stats"] == stats


def test_ssl_vhost_shows_preferred_certificate(shared_server: Server) -> None:
    created = create(shared_server, ssl=True).json()
    assert created["certificate"] is None
    engine = create_engine(f"sqlite:///{shared_server.data_dir / 'onestack.db'}")
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = [
        ("self-signed", now + timedelta(days=1), now + timedelta(days=365)),
        ("acme", now, now + timedelta(days=90)),
        ("uploaded", now + timedelta(days=2), now + timedelta(days=30)),
    ]
    with engine.begin() as conn:
        for source, created_at, not_after in rows:
            conn.execute(
                insert(certificates).values(
                    vhost_id=created["id"],
                    source=source,
                    names=[created["domain"]],
                    not_before=now,
                    not_after=not_after,
                    cert_pem="-",
                    key_pem="-",
                    created_at=created_at,
                )
            )
    engine.dispose()
    vhost = shared_server.api("GET", f"/api/vhosts/{created['id']}").json()
    assert vhost["certificate"]["source"] == "acme"
    assert vhost["certificate"]["names"] == [created["domain"]]
    expected = (now + timedelta(days=90)).isoformat(timespec="milliseconds") + "Z"
    assert vhost["certificate"]["notAfter"] == expected


def test_renamed_vhost_keeps_its_own_root(shared_server: Server) -> None:
    domain = unique_domain()
    first = create(shared_server, domain=domain).json()
    renamed = shared_server.api(
        "PUT", f"/api/vhosts/{first['id']}", json={"domain": "renamed." + domain}
    ).json()["vhost"]
    assert renamed["documentRoot"] == first["documentRoot"]

    # A new vhost with the old name gets a folder of its own.
    second = create(shared_server, domain=domain).json()
    assert second["documentRoot"] != first["documentRoot"]
    assert Path(second["documentRoot"]).name == domain + "_2"
    assert (Path(second["documentRoot"]) / "index.html").is_file()

    shared_server.api("DELETE", f"/api/vhosts/{second['id']}?deleteFiles=true")
    assert not Path(second["documentRoot"]).exists()
    assert Path(first["documentRoot"], "index.html").is_file()


def test_shared_root_is_not_deleted(shared_server: Server) -> None:
    first = create(shared_server).json()
    second = create(shared_server, documentRoot=first["documentRoot"]).json()
    response = shared_server.api(
        "DELETE", f"/api/vhosts/{first['id']}?deleteFiles=true"
    )
    assert response.status_code == 200
    assert Path(first["documentRoot"], "index.html").is_file()
    assert shared_server.api("GET", f"/api/vhosts/{second['id']}").status_code == 200
