"""The API's one error envelope: ``{"error", "code", "details"}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

AUTH_CHALLENGE = {"WWW-Authenticate": 'Basic realm="OneStack"'}

# Error codes of the API reference, by the status they usually go with.
INVALID_REQUEST = "INVALID_REQUEST"
INVALID_CONFIG = "INVALID_CONFIG"
AUTH_REQUIRED = "AUTH_REQUIRED"
AUTH_FAILED = "AUTH_FAILED"
NOT_FOUND = "NOT_FOUND"
ALREADY_EXISTS = "ALREADY_EXISTS"
MODULE_NOT_RUNNING = "MODULE_NOT_RUNNING"
OPERATION_FAILED = "OPERATION_FAILED"
RATE_LIMITED = "RATE_LIMITED"

_CODE_BY_STATUS = {
    400: INVALID_REQUEST,
    401: AUTH_REQUIRED,
    404: NOT_FOUND,
    405: INVALID_REQUEST,
    409: ALREADY_EXISTS,
    413: INVALID_REQUEST,
    415: INVALID_REQUEST,
    429: RATE_LIMITED,
    503: MODULE_NOT_RUNNING,
}


class ApiError(Exception):
    """An error answered to the client in the envelope; the message is public."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers


def not_found(what: str, key: object) -> ApiError:
    return ApiError(404, NOT_FOUND, f"{what} {key!s} not found", {"id": str(key)})


def invalid(field: str, message: str) -> ApiError:
    """Return a 400 INVALID_REQUEST error naming the field at fault."""
    return ApiError(400, INVALID_REQUEST, f"{field}: {message}", {"field": field})


def conflict(field: str, message: str) -> ApiError:
    return ApiError(409, ALREADY_EXISTS, message, {"field": field})


def envelope(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": message, "code": code, "details": details or {}},
        status_code=status,
        headers=headers,
    )


def _field_name(location: tuple[Any, ...]) -> str:
    # FastAPI prefixes the location with "body", "query" or "path".
    parts = [str(part) for part in location]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "(body)"


def install(app: FastAPI) -> None:
    """Make every error, ours or the framework's, leave in the envelope."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(
        _request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        errors = []
        for error in exc.errors():
            field = _field_name(tuple(error.get("loc", ())))
            message = error.get("msg", "invalid value")
            if error.get("type") == "json_invalid":
                field, message = (
                    "(body)",
                    "malformed JSON: "
                    + str(error.get("ctx", {}).get("error", "parse error")),
                )
            errors.append({"field": field, "message": message})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        details = {
            "field": errors[0]["field"] if errors else "(body)",
            "errors": errors,
        }
        return envelope(400, INVALID_REQUEST, f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(
        _request: Request, exc: StarletteHTTPException
    ) -> JSONResponse:
        code = _CODE_BY_STATUS.get(exc.status_code, OPERATION_FAILED)
        return envelope(exc.status_code, code, str(exc.detail), headers=exc.headers)

    app.add_middleware(UnexpectedErrors)


class UnexpectedErrors:
    """Answer an unhandled exception with a 500 envelope and log it once.

    A handler registered for ``Exception`` would still let Starlette re-raise
    the error to uvicorn, which logs the traceback a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception(
                "unexpected error on %s %s", scope["method"], scope["path"]
            )
            if started:
                return
            response = envelope(
                500, OPERATION_FAILED, "internal error; the server log has the details"
            )
            await response(scope, receive, send)
