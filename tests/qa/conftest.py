from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Server, run_server


@pytest.fixture(scope="module")
def qa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server, every module disabled, shared by the tests of a module.

    A test that changes the config or the config file puts it back.
    """
    data_dir = tmp_path_factory.mktemp("qa") / "data"
    with run_server(data_dir) as running:
        yield running
