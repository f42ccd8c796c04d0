"""Virtual hosts: list, create, change, delete, and their traffic stats."""

from __future__ import annotations

import asyncio
import html
import logging
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from onestack.admin.app import AdminState, get_state
from onestack.admin.errors import conflict, invalid, not_found
from onestack.admin.hostnames import InvalidHostname, normalize_hostname
from onestack.admin.params import RowIdPath
from onestack.store import vhosts as vhost_store
from onestack.store.vhosts import CertificateSummary, NameTaken, Vhost, VhostStats

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["vhosts"])

SITES_DIRNAME = "sites"
MAX_ALIASES = 100
MAX_PATH_LENGTH = 4096

PLACEHOLDER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{domain}</title></head>
<body>
<h1>{domain}</h1>
<p>This site is served by OneStack. Replace this index.html with your own pages.</p>
</body>
</html>
"""


class VhostCreate(BaseModel):
    """The body of POST /api/vhosts."""

    model_config = ConfigDict(extra="forbid", strict=True)

    domain: str = Field(max_length=300)
    aliases: list[str] = Field(default_factory=list)
    documentRoot: str | None = None
    enabled: bool = True
    ssl: bool = False
    redirectToHttps: bool = False


class VhostUpdate(BaseModel):
    """The body of PUT /api/vhosts/:id; absent fields keep their value."""

    model_config = ConfigDict(extra="forbid", strict=True)

    domain: str | None = Field(default=None, max_length=300)
    aliases: list[str] | None = None
    documentRoot: str | None = None
    enabled: bool | None = None
    ssl: bool | None = None
    redirectToHttps: bool | None = None


def iso_time(value: datetime | None) -> str | None:
    """Return a UTC time as the reference writes it: 2025-10-13T10:30:00.000Z."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stats_json(stats: VhostStats) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "bytesServed": stats.bytes_served,
        "lastRequest": iso_time(stats.last_request),
        "averageResponseTime": round(stats.average_response_ms, 2),
    }


def vhost_json(
    vhost: Vhost,
    stats: VhostStats | None = None,
    certificate: CertificateSummary | None = None,
) -> dict[str, Any]:
    """Return the API's vhost object; ``stats`` is left out when None."""
    data: dict[str, Any] = {
        "id": vhost.id,
        "domain": vhost.domain,
        "aliases": vhost.aliases,
        "documentRoot": vhost.document_root,
        "enabled": vhost.enabled,
        "ssl": vhost.ssl,
        "redirectToHttps": vhost.redirect_to_https,
        "createdAt": iso_time(vhost.created_at),
        "updatedAt": iso_time(vhost.updated_at),
    }
    if vhost.ssl:
        data["certificate"] = (
            {
                "source": certificate.source,
                "names": certificate.names,
                "notAfter": iso_time(certificate.not_after),
            }
            if certificate is not None
            else None
        )
    if stats is not None:
        data["stats"] = stats_json(stats)
    return data


def _event_data(vhost: Vhost) -> dict[str, Any]:
    data = vhost_json(vhost)
    data.pop("certificate", None)
    return data


def _hostname(field: str, value: str) -> str:
    try:
        return normalize_hostname(value)
    except InvalidHostname as exc:
        raise invalid(field, str(exc)) from None


def _names(domain: str, aliases: list[str]) -> tuple[str, list[str]]:
    """Validate and normalise a domain and its aliases; reject repeats."""
    domain = _hostname("domain", domain)
    if len(aliases) > MAX_ALIASES:
        raise invalid("aliases", f"at most {MAX_ALIASES} aliases are allowed")
    seen = {domain}
    normalized: list[str] = []
    for index, alias in enumerate(aliases):
        name = _hostname(f"aliases.{index}", alias)
        if name in seen:
            raise invalid(
                f"aliases.{index}",
                f"{name} is listed twice (as the domain or an alias)",
            )
        seen.add(name)
        normalized.append(name)
    return domain, normalized


def _user_document_root(state: AdminState, value: str) -> str:
    if "\0" in value:
        raise invalid("documentRoot", "must not contain NUL characters")
    if len(value) > MAX_PATH_LENGTH:
        raise invalid("documentRoot", f"must be at most {MAX_PATH_LENGTH} characters")
    if not os.path.isabs(value):
        raise invalid("documentRoot", f"{value!r} is not an absolute path")
    path = os.path.normpath(value)
    if os.path.exists(path) and not os.path.isdir(path):
        raise invalid("documentRoot", f"{path} exists and is not a directory")
    # The data directory contains the database, the config and the private
    # keys: a site must not publish it, whole or in part, outside sites/.
    resolved = Path(path).resolve()
    data_dir = state.data_dir.resolve()
    if data_dir.is_relative_to(resolved) or (
        resolved.is_relative_to(data_dir)
        and not resolved.is_relative_to(sites_dir(state))
    ):
        raise invalid(
            "documentRoot",
            f"{path} would publish the data directory {data_dir}; choose a folder "
            f"outside it or under {sites_dir(state)}",
        )
    return path


def sites_dir(state: AdminState) -> Path:
    return (state.data_dir / SITES_DIRNAME).resolve()


def _create_managed_root(
    state: AdminState, domain: str, roots_in_use: set[str]
) -> tuple[Path, bool]:
    """Create DATA_DIR/sites/DOMAIN with a placeholder page.

    Returns the folder and whether this call created it. An existing folder
    left by a vhost deleted without its files is reused as it is. A folder
    still used by another vhost (one renamed since) is not shared: the new
    vhost gets DOMAIN_2, DOMAIN_3 and so on, names no hostname can take.
    """
    root = sites_dir(state) / domain
    suffix = 2
    while str(root) in roots_in_use:
        root = sites_dir(state) / f"{domain}_{suffix}"
        suffix += 1
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    index = root / "index.html"
    if created or not index.exists():
        index.write_text(
            PLACEHOLDER_PAGE.format(domain=html.escape(domain)), encoding="utf-8"
        )
    return root, created


def _is_managed_path(state: AdminState, path: str) -> bool:
    """Tell whether ``path`` is a folder directly under DATA_DIR/sites."""
    resolved = Path(path).resolve()
    return resolved.parent == sites_dir(state) and resolved.is_dir()


async def _views(state: AdminState, items: list[Vhost]) -> list[dict[str, Any]]:
    stats = await vhost_store.stats_by_vhost(state.store)
    certificates = await vhost_store.current_certificates(state.store, items)
    return [
        vhost_json(vhost, stats.get(vhost.id, VhostStats()), certificates.get(vhost.id))
        for vhost in items
    ]


async def _find(state: AdminState, vhost_id: int) -> Vhost:
    vhost = await vhost_store.get_vhost(state.store, vhost_id)
    if vhost is None:
        raise not_found("vhost", vhost_id)
    return vhost


def _conflict(taken: NameTaken, domain: str, aliases: list[str]) -> Exception:
    field = "domain"
    if taken.name in aliases:
        field = f"aliases.{aliases.index(taken.name)}"
    elif taken.name != domain:
        field = "aliases"
    owner = f" (id {taken.vhost_id})" if taken.vhost_id is not None else ""
    return conflict(
        field, f"{field}: {taken.name} is already used by another vhost{owner}"
    )


@router.get("/vhosts")
async def list_vhosts(state: AdminState = Depends(get_state)) -> list[dict[str, Any]]:
    return await _views(state, await vhost_store.list_vhosts(state.store))


@router.get("/vhosts/{vhost_id}")
async def get_vhost(
    vhost_id: RowIdPath, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    return (await _views(state, [await _find(state, vhost_id)]))[0]


@router.post("/vhosts", status_code=201)
async def create_vhost(
    body: VhostCreate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    domain, aliases = _names(body.domain, body.aliases)
    if body.documentRoot is not None:
        document_root, managed, created_root = (
            _user_document_root(state, body.documentRoot),
            False,
            None,
        )
    else:
        in_use = {v.document_root for v in await vhost_store.list_vhosts(state.store)}
        root, created = await asyncio.to_thread(
            _create_managed_root, state, domain, in_use
        )
        document_root, managed, created_root = (
            str(root),
            True,
            root if created else None,
        )

    try:
        vhost = await vhost_store.create_vhost(
            state.store,
            domain=domain,
            aliases=aliases,
            document_root=document_root,
            managed_root=managed,
            enabled=body.enabled,
            ssl=body.ssl,
            redirect_to_https=body.redirectToHttps,
        )
    except NameTaken as taken:
        if created_root is not None:
            await asyncio.to_thread(shutil.rmtree, created_root, True)
        raise _conflict(taken, domain, aliases) from None

    logger.info(
        "vhost %d created for %s (root %s)", vhost.id, vhost.domain, vhost.document_root
    )
    await state.hub.publish("vhostCreated", _event_data(vhost))
    return (await _views(state, [vhost]))[0]


@router.put("/vhosts/{vhost_id}")
async def update_vhost(
    vhost_id: RowIdPath, body: VhostUpdate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    current = await _find(state, vhost_id)
    for field in body.model_fields_set:
        if getattr(body, field) is None:
            raise invalid(field, "must not be null")

    changes: dict[str, Any] = {}
    if body.domain is not None or body.aliases is not None:
        domain, aliases = _names(
            body.domain if body.domain is not None else current.domain,
            body.aliases if body.aliases is not None else current.aliases,
        )
        changes["domain"], changes["aliases"] = domain, aliases
    if body.documentRoot is not None:
        path = _user_document_root(state, body.documentRoot)
        if path != current.document_root:
            changes["document_root"] = path
            changes["managed_root"] = False
    for field, column in (
        ("enabled", "enabled"),
        ("ssl", "ssl"),
        ("redirectToHttps", "redirect_to_https"),
    ):
        value = getattr(body, field)
        if value is not None:
            changes[column] = value

    try:
        vhost = await vhost_store.update_vhost(state.store, vhost_id, changes)
    except NameTaken as taken:
        raise _conflict(
            taken,
            changes.get("domain", current.domain),
            changes.get("aliases", current.aliases),
        ) from None
    if vhost is None:
        raise not_found("vhost", vhost_id)

    logger.info(
        "vhost %d (%s) updated: %s",
        vhost.id,
        vhost.domain,
        ", ".join(sorted(changes)) or "no change",
    )
    await state.hub.publish("vhostUpdated", _event_data(vhost))
    return {"success": True, "vhost": (await _views(state, [vhost]))[0]}


@router.delete("/vhosts/{vhost_id}")
async def delete_vhost(
    vhost_id: RowIdPath,
    deleteFiles: bool = Query(
        False, description="also delete a document root OneStack created"
    ),
    state: AdminState = Depends(get_state),
) -> dict[str, Any]:
    vhost = await vhost_store.delete_vhost(state.store, vhost_id)
    if vhost is None:
        raise not_found("vhost", vhost_id)

    files_deleted = False
    if deleteFiles:
        # Only a folder that OneStack created under DATA_DIR/sites is deleted.
        # A root the user named stays, whatever the query requests.
        remaining = await vhost_store.list_vhosts(state.store)
        shared = any(v.document_root == vhost.document_root for v in remaining)
        if shared:
            logger.info(
                "vhost %d: kept %s because another vhost serves it",
                vhost.id,
                vhost.document_root,
            )
        elif vhost.managed_root and _is_managed_path(state, vhost.document_root):
            await asyncio.to_thread(shutil.rmtree, vhost.document_root)
            files_deleted = True
        else:
            logger.info(
                "vhost %d: kept %s because OneStack did not create it",
                vhost.id,
                vhost.document_root,
            )

    logger.info(
        "vhost %d (%s) deleted%s",
        vhost.id,
        vhost.domain,
        " with its files" if files_deleted else "",
    )
    await state.hub.publish(
        "vhostDeleted",
        {"id": vhost.id, "domain": vhost.domain, "filesDeleted": files_deleted},
    )
    return {"success": True}


@router.get("/vhosts/{vhost_id}/stats")
async def vhost_stats(
    vhost_id: RowIdPath, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    await _find(state, vhost_id)
    return stats_json(await vhost_store.get_stats(state.store, vhost_id))
