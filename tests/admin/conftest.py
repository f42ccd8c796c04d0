from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Server, run_server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests of a file that do not change shared state."""
    with run_server(tmp_path_factory.mktemp("shared") / "data") as running:
        yield running
