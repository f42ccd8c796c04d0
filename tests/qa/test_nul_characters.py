"""NUL characters in API input: rejected up front, on SQLite and PostgreSQL.

PostgreSQL cannot store U+0000 in text, so before the check such a request
failed with 500 there and was stored on SQLite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import Server, run_server

BODIES = [
    ("POST", "/api/mailboxes", {"email": "n@qa.test", "name": "a\x00b"}),
    (
        "POST",
        "/api/dns/zones/qa.test/records",
        {"name": "t", "type": "TXT", "data": "a\x00b"},
    ),
    (
        "POST",
        "/api/send-email",
        {"from": "s@qa.test", "to": "s@qa.test", "subject": "a\x00b", "body": "x"},
    ),
    ("PUT", "/api/config", {"modules": {"email": {"smtp": {"hostname": "a\x00b"}}}}),
]

URLS = [
    "/api/mailboxes/a%00b@qa.test",
    "/api/ssh/users/a%00b",
    "/api/dns/zones/a%00b",
    "/api/mailboxes/s@qa.test/messages?folder=in%00box",
]


def check_nul_rejected(server: Server) -> None:
    assert server.api("POST", "/api/dns/zones", json={"name": "qa.test"}).is_success
    assert server.api("POST", "/api/mailboxes", json={"email": "s@qa.test"}).is_success
    for method, path, body in BODIES:
        response = server.api(method, path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["code"] == "INVALID_REQUEST"
    for path in URLS:
        response = server.api("GET", path)
        assert response.status_code == 400, (path, response.text)
    names = [m["email"] for m in server.api("GET", "/api/mailboxes").json()]
    assert "n@qa.test" not in names


def test_nul_rejected_on_sqlite(qa_server: Server) -> None:
    check_nul_rejected(qa_server)


def test_nul_rejected_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    overrides: dict[str, Any] = {"database": {"url": postgres_url}}
    with run_server(tmp_path / "data", overrides) as server:
        check_nul_rejected(server)


@pytest.mark.parametrize("text", ["back\\\\u0000slash", "tab\there", "zoë ‮"])
def test_escaped_backslash_is_accepted(qa_server: Server, text: str) -> None:
    response = qa_server.api(
        "POST", "/api/mailboxes", json={"email": f"e{len(text)}@qa.test", "name": text}
    )
    assert response.status_code == 201
    assert response.json()["name"] == text
