"""The server config: read, update, reload, reset, export and import."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, Body, Depends, File, UploadFile
from fastapi.responses import JSONResponse

from onestack import config as config_module
from onestack.admin.app import AdminState, get_state
from onestack.admin.errors import INVALID_CONFIG, OPERATION_FAILED, ApiError
from onestack.config import REDACTED, Config, ConfigError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["config"])

EXPORT_FILENAME = "onestack-config.json"


def invalid_config(exc: ConfigError) -> ApiError:
    """A 400 INVALID_CONFIG naming the first bad key and listing them all."""
    first = exc.errors[0]["field"] if exc.errors else "(root)"
    return ApiError(
        400, INVALID_CONFIG, str(exc), {"field": first, "errors": exc.errors}
    )


def restore_redacted(update: dict[str, Any], current: Config) -> dict[str, Any]:
    """Put back secrets that ``update`` carries in their redacted form.

    A config read from GET /api/config or the export and sent back unchanged
    must not replace the database password with the placeholder. The admin
    password placeholder is handled by ``Config.hash_secrets``.
    """
    database = update.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str):
        if (
            REDACTED in database["url"]
            and database["url"] == current.redacted()["database"]["url"]
        ):
            update = {**update, "database": {**database, "url": current.database.url}}
    return update


async def apply(state: AdminState, new: Config, action: str) -> dict[str, Any]:
    """Store ``new``, apply it to the modules, and build the answer.

    A module that fails to take the new settings is a 500 OPERATION_FAILED;
    the config is stored all the same, and the answer says so.
    """
    try:
        failures = await state.replace_config(new)
    except ConfigError as exc:
        raise invalid_config(exc) from None
    redacted = new.redacted()
    if failures:
        raise ApiError(
            500,
            OPERATION_FAILED,
            f"config {action} and saved, but applying it failed: "
            + "; ".join(failures),
            {"config": redacted, "failures": failures},
        )
    return {"success": True, "config": redacted}


@router.get("/config")
async def get_config(state: AdminState = Depends(get_state)) -> dict[str, Any]:
    return state.config.redacted()


@router.put("/config")
async def update_config(
    update: dict[str, Any] = Body(..., description="a partial config, deep-merged"),
    state: AdminState = Depends(get_state),
) -> dict[str, Any]:
    current = state.config
    try:
        # Hashing a new admin password takes tens of milliseconds.
        new = await asyncio.to_thread(
            config_module.merge_update, current, restore_redacted(update, current)
        )
    except ConfigError as exc:
        raise invalid_config(exc) from None
    logger.info(
        "config updated through the API: %s", ", ".join(sorted(update)) or "no keys"
    )
    return await apply(state, new, "updated")


@router.post("/config/reload")
async def reload_config(state: AdminState = Depends(get_state)) -> dict[str, Any]:
    try:
        new = await asyncio.to_thread(config_module.load, state.data_dir)
    except ConfigError as exc:
        raise invalid_config(exc) from None
    logger.info("config reloaded from %s", config_module.config_path(state.data_dir))
    return await apply(state, new, "reloaded")


@router.post("/config/reset")
async def reset_config(state: AdminState = Depends(get_state)) -> dict[str, Any]:
    """Restore the defaults, keeping the admin panel section and the database.

    The admin panel section holds the credentials and the address this API
    is reached on; the database URL says where every stored resource lives.
    Resetting either would lock the caller out or orphan the data.
    """
    current = state.config
    new = Config()
    new.server.adminPanel = current.server.adminPanel.model_copy(deep=True)
    new.database = current.database.model_copy(deep=True)
    logger.info("config reset to the defaults through the API")
    return await apply(state, new, "reset")


@router.get("/config/export")
async def export_config(state: AdminState = Depends(get_state)) -> JSONResponse:
    return JSONResponse(
        state.config.redacted(),
        headers={"Content-Disposition": f'attachment; filename="{EXPORT_FILENAME}"'},
    )


def _parse_import(raw: bytes, current: Config) -> Config:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            400,
            INVALID_CONFIG,
            f"file: not a JSON document ({exc})",
            {"field": "file"},
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400, INVALID_CONFIG, "file: must hold a JSON object", {"field": "file"}
        )
    # A file may be partial, like config.json itself: it is merged over the
    # defaults, not over the running config. A file without an admin password
    # keeps the stored one rather than falling back to the default password.
    data = restore_redacted(data, current)
    server = data.get("server", {})
    admin = server.get("adminPanel", {}) if isinstance(server, dict) else None
    # Sections of the wrong type are left for validation to report.
    if isinstance(admin, dict) and "password" not in admin:
        data = config_module.deep_merge(
            data, {"server": {"adminPanel": {"password": REDACTED}}}
        )
    try:
        new = config_module.validate(
            config_module.deep_merge(Config().model_dump(mode="json"), data)
        )
        new.hash_secrets(previous=current)
    except ConfigError as exc:
        raise invalid_config(exc) from None
    return new


@router.post("/config/import")
async def import_config(
    file: UploadFile = File(
        ..., description="a config JSON file, as the export writes it"
    ),
    state: AdminState = Depends(get_state),
) -> dict[str, Any]:
    raw = await file.read()
    new = await asyncio.to_thread(_parse_import, raw, state.config)
    logger.info("config imported from the uploaded file %r", file.filename)
    return await apply(state, new, "imported")
