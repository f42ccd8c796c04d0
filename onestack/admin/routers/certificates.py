"""A vhost's TLS certificate: show it, upload one, renew by ACME, delete."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from onestack.admin.app import AdminState, get_state
from onestack.admin.errors import OPERATION_FAILED, ApiError, invalid, not_found
from onestack.admin.params import RowIdPath
from onestack.store import certificates as certificate_store
from onestack.store.certificates import StoredCertificate, TlsVhost
from onestack.tls.acme_client import AcmeError
from onestack.tls.certificates import (
    SOURCE_ACME,
    SOURCE_UPLOADED,
    CertificateError,
    chain_info,
)
from onestack.tls.manager import (
    CERTIFICATE_ISSUED,
    CertificateManager,
    certificate_event,
    format_time,
)
from onestack.tls.validation import validate_upload

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["certificates"])

CERTIFICATE_DELETED = "certificateDeleted"
# A PEM bundle of ten 4096-bit RSA certificates stays well under this.
MAX_PEM_LENGTH = 64 * 1024


class CertificateUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    certificate: str = Field(min_length=1, max_length=MAX_PEM_LENGTH)
    privateKey: str = Field(min_length=1, max_length=MAX_PEM_LENGTH)


def certificate_json(certificate: StoredCertificate) -> dict[str, Any]:
    """Return the API form of a stored certificate (the vhost response uses it too)."""
    info = chain_info(certificate.cert_pem)
    return {
        "source": certificate.source,
        "names": certificate.names,
        "notBefore": format_time(certificate.not_before),
        "notAfter": format_time(certificate.not_after),
        "issuer": info.issuer,
    }


async def find_vhost(state: AdminState, vhost_id: int) -> TlsVhost:
    vhost = await certificate_store.get_vhost(state.store, vhost_id)
    if vhost is None:
        raise not_found("vhost", vhost_id)
    return vhost


@router.get("/vhosts/{vhost_id}/certificate")
async def get_certificate(
    vhost_id: RowIdPath, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    vhost = await find_vhost(state, vhost_id)

    certificate = await certificate_store.find_best_certificate(state.store, vhost)
    if certificate is None:
        raise not_found("certificate of vhost", vhost_id)
    return certificate_json(certificate)


@router.put("/vhosts/{vhost_id}/certificate")
async def upload_certificate(
    vhost_id: RowIdPath, body: CertificateUpload, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    vhost = await find_vhost(state, vhost_id)

    try:
        info = validate_upload(body.certificate, body.privateKey, vhost.names)
    except CertificateError as exc:
        field, _, reason = str(exc).partition(": ")
        raise invalid(field, reason) from None

    # The owner chose this certificate, so ACME stops competing with it:
    # an ACME certificate would otherwise be preferred.
    await certificate_store.delete_certificates(state.store, vhost.id, SOURCE_ACME)
    certificate_id = await certificate_store.add_certificate(
        state.store,
        vhost.id,
        SOURCE_UPLOADED,
        info.names,
        info.not_before,
        info.not_after,
        body.certificate.strip() + "\n",
        body.privateKey.strip() + "\n",
        replace=True,
    )
    certificate = await _stored(state, vhost.id, certificate_id)
    logger.info("certificate uploaded for vhost %d (%s)", vhost.id, vhost.domain)
    await state.hub.publish(CERTIFICATE_ISSUED, certificate_event(certificate))
    return {"success": True, "certificate": certificate_json(certificate)}


@router.post("/vhosts/{vhost_id}/certificate/renew")
async def renew_certificate(
    vhost_id: RowIdPath, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    vhost = await find_vhost(state, vhost_id)
    if not vhost.ssl:
        raise invalid("ssl", f"vhost {vhost.domain} does not have ssl enabled")
    if not state.config.modules.https.acme.enabled:
        raise invalid(
            "modules.https.acme.enabled",
            "ACME is disabled; set it to true to order certificates",
        )

    manager = state.certificate_manager or CertificateManager(
        state.store,
        state.data_dir,
        lambda: state.config.modules.https.acme,
        state.hub.publish,
    )
    try:
        certificate = await manager.renew(vhost)
    except AcmeError as exc:
        raise ApiError(
            502, OPERATION_FAILED, f"ACME order failed: {exc}", {"vhostId": vhost_id}
        ) from None
    return {"success": True, "certificate": certificate_json(certificate)}


@router.delete("/vhosts/{vhost_id}/certificate")
async def delete_certificate(
    vhost_id: RowIdPath, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    vhost = await find_vhost(state, vhost_id)

    deleted = await certificate_store.delete_certificates(
        state.store, vhost.id, SOURCE_UPLOADED
    )
    if not deleted:
        raise not_found("uploaded certificate of vhost", vhost_id)
    logger.info("uploaded certificate of vhost %d deleted", vhost.id)
    await state.hub.publish(
        CERTIFICATE_DELETED, {"vhostId": vhost.id, "source": SOURCE_UPLOADED}
    )
    return {"success": True}


async def _stored(
    state: AdminState, vhost_id: int, certificate_id: int
) -> StoredCertificate:
    stored = await certificate_store.vhost_certificates(state.store, [vhost_id])
    return next(c for c in stored if c.id == certificate_id)
