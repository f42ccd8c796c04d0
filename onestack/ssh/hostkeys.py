"""SSH host keys: generated once in DATA_DIR/ssh, then reused by every worker."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import asyncssh

logger = logging.getLogger(__name__)

HOST_KEY_DIRNAME = "ssh"
# (algorithm, file name); clients pick one from this list in order.
HOST_KEY_FILES: tuple[tuple[str, str], ...] = (
    ("ssh-ed25519", "ssh_host_ed25519_key"),
    ("ssh-rsa", "ssh_host_rsa_key"),
)
RSA_KEY_BITS = 3072


def host_key_dir(data_dir: Path) -> Path:
    return data_dir / HOST_KEY_DIRNAME


def load_host_keys(data_dir: Path) -> list[asyncssh.SSHKey]:
    """Return the host keys, generating any that do not exist yet.

    Several worker processes may start at once. Each writes a new key to its
    own temporary file and hard-links it to the final name. ``link`` fails
    when the name exists, so exactly one key wins, and every process then
    reads that one.
    """
    directory = host_key_dir(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return [
        _load_or_create(directory / name, algorithm)
        for algorithm, name in HOST_KEY_FILES
    ]


def host_key_fingerprints(data_dir: Path) -> dict[str, str]:
    """Return ``{algorithm: "SHA256:..."}`` for each host key, creating missing ones."""
    return {
        key.get_algorithm(): key.get_fingerprint("sha256")
        for key in load_host_keys(data_dir)
    }


def _load_or_create(path: Path, algorithm: str) -> asyncssh.SSHKey:
    if not path.exists():
        _create(path, algorithm)
    return asyncssh.read_private_key(str(path))


def _create(path: Path, algorithm: str) -> None:
    if algorithm == "ssh-rsa":
        key = asyncssh.generate_private_key(algorithm, key_size=RSA_KEY_BITS)
    else:
        key = asyncssh.generate_private_key(algorithm)
    # mkstemp creates the file with mode 0600.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".hostkey.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return
        logger.info(
            "generated SSH host key %s (%s)", path, key.get_fingerprint("sha256")
        )
    finally:
        os.unlink(tmp_name)
