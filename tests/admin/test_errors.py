"""Unexpected errors leave as a 500 envelope, without the exception's text."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from onestack.admin import errors


def failing_app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail /etc/onestack")

    return app


async def test_unexpected_error_is_500_envelope(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = httpx.ASGITransport(app=failing_app())
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test"
        ) as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "OPERATION_FAILED"
    assert "secret" not in response.text
    assert "RuntimeError" not in response.text
    logged = [
        r for r in caplog.records if r.getMessage().startswith("unexpected error")
    ]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
