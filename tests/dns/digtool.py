"""Run dig and kdig against a server and read their output."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

SECTIONS = {
    ";; ANSWER SECTION:": "answer",
    ";; AUTHORITY SECTION:": "authority",
    ";; ADDITIONAL SECTION:": "additional",
}


@dataclass
class DigResult:
    status: str
    flags: set[str]
    answer: list[list[str]] = field(default_factory=list)
    authority: list[list[str]] = field(default_factory=list)
    additional: list[list[str]] = field(default_factory=list)
    text: str = ""

    def rdata(self, section: str = "answer") -> list[str]:
        return [" ".join(fields[4:]) for fields in getattr(self, section)]

    def types(self, section: str = "answer") -> list[str]:
        return [fields[3] for fields in getattr(self, section)]


def dig(port: int, name: str, rdtype: str = "A", *options: str) -> DigResult:
    """Query 127.0.0.1:port with dig (no recursion asked) and parse the reply."""
    command = [
        "dig",
        "@127.0.0.1",
        "-p",
        str(port),
        "+norecurse",
        "+tries=1",
        "+time=5",
    ]
    command += [*options, name, rdtype]
    output = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    return parse(output)


def parse(output: str) -> DigResult:
    status = re.search(r"status: (\w+)", output)
    flags = re.search(r";; flags: ([a-z ]*);", output)
    result = DigResult(
        status=status.group(1) if status else "NO ANSWER",
        flags=set(flags.group(1).split()) if flags else set(),
        text=output,
    )
    section = None
    for line in output.splitlines():
        if line in SECTIONS:
            section = SECTIONS[line]
        elif not line.strip() or line.startswith(";"):
            section = None if not line.strip() else section
        elif section is not None:
            getattr(result, section).append(line.split())
    return result
