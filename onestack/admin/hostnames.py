"""Hostname rules for vhost domains and aliases (RFC 1123 section 2.1)."""

from __future__ import annotations

import ipaddress
import re

# RFC 1035 section 2.3.4: labels of at most 63 octets and names of at most
# 255 octets on the wire, which is 253 characters of text without the final dot.
MAX_LABEL_LENGTH = 63
MAX_NAME_LENGTH = 253

# RFC 1123 section 2.1: letters, digits and hyphens; a label may start with a
# digit but neither starts nor ends with a hyphen.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


class InvalidHostname(ValueError):
    """The value is not a hostname a vhost can serve; the message gives the reason."""


def normalize_hostname(value: str) -> str:
    """Return ``value`` lowercased without a trailing dot, or raise InvalidHostname."""
    name = value.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise InvalidHostname("must not be empty")
    if not name.isascii():
        raise InvalidHostname(
            f"{value!r} contains non-ASCII characters; write it in its "
            "punycode form (xn--...)"
        )
    if "*" in name:
        raise InvalidHostname(f"{value!r}: wildcard names are not supported")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise InvalidHostname(f"{value!r} is an IP address, not a hostname")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidHostname(
            f"is {len(name)} characters long; the maximum is {MAX_NAME_LENGTH}"
        )
    labels = name.split(".")
    for label in labels:
        if not label:
            raise InvalidHostname(f"{value!r} has an empty label")
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidHostname(
                f"label {label!r} is {len(label)} characters long; "
                f"the maximum is {MAX_LABEL_LENGTH}"
            )
        if not _LABEL.fullmatch(label):
            raise InvalidHostname(
                f"label {label!r} may contain only letters, digits and inner hyphens"
            )
    # A name whose last label is all digits reads as an IPv4 address to many
    # resolvers and browsers, and RFC 1123 section 2.1 expects top-level
    # labels to be alphabetic.
    if labels[-1].isdigit():
        raise InvalidHostname(f"{value!r} ends in a numeric label, like an IP address")
    return name
