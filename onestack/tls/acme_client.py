"""An ACME (RFC 8555) client for HTTP-01 validation, on the ``acme`` package.

The account key is created once and kept, with the account URL, in
``DATA_DIR/acme/account.json`` (mode 0600). Each HTTP-01 key authorization
is written to ``DATA_DIR/acme/challenges/<token>``; the http module serves
that file at ``/.well-known/acme-challenge/<token>`` (``read_challenge``).

The ``acme`` package is synchronous (it uses ``requests``), so
``AcmeIssuer.issue`` blocks: callers run it in a thread.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import josepy
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives.asymmetric import ec

from onestack.config import AcmeConfig
from onestack.tls.certificates import load_chain, private_key_pem
from onestack.tls.selfsigned import IssuedCertificate

logger = logging.getLogger(__name__)

ACCOUNT_FILENAME = "account.json"
USER_AGENT = "OneStack"
# How long one order may take, from the new-order request to the download.
ORDER_TIMEOUT = timedelta(seconds=90)
NETWORK_TIMEOUT = 30

# RFC 8555 section 8.1: a token is base64url, so it is also a safe file name.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


class AcmeError(Exception):
    """A failed order; the message names the step and the reason."""


def acme_dir(data_dir: Path) -> Path:
    return data_dir / "acme"


def challenge_dir(data_dir: Path) -> Path:
    return acme_dir(data_dir) / "challenges"


def read_challenge(data_dir: Path, token: str) -> bytes | None:
    """Return the key authorization for an HTTP-01 token, or None if unknown.

    A token that is not base64url is unknown, so a request path can never
    name a file outside the challenge folder.
    """
    if not TOKEN_PATTERN.match(token):
        return None
    try:
        return (challenge_dir(data_dir) / token).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _write_private(path: Path, text: str) -> None:
    """Write a file atomically with mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class AcmeAccount:
    """The account key and, once registered, the account URL per directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = acme_dir(data_dir) / ACCOUNT_FILENAME
        self.key: josepy.JWKEC
        self.uris: dict[str, str] = {}
        self._load_or_create()

    def _load_or_create(self) -> None:
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            key = josepy.JWK.from_json(data["key"])
            if not isinstance(key, josepy.JWKEC):
                raise AcmeError(
                    f"{self.path}: the account key is not an EC key; "
                    "move the file away to create a new account"
                )
            self.key = key
            self.uris = dict(data.get("accounts", {}))
            return
        self.key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self.save()
        logger.info("created ACME account key in %s", self.path)

    def save(self) -> None:
        data = {"key": self.key.to_json(), "accounts": self.uris}
        _write_private(self.path, json.dumps(data, indent=2) + "\n")


class AcmeIssuer:
    """Orders certificates from one ACME directory with HTTP-01 challenges."""

    def __init__(self, config: AcmeConfig, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.account = AcmeAccount(data_dir)

    def issue(self, names: Sequence[str]) -> IssuedCertificate:
        """Order, validate, finalize and download a certificate for ``names``.

        Blocks for up to about 90 seconds; raises AcmeError when the order fails.
        """
        try:
            return self._issue(list(names))
        except AcmeError:
            raise
        except messages.Error as exc:
            raise AcmeError(f"the ACME server rejected the request: {exc}") from exc
        except errors.ValidationError as exc:
            raise AcmeError(
                f"challenge validation failed: {_failed_challenges(exc)}"
            ) from exc
        except errors.TimeoutError as exc:
            raise AcmeError("the order did not complete in time") from exc
        except errors.Error as exc:
            raise AcmeError(f"ACME error: {exc}") from exc
        except requests.RequestException as exc:
            raise AcmeError(f"cannot reach {self.config.directoryUrl}: {exc}") from exc
        except OSError as exc:
            raise AcmeError(f"cannot write an ACME file: {exc}") from exc

    def _trust(self) -> bool | str:
        """Return what ``requests`` verifies the ACME server's TLS against.

        ``caBundle`` is a path to a PEM file, or the PEM text itself, which
        is then written to ``DATA_DIR/acme/ca-bundle.pem``. Empty means the
        system trust store.
        """
        bundle = self.config.caBundle.strip()
        if not bundle:
            return True
        if bundle.startswith("-----BEGIN"):
            path = acme_dir(self.data_dir) / "ca-bundle.pem"
            _write_private(path, bundle + "\n")
            return str(path)
        return bundle

    def _client(self) -> client.ClientV2:
        verify = self._trust()
        network = client.ClientNetwork(
            self.account.key,
            alg=josepy.ES256,
            verify_ssl=verify,  # type: ignore[arg-type]
            user_agent=USER_AGENT,
            timeout=NETWORK_TIMEOUT,
        )
        directory = client.ClientV2.get_directory(self.config.directoryUrl, network)
        return client.ClientV2(directory, network)

    def _register(self, acme: client.ClientV2) -> None:
        """Use the stored account for this directory, or create one."""
        url = self.config.directoryUrl
        uri = self.account.uris.get(url)
        if uri is not None:
            acme.net.account = messages.RegistrationResource(
                uri=uri, body=messages.Registration()
            )
            return
        contact: dict[str, Any] = {"terms_of_service_agreed": True}
        if self.config.email:
            contact["email"] = self.config.email
        try:
            account = acme.new_account(messages.NewRegistration.from_data(**contact))
            uri = account.uri
        except errors.ConflictError as exc:
            # RFC 8555 section 7.3.1: the key already has an account there.
            uri = exc.location
            acme.net.account = messages.RegistrationResource(
                uri=uri, body=messages.Registration()
            )
        self.account.uris[url] = uri
        self.account.save()
        logger.info("registered ACME account %s at %s", uri, url)

    def _issue(self, names: list[str]) -> IssuedCertificate:
        acme = self._client()
        self._register(acme)

        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = private_key_pem(key)
        csr_pem = crypto_util.make_csr(key_pem.encode("ascii"), names)
        try:
            order = acme.new_order(csr_pem)
        except messages.Error as exc:
            if exc.code != "accountDoesNotExist":
                raise
            # The CA forgot the account (a test CA restarted): register again.
            self.account.uris.pop(self.config.directoryUrl, None)
            self._register(acme)
            order = acme.new_order(csr_pem)

        tokens = []
        try:
            for authorization in order.authorizations:
                if authorization.body.status == messages.STATUS_VALID:
                    continue
                tokens.append(self._answer_http01(acme, authorization))
            deadline = datetime.now() + ORDER_TIMEOUT
            order = acme.poll_and_finalize(order, deadline)
        finally:
            for token in tokens:
                (challenge_dir(self.data_dir) / token).unlink(missing_ok=True)

        chain_pem = order.fullchain_pem
        load_chain(chain_pem)  # an invalid chain from the CA fails here, not in TLS
        logger.info("ACME certificate issued for %s", ", ".join(names))
        return IssuedCertificate(cert_pem=chain_pem, key_pem=key_pem)

    def _answer_http01(
        self, acme: client.ClientV2, authorization: messages.AuthorizationResource
    ) -> str:
        """Publish the HTTP-01 key authorization and tell the CA to check it."""
        identifier = authorization.body.identifier.value
        for challenge_body in authorization.body.challenges:
            if isinstance(challenge_body.chall, challenges.HTTP01):
                break
        else:
            raise AcmeError(f"the CA offers no http-01 challenge for {identifier}")

        token = challenge_body.chall.encode("token")
        if not TOKEN_PATTERN.match(token):
            raise AcmeError(f"the CA sent an invalid challenge token for {identifier}")
        response, validation = challenge_body.response_and_validation(acme.net.key)
        path = challenge_dir(self.data_dir) / token
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(validation, encoding="ascii")
        acme.answer_challenge(challenge_body, response)
        logger.debug("http-01 challenge ready for %s with token %s", identifier, token)
        return token


def _failed_challenges(exc: errors.ValidationError) -> str:
    reasons = []
    for authorization in exc.failed_authzrs:
        identifier = authorization.body.identifier.value
        for challenge_body in authorization.body.challenges:
            if challenge_body.error is not None:
                detail = challenge_body.error.detail or challenge_body.error.typ
                reasons.append(f"{identifier}: {detail}")
    return "; ".join(reasons) or "no reason given"
