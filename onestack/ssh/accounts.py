"""Rules for SFTP account data, shared by the admin API and the server."""

from __future__ import annotations

import re

import asyncssh

# A portable POSIX-style login name: lowercase, at most 32 characters.
USERNAME_PATTERN = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024


class InvalidPublicKeyError(ValueError):
    """A public key that is not in OpenSSH format; ``index`` is its position."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"publicKeys[{index}]: {reason}")
        self.index = index


def is_valid_username(username: str) -> bool:
    return USERNAME_PATTERN.fullmatch(username) is not None


def normalize_public_keys(keys: list[str]) -> list[str]:
    """Parse each OpenSSH public key line and return them in canonical form.

    The canonical form is ``algorithm base64 [comment]``, as in an
    ``authorized_keys`` file without options.
    """
    normalized = []
    for index, text in enumerate(keys):
        line = text.strip()
        if not line or "\n" in line:
            raise InvalidPublicKeyError(index, "must be one OpenSSH public key line")
        try:
            key = asyncssh.import_public_key(line)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise InvalidPublicKeyError(
                index, f"invalid OpenSSH public key ({exc})"
            ) from None
        normalized.append(key.export_public_key("openssh").decode().strip())
    return normalized


def key_matches(stored: list[str], offered: asyncssh.SSHKey) -> bool:
    """Tell whether ``offered`` is one of the stored public keys."""
    offered_data = offered.public_data
    for line in stored:
        try:
            if asyncssh.import_public_key(line).public_data == offered_data:
                return True
        except (asyncssh.KeyImportError, ValueError):
            continue
    return False
