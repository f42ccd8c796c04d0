"""Host keys: made once, the same for every worker, private to the server."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from onestack.ssh.hostkeys import HOST_KEY_FILES, host_key_dir, host_key_fingerprints

ROOT = Path(__file__).resolve().parents[2]


def test_keys_created_once_with_private_mode(tmp_path: Path) -> None:
    first = host_key_fingerprints(tmp_path)
    second = host_key_fingerprints(tmp_path)

    assert first == second
    assert sorted(first) == ["ssh-ed25519", "ssh-rsa"]
    assert all(value.startswith("SHA256:") for value in first.values())
    for _algorithm, name in HOST_KEY_FILES:
        mode = (host_key_dir(tmp_path) / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    assert sorted(p.name for p in host_key_dir(tmp_path).iterdir()) == sorted(
        name for _algorithm, name in HOST_KEY_FILES
    )


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    fingerprints = host_key_fingerprints(tmp_path)
    key_file = host_key_dir(tmp_path) / "ssh_host_ed25519_key"

    output = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert fingerprints["ssh-ed25519"] in output


def test_workers_starting_together_agree(tmp_path: Path) -> None:
    script = (
        "import json, sys; from pathlib import Path;"
        "from onestack.ssh.hostkeys import host_key_fingerprints;"
        "print(json.dumps(host_key_fingerprints(Path(sys.argv[1]))))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]

    assert all(process.returncode == 0 for process in processes)
    assert len(set(outputs)) == 1
    assert outputs[0].strip() == json.dumps(host_key_fingerprints(tmp_path))
    leftovers = [
        p.name for p in host_key_dir(tmp_path).iterdir() if p.name.startswith(".")
    ]
    assert leftovers == []
