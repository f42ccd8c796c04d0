from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Server, run_server


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for every test that leaves it usable for the next.

    Starting a server takes seconds, so tests share this one. A test that
    changes the config checks only what it changed, and one that changes the
    credentials or writes a broken config file puts them back.
    """
    # Several tests send wrong passwords on purpose; they must not get
    # 127.0.0.1 blocked for the tests that follow.
    limits = {"failedLoginsBeforeDelay": 1000, "failedLoginsBeforeBlock": 1000}
    overrides = {"server": {"adminPanel": {"rateLimit": limits}}}
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    with run_server(data_dir, overrides) as running:
        yield running
