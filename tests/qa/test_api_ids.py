"""Ids and offsets beyond what the database can store are rejected as 400."""

from __future__ import annotations

import pytest

from tests.support import Server

TOO_LARGE = "99999999999999999999999"

# Each request is valid but for its id, so only the id can make it fail.
ROUTES = [
    ("GET", f"/api/vhosts/{TOO_LARGE}", None),
    ("PUT", f"/api/vhosts/{TOO_LARGE}", {"enabled": False}),
    ("DELETE", f"/api/vhosts/{TOO_LARGE}", None),
    ("GET", f"/api/vhosts/{TOO_LARGE}/stats", None),
    ("GET", f"/api/vhosts/{TOO_LARGE}/certificate", None),
    ("DELETE", f"/api/vhosts/{TOO_LARGE}/certificate", None),
    ("PUT", f"/api/dns/records/{TOO_LARGE}", {"ttl": 300}),
    ("DELETE", f"/api/dns/records/{TOO_LARGE}", None),
    ("GET", f"/api/messages/{TOO_LARGE}", None),
    ("PUT", f"/api/messages/{TOO_LARGE}/read", {"read": True}),
    ("PUT", f"/api/messages/{TOO_LARGE}/move", {"folder": "trash"}),
    ("DELETE", f"/api/messages/{TOO_LARGE}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_huge_path_id_is_400(
    qa_server: Server, method: str, path: str, body: dict[str, object] | None
) -> None:
    response = qa_server.api(method, path, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"


def test_huge_ssh_vhost_id_is_400(qa_server: Server) -> None:
    response = qa_server.api(
        "POST",
        "/api/ssh/users",
        json={"username": "huge", "password": "a-long-password", "vhostId": 2**64},
    )
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "vhostId"


def test_huge_message_offset_is_400(qa_server: Server) -> None:
    created = qa_server.api("POST", "/api/mailboxes", json={"email": "o@qa.test"})
    assert created.status_code == 201
    response = qa_server.api(
        "GET", "/api/mailboxes/o@qa.test/messages", params={"offset": TOO_LARGE}
    )
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "offset"
