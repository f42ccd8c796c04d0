"""A vhost's document root must not publish the data directory.

Before the check, a vhost with documentRoot set to the data directory
served onestack.db, config.json and the SSH host keys over HTTP.
"""

from __future__ import annotations

import pytest

from tests.support import Server


def data_paths(server: Server) -> dict[str, str]:
    data_dir = server.data_dir.resolve()
    return {
        "data": str(data_dir),
        "parent": str(data_dir.parent),
        "filesystem root": "/",
        "ssh keys": str(data_dir / "ssh"),
        "run": str(data_dir / "run"),
        "dotted": str(data_dir / "sites" / ".." / "run"),
    }


@pytest.mark.parametrize(
    "which", ["data", "parent", "filesystem root", "ssh keys", "run", "dotted"]
)
def test_root_exposing_data_is_rejected(qa_server: Server, which: str) -> None:
    path = data_paths(qa_server)[which]
    created = qa_server.api(
        "POST", "/api/vhosts", json={"domain": "leak.test", "documentRoot": path}
    )
    assert created.status_code == 400, created.text
    assert created.json()["details"]["field"] == "documentRoot"


def test_update_to_data_dir_is_rejected(qa_server: Server) -> None:
    created = qa_server.api("POST", "/api/vhosts", json={"domain": "moved.test"})
    assert created.status_code == 201
    vhost_id = created.json()["id"]
    moved = qa_server.api(
        "PUT",
        f"/api/vhosts/{vhost_id}",
        json={"documentRoot": str(qa_server.data_dir.resolve())},
    )
    assert moved.status_code == 400
    stored = qa_server.api("GET", f"/api/vhosts/{vhost_id}").json()
    assert stored["documentRoot"] == created.json()["documentRoot"]


def test_roots_beside_data_are_accepted(qa_server: Server) -> None:
    beside = qa_server.data_dir.resolve().parent / "www"
    beside.mkdir(exist_ok=True)
    under_sites = qa_server.data_dir.resolve() / "sites" / "custom"
    for index, path in enumerate([beside, under_sites]):
        created = qa_server.api(
            "POST",
            "/api/vhosts",
            json={"domain": f"ok{index}.test", "documentRoot": str(path)},
        )
        assert created.status_code == 201, created.text
