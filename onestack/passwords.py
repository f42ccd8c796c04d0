"""Password hashing with Argon2id, shared by the admin login and every protocol."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults follow RFC 9106's second recommended option
# (Argon2id, 64 MiB, 3 passes); verifying costs about 50 ms on one core.
_hasher = PasswordHasher()

GENERATED_LENGTH = 20
_ALPHABET = string.ascii_letters + string.digits


def hash_password(password: str) -> str:
    """Return an Argon2id hash of ``password`` with a fresh random salt."""
    return _hasher.hash(password)


def is_hash(value: str) -> bool:
    return value.startswith("$argon2id$")


def verify_password(password_hash: str, password: str) -> bool:
    """Check ``password`` against a stored hash; False for any mismatch."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password(length: int = GENERATED_LENGTH) -> str:
    """Return a random password from the OS CSPRNG."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
