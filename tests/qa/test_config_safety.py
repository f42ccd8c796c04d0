"""Config changes that would leave the server unsafe or unable to start."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from onestack import config as config_module
from onestack.config import Config, ConfigError
from tests.support import Server


def config_file(server: Server) -> Path:
    return server.data_dir / "config.json"


def test_validate_rejects_shared_port() -> None:
    data = Config().model_dump(mode="json")
    data["modules"]["http"]["port"] = data["modules"]["email"]["smtp"]["port"]
    with pytest.raises(ConfigError) as caught:
        config_module.validate(data)
    fields = [error["field"] for error in caught.value.errors]
    assert fields == ["modules.email.smtp.port"]


def test_validate_accepts_default_ports() -> None:
    config = config_module.validate(Config().model_dump(mode="json"))
    ports = [port for _field, port in config.listeners()]
    assert len(ports) == len(set(ports))


def shared_port_update(server: Server) -> dict[str, Any]:
    smtp_port = server.config["modules"]["email"]["smtp"]["port"]
    return {"modules": {"http": {"port": smtp_port}}}


def test_put_shared_port_changes_nothing(qa_server: Server) -> None:
    before = config_file(qa_server).read_bytes()
    response = qa_server.api("PUT", "/api/config", json=shared_port_update(qa_server))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_CONFIG"
    assert body["details"]["field"] == "modules.email.smtp.port"
    assert config_file(qa_server).read_bytes() == before


def test_module_config_shared_port_is_400(qa_server: Server) -> None:
    admin_port = qa_server.config["server"]["adminPanel"]["port"]
    response = qa_server.api(
        "PUT", "/api/modules/dns/config", json={"port": admin_port}
    )
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "modules.dns.port"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_put_exposed_admin_with_default_password(qa_server: Server, host: str) -> None:
    before = config_file(qa_server).read_bytes()
    update = {"server": {"adminPanel": {"host": host}}}
    response = qa_server.api("PUT", "/api/config", json=update)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_CONFIG"
    assert body["details"]["field"] == "server.adminPanel.host"
    assert config_file(qa_server).read_bytes() == before
    current = qa_server.api("GET", "/api/config").json()
    assert current["server"]["adminPanel"]["host"] == "127.0.0.1"


def test_reload_exposed_admin_keeps_running_config(qa_server: Server) -> None:
    good = config_file(qa_server).read_bytes()
    stored = json.loads(good)
    stored["server"]["adminPanel"]["host"] = "0.0.0.0"
    config_file(qa_server).write_text(json.dumps(stored))
    try:
        response = qa_server.api("POST", "/api/config/reload")
    finally:
        config_file(qa_server).write_bytes(good)
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "server.adminPanel.host"
    current = qa_server.api("GET", "/api/config").json()
    assert current["server"]["adminPanel"]["host"] == "127.0.0.1"


def test_sighup_broken_file_logs_and_keeps(qa_server: Server) -> None:
    good = config_file(qa_server).read_bytes()
    before = qa_server.api("GET", "/api/config").json()
    config_file(qa_server).write_text('{"modules": {"dns": {"port": ')
    try:
        qa_server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "config reload rejected" not in qa_server.log():
            assert time.monotonic() < deadline, qa_server.log()
            time.sleep(0.1)
    finally:
        config_file(qa_server).write_bytes(good)
    assert "Task exception was never retrieved" not in qa_server.log()
    assert qa_server.api("GET", "/api/config").json() == before


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"modules": {"http": {"host": "not a host"}}}, "modules.http.host"),
        ({"modules": {"dns": {"host": ""}}}, "modules.dns.host"),
        (
            {"modules": {"email": {"smtp": {"hostname": "a\r\nb"}}}},
            "modules.email.smtp.hostname",
        ),
        ({"server": {"adminPanel": {"host": "[::1]"}}}, "server.adminPanel.host"),
        ({"database": {"url": "bogus://"}}, "database.url"),
        ({"database": {"url": "not a url"}}, "database.url"),
    ],
)
def test_put_invalid_address_changes_nothing(
    qa_server: Server, update: dict[str, Any], field: str
) -> None:
    """Each of these was stored before, leaving a module or the next start broken."""
    before = config_file(qa_server).read_bytes()
    response = qa_server.api("PUT", "/api/config", json=update)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_CONFIG"
    assert response.json()["details"]["field"] == field
    assert config_file(qa_server).read_bytes() == before


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "127.0.0.1", "localhost", "localhost.", "mail.example.com"],
)
def test_validate_accepts_host(host: str) -> None:
    config = config_module.validate({"modules": {"http": {"host": host}}})
    assert config.modules.http.host == host


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:5432/onestack",
        "sqlite+aiosqlite:////tmp/x.db",
    ],
)
def test_validate_accepts_database_url(url: str) -> None:
    assert config_module.validate({"database": {"url": url}}).database.url == url


@pytest.mark.parametrize("value", ["80", True, 80.0])
def test_validate_rejects_loose_port_types(value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        config_module.validate({"modules": {"http": {"port": value}}})
    assert raised.value.errors[0]["field"] == "modules.http.port"
