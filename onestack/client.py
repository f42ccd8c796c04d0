"""A Python client for the OneStack admin API, on the standard library alone.

It imports nothing else from OneStack, so it can be copied into any project::

    from onestack.client import OneStackClient, OneStackError

    client = OneStackClient("http://127.0.0.1:3000", "admin", "admin123")
    vhost = client.create_vhost("example.com", aliases=["www.example.com"])
    try:
        client.create_vhost("example.com")
    except OneStackError as exc:
        assert exc.code == "ALREADY_EXISTS"
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["OneStackClient", "OneStackError"]


class OneStackError(Exception):
    """An error answer of the API: HTTP ``status``, the ``code``, ``message`` and ``details``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def _quote(value: object) -> str:
    return urllib.parse.quote(str(value), safe="")


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class OneStackClient:
    """Every endpoint of the admin API as a method; errors raise OneStackError."""

    def __init__(
        self, base_url: str, username: str, password: str, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._authorization = f"Basic {token}"
        self.timeout = timeout

    # --- transport ---------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        query: dict[str, Any] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        raw: bool = False,
    ) -> Any:
        """Send one request; return the decoded JSON (or the text with ``raw``)."""
        url = self.base_url + path
        if query:
            pairs = {
                key: str(value).lower() if isinstance(value, bool) else value
                for key, value in query.items()
                if value is not None
            }
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
                charset = response.headers.get_content_charset() or "utf-8"
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        text = payload.decode(charset)
        if raw:
            return text
        return json.loads(text) if text else None

    @staticmethod
    def _error(exc: urllib.error.HTTPError) -> OneStackError:
        payload = exc.read()
        try:
            envelope = json.loads(payload)
        except ValueError:
            envelope = None
        if isinstance(envelope, dict) and "code" in envelope:
            return OneStackError(
                exc.code,
                str(envelope.get("code")),
                str(envelope.get("error", "")),
                envelope.get("details") or {},
            )
        return OneStackError(
            exc.code,
            "HTTP_ERROR",
            payload.decode(errors="replace")[:500] or str(exc.reason),
        )

    # --- status and health -------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/api/status")

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/api/health")

    # --- config --------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return self.request("GET", "/api/config")

    def update_config(self, update: dict[str, Any]) -> dict[str, Any]:
        """Deep-merge a partial config; returns ``{success, config}``."""
        return self.request("PUT", "/api/config", update)

    def reload_config(self) -> dict[str, Any]:
        return self.request("POST", "/api/config/reload")

    def reset_config(self) -> dict[str, Any]:
        return self.request("POST", "/api/config/reset")

    def export_config(self) -> dict[str, Any]:
        return self.request("GET", "/api/config/export")

    def import_config(
        self, config: dict[str, Any] | bytes, filename: str = "config.json"
    ) -> dict[str, Any]:
        """Upload a config file (a dict is encoded as JSON) as multipart field ``file``."""
        content = config if isinstance(config, bytes) else json.dumps(config).encode()
        boundary = "onestack-" + secrets.token_hex(16)
        safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
        body = b"".join(
            [
                f"--{boundary}\r\n".encode(),
                f'Content-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'.encode(),
                b"Content-Type: application/json\r\n\r\n",
                content,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        return self.request(
            "POST",
            "/api/config/import",
            body=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )

    # --- modules -----------------------------------------------------------

    def list_modules(self) -> list[str]:
        return self.request("GET", "/api/modules")["modules"]

    def get_module(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/api/modules/{_quote(name)}")

    def start_module(self, name: str) -> dict[str, Any]:
        return self.request("POST", f"/api/modules/{_quote(name)}/start")

    def stop_module(self, name: str) -> dict[str, Any]:
        return self.request("POST", f"/api/modules/{_quote(name)}/stop")

    def reload_module(self, name: str) -> dict[str, Any]:
        return self.request("POST", f"/api/modules/{_quote(name)}/reload")

    def update_module_config(self, name: str, update: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", f"/api/modules/{_quote(name)}/config", update)

    # --- virtual hosts -----------------------------------------------------

    def list_vhosts(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/vhosts")

    def get_vhost(self, vhost_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/vhosts/{int(vhost_id)}")

    def create_vhost(self, domain: str, **fields: Any) -> dict[str, Any]:
        """Create a vhost; ``fields`` are aliases, documentRoot, enabled, ssl, redirectToHttps."""
        return self.request("POST", "/api/vhosts", {"domain": domain, **fields})

    def update_vhost(self, vhost_id: int, **fields: Any) -> dict[str, Any]:
        return self.request("PUT", f"/api/vhosts/{int(vhost_id)}", fields)

    def delete_vhost(self, vhost_id: int, delete_files: bool = False) -> dict[str, Any]:
        query = {"deleteFiles": True} if delete_files else None
        return self.request("DELETE", f"/api/vhosts/{int(vhost_id)}", query=query)

    def vhost_stats(self, vhost_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/vhosts/{int(vhost_id)}/stats")

    # --- dns ---------------------------------------------------------------

    def list_zones(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/dns/zones")

    def get_zone(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/api/dns/zones/{_quote(name)}")

    def create_zone(self, name: str, **options: Any) -> dict[str, Any]:
        """Create a zone; ``options`` are enabled, ttl, primaryNS, email, and so on."""
        return self.request(
            "POST", "/api/dns/zones", {"name": name, "options": options}
        )

    def update_zone(self, name: str, **fields: Any) -> dict[str, Any]:
        return self.request("PUT", f"/api/dns/zones/{_quote(name)}", fields)

    def delete_zone(self, name: str) -> dict[str, Any]:
        return self.request("DELETE", f"/api/dns/zones/{_quote(name)}")

    def list_records(self, zone: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/dns/zones/{_quote(zone)}/records")

    def add_record(
        self,
        zone: str,
        name: str,
        type: str,
        data: str,
        ttl: int | None = None,
        priority: int | None = None,
    ) -> dict[str, Any]:
        record = _drop_none(
            {"name": name, "type": type, "data": data, "ttl": ttl, "priority": priority}
        )
        return self.request("POST", f"/api/dns/zones/{_quote(zone)}/records", record)

    def update_record(self, record_id: int, **fields: Any) -> dict[str, Any]:
        return self.request("PUT", f"/api/dns/records/{int(record_id)}", fields)

    def delete_record(self, record_id: int) -> dict[str, Any]:
        return self.request("DELETE", f"/api/dns/records/{int(record_id)}")

    def export_zone(self, name: str) -> str:
        """Return the zone as a BIND zone file."""
        return self.request("GET", f"/api/dns/zones/{_quote(name)}/export", raw=True)

    def import_zone(self, name: str, zone_file: str) -> dict[str, Any]:
        return self.request(
            "POST", f"/api/dns/zones/{_quote(name)}/import", {"zoneFile": zone_file}
        )

    # --- mailboxes and messages --------------------------------------------

    def list_mailboxes(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/mailboxes")

    def get_mailbox(self, email: str) -> dict[str, Any]:
        return self.request("GET", f"/api/mailboxes/{_quote(email)}")

    def create_mailbox(self, email: str, **fields: Any) -> dict[str, Any]:
        """Create a mailbox; ``fields`` are name, password, quota, enabled.

        Without a password the server generates one and returns it once.
        """
        return self.request("POST", "/api/mailboxes", {"email": email, **fields})

    def update_mailbox(self, email: str, **fields: Any) -> dict[str, Any]:
        return self.request("PUT", f"/api/mailboxes/{_quote(email)}", fields)

    def delete_mailbox(
        self, email: str, delete_messages: bool = False
    ) -> dict[str, Any]:
        query = {"deleteMessages": True} if delete_messages else None
        return self.request("DELETE", f"/api/mailboxes/{_quote(email)}", query=query)

    def mailbox_stats(self, email: str) -> dict[str, Any]:
        return self.request("GET", f"/api/mailboxes/{_quote(email)}/stats")

    def list_messages(
        self,
        email: str,
        folder: str | None = None,
        unread_only: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        query = {
            "folder": folder,
            "unreadOnly": unread_only,
            "limit": limit,
            "offset": offset,
        }
        return self.request(
            "GET", f"/api/mailboxes/{_quote(email)}/messages", query=query
        )

    def get_message(self, message_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/messages/{int(message_id)}")

    def mark_message_read(self, message_id: int, read: bool = True) -> dict[str, Any]:
        return self.request(
            "PUT", f"/api/messages/{int(message_id)}/read", {"read": read}
        )

    def move_message(self, message_id: int, folder: str) -> dict[str, Any]:
        return self.request(
            "PUT", f"/api/messages/{int(message_id)}/move", {"folder": folder}
        )

    def delete_message(self, message_id: int) -> dict[str, Any]:
        return self.request("DELETE", f"/api/messages/{int(message_id)}")

    def send_email(
        self,
        from_addr: str,
        to: str,
        subject: str,
        body: str,
        html: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        message = _drop_none(
            {
                "from": from_addr,
                "to": to,
                "subject": subject,
                "body": body,
                "html": html,
                "headers": headers,
            }
        )
        return self.request("POST", "/api/send-email", message)

    def email_stats(self) -> dict[str, Any]:
        return self.request("GET", "/api/email/stats")

    # --- sftp accounts -----------------------------------------------------

    def list_ssh_users(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/ssh/users")

    def get_ssh_user(self, username: str) -> dict[str, Any]:
        return self.request("GET", f"/api/ssh/users/{_quote(username)}")

    def create_ssh_user(
        self, username: str, vhost_id: int, **fields: Any
    ) -> dict[str, Any]:
        """Create an SFTP account; ``fields`` are password, publicKeys, enabled.

        Without a password the server generates one and returns it once.
        """
        return self.request(
            "POST",
            "/api/ssh/users",
            {"username": username, "vhostId": vhost_id, **fields},
        )

    def update_ssh_user(self, username: str, **fields: Any) -> dict[str, Any]:
        return self.request("PUT", f"/api/ssh/users/{_quote(username)}", fields)

    def delete_ssh_user(self, username: str) -> dict[str, Any]:
        return self.request("DELETE", f"/api/ssh/users/{_quote(username)}")
