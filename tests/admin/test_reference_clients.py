"""The reference's client classes, as written there, against a real server.

The JavaScript (fetch, Node 20), Python (requests) and PHP (curl) classes in
``reference_clients/`` must work unchanged; each lists and creates vhosts with
the reference's own usage lines. A language whose runtime is missing is
skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ADMIN_PASSWORD, ADMIN_USER, Server

CLIENTS = Path(__file__).parent / "reference_clients"

JS_DRIVER = """
const OneStackClient = require(process.argv[1]);
(async () => {
  const client = new OneStackClient(process.argv[2], process.argv[3], process.argv[4]);
  const created = await client.createVirtualHost({
    domain: 'api-test.local',
    enabled: true
  });
  const listed = await client.listVirtualHosts();
  let duplicate = null;
  try {
    await client.createVirtualHost({ domain: 'api-test.local' });
  } catch (error) {
    duplicate = error.message;
  }
  console.log(JSON.stringify({ created, listed, duplicate }));
})().catch((error) => { console.error(error); process.exit(1); });
"""

PYTHON_DRIVER = """
import json, runpy, sys
import requests
OneStackClient = runpy.run_path(sys.argv[1])["OneStackClient"]
client = OneStackClient(sys.argv[2], sys.argv[3], sys.argv[4])
created = client.create_virtual_host('python-test.local', enabled=True)
listed = client.list_virtual_hosts()
try:
    client.create_virtual_host('python-test.local')
    duplicate = None
except requests.HTTPError as error:
    duplicate = error.response.json()["error"]
print(json.dumps({"created": created, "listed": listed, "duplicate": duplicate}))
"""

PHP_DRIVER = """
require $argv[1];
$client = new OneStackClient($argv[2], $argv[3], $argv[4]);
$created = $client->createVirtualHost('php-test.local', ['enabled' => true]);
$listed = $client->listVirtualHosts();
$duplicate = null;
try {
    $client->createVirtualHost('php-test.local');
} catch (Exception $e) {
    $duplicate = $e->getMessage();
}
echo json_encode(['created' => $created, 'listed' => $listed, 'duplicate' => $duplicate]), "\\n";
"""


def node_20() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    major = int(version.lstrip("v").split(".")[0] or 0)
    return node if major >= 20 else None


def php_with_curl() -> str | None:
    php = shutil.which("php")
    if php is None:
        return None
    modules = subprocess.run([php, "-m"], capture_output=True, text=True).stdout.split()
    return php if "curl" in modules else None


def run_client(command: list[str]) -> dict[str, Any]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def check(outcome: dict[str, Any], domain: str) -> None:
    created = outcome["created"]
    assert created["domain"] == domain
    assert created["enabled"] is True
    assert isinstance(created["id"], int)
    assert Path(created["documentRoot"], "index.html").is_file()
    assert domain in [vhost["domain"] for vhost in outcome["listed"]]
    assert outcome["duplicate"] is not None
    assert "already used" in outcome["duplicate"]


def test_javascript_client(shared_server: Server) -> None:
    node = node_20()
    if node is None:
        pytest.skip("Node.js 20 or newer is not installed")
    outcome = run_client(
        [
            node,
            "-e",
            JS_DRIVER,
            str(CLIENTS / "onestack_client.js"),
            shared_server.admin_url,
            ADMIN_USER,
            ADMIN_PASSWORD,
        ]
    )
    check(outcome, "api-test.local")


def test_python_client(shared_server: Server) -> None:
    outcome = run_client(
        [
            sys.executable,
            "-c",
            PYTHON_DRIVER,
            str(CLIENTS / "onestack_client.py"),
            shared_server.admin_url,
            ADMIN_USER,
            ADMIN_PASSWORD,
        ]
    )
    check(outcome, "python-test.local")


def test_php_client(shared_server: Server) -> None:
    php = php_with_curl()
    if php is None:
        pytest.skip("PHP with the curl extension is not installed")
    outcome = run_client(
        [
            php,
            "-r",
            PHP_DRIVER,
            str(CLIENTS / "onestack_client.php"),
            shared_server.admin_url,
            ADMIN_USER,
            ADMIN_PASSWORD,
        ]
    )
    check(outcome, "php-test.local")
