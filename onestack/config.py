"""Config models, defaults, loading, deep merge and atomic saving.

The config is one JSON document, ``DATA_DIR/config.json``, in the shape of the
admin API reference (camelCase keys). Every model forbids unknown keys, so a
typo is reported instead of silently ignored.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from onestack import passwords

logger = logging.getLogger(__name__)

CONFIG_FILENAME = "config.json"
REDACTED = "********"
DEFAULT_ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "admin123"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def _check_host(value: str) -> str:
    """Accept an IP address or a DNS hostname (RFC 1123 letters, digits, hyphens)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is neither an IP address nor a hostname"
            ) from None
    return value


def _check_database_url(value: str) -> str:
    """Accept an empty URL (SQLite in the data directory) or one the store can open."""
    if not value:
        return value
    # Imported here so that `onestack --help` does not load SQLAlchemy.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        driver = make_url(value).drivername
    except ArgumentError:
        raise ValueError("is not a SQLAlchemy database URL") from None
    if driver not in DATABASE_DRIVERS:
        raise ValueError(
            f"driver {driver!r} is not supported; use one of {', '.join(DATABASE_DRIVERS)}"
        )
    return value


Host = Annotated[str, AfterValidator(_check_host)]


class StrictModel(BaseModel):
    """A config section: unknown keys and loose types ("80" for 80) are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)


class RateLimitConfig(StrictModel):
    requestsPerMinute: int = Field(600, ge=1, le=1_000_000)
    failedLoginsBeforeDelay: int = Field(5, ge=1, le=1000)
    failedLoginsBeforeBlock: int = Field(10, ge=1, le=1000)
    blockSeconds: int = Field(60, ge=1, le=86_400)


class AdminPanelConfig(StrictModel):
    enabled: bool = True
    host: Host = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    username: str = Field(DEFAULT_ADMIN_USERNAME, min_length=1, max_length=64)
    # An Argon2id hash once loaded; a clear value written by a user is hashed
    # by ``Config.hash_secrets`` before the config is stored.
    password: str = Field(DEFAULT_ADMIN_PASSWORD, min_length=1)
    maxBodyBytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024**3)
    rateLimit: RateLimitConfig = RateLimitConfig()


class ServerConfig(StrictModel):
    adminPanel: AdminPanelConfig = AdminPanelConfig()


class ModuleConfig(StrictModel):
    """Settings every module has."""

    enabled: bool = True
    host: Host = "0.0.0.0"
    workers: int = Field(1, ge=1, le=64)

    def listen_ports(self) -> list[int]:
        """Return the TCP or UDP ports this module binds."""
        return [self.port]  # type: ignore[attr-defined]


class HttpLimits(StrictModel):
    """Limits of the http and https modules, each logged when a client hits it.

    Timeouts are in seconds: ``headerTimeout`` bounds the time from a
    request's first byte to the end of its headers (slow-loris clients),
    ``idleTimeout`` a keep-alive connection without requests and a stalled
    transfer. ``maxConnections`` is per worker process; sizes are in bytes.
    """

    headerTimeout: float = Field(10.0, gt=0, le=3600)
    idleTimeout: float = Field(30.0, gt=0, le=3600)
    maxConnections: int = Field(10_000, ge=1, le=1_000_000)
    maxRequestLine: int = Field(8192, ge=256, le=1024 * 1024)
    maxHeaderSize: int = Field(16384, ge=1024, le=1024 * 1024)


class WebConfig(ModuleConfig):
    """Settings the http and https modules share."""

    limits: HttpLimits = HttpLimits()
    # Combined-format access log per vhost in DATA_DIR/logs/<domain>.access.log,
    # rotated when it reaches accessLogMaxBytes, keeping accessLogBackups files.
    accessLog: bool = True
    accessLogMaxBytes: int = Field(10 * 1024 * 1024, ge=1024)
    accessLogBackups: int = Field(5, ge=0, le=100)


class HttpConfig(WebConfig):
    port: int = Field(8080, ge=1, le=65535)
    # The port redirectToHttps sends clients to. The supervisor sets it from
    # modules.https.port, so a value written here is replaced.
    httpsPort: int = Field(8443, ge=1, le=65535)


class AcmeConfig(StrictModel):
    enabled: bool = True
    directoryUrl: str = "https://acme-v02.api.letsencrypt.org/directory"
    email: str = ""
    # CA certificates trusted for the ACME server's own TLS (a test CA such as
    # Pebble's): a PEM file's path or the PEM text. Empty means the system
    # trust store.
    caBundle: str = ""
    renewBeforeDays: int = Field(30, ge=1, le=89)


class HttpsConfig(WebConfig):
    enabled: bool = False
    port: int = Field(8443, ge=1, le=65535)
    acme: AcmeConfig = AcmeConfig()


class DnsConfig(ModuleConfig):
    enabled: bool = False
    port: int = Field(5300, ge=1, le=65535)
    maxCachedAnswers: int = Field(100_000, ge=100, le=10_000_000)
    tcpIdleTimeout: float = Field(10.0, gt=0, le=600)
    maxTcpConnections: int = Field(1000, ge=1, le=100_000)


class SmtpConfig(StrictModel):
    port: int = Field(2525, ge=1, le=65535)
    hostname: Host = "localhost"
    maxMessageSize: int = Field(25 * 1024 * 1024, ge=1024)
    maxRecipients: int = Field(100, ge=1, le=10_000)
    # RFC 5321 section 4.5.3.1.6: a text line is at most 1000 octets with CRLF.
    maxLineLength: int = Field(1000, ge=512, le=1024 * 1024)
    commandTimeout: float = Field(300.0, gt=0, le=3600)
    # Outbound delivery: "host" or "host:port" to send every remote message
    # through; empty means the recipient domain's MX hosts.
    relayHost: str = ""
    # Port used on MX hosts (25 on the Internet; tests point it elsewhere).
    outboundPort: int = Field(25, ge=1, le=65535)
    # "address" or "address:port" of the DNS resolver for MX lookups; empty
    # means the system resolver (/etc/resolv.conf).
    dnsResolver: str = ""
    outboundTimeout: float = Field(60.0, gt=0, le=3600)
    # A message that still fails after this long is bounced to its sender.
    queueRetrySeconds: int = Field(5 * 86_400, ge=1)
    # First retry delay; each further retry waits twice as long, up to 1 hour.
    queueRetryBaseSeconds: float = Field(60.0, gt=0, le=86_400)
    queuePollSeconds: float = Field(5.0, gt=0, le=3600)


class ImapConfig(StrictModel):
    port: int = Field(1143, ge=1, le=65535)
    maxLiteralSize: int = Field(50 * 1024 * 1024, ge=1024)
    # Maximum command line length in bytes, literals excluded. Long UID sets from
    # synchronising clients need tens of kilobytes.
    maxLineLength: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)


class EmailConfig(ModuleConfig):
    enabled: bool = False
    smtp: SmtpConfig = SmtpConfig()
    imap: ImapConfig = ImapConfig()

    def listen_ports(self) -> list[int]:
        return [self.smtp.port, self.imap.port]


class SshConfig(ModuleConfig):
    enabled: bool = False
    port: int = Field(2222, ge=1, le=65535)
    idleTimeout: float = Field(600.0, gt=0, le=86_400)
    maxSessionsPerUser: int = Field(10, ge=1, le=1000)
    maxHandlesPerSession: int = Field(256, ge=1, le=65536)


class ModulesConfig(StrictModel):
    http: HttpConfig = HttpConfig()
    https: HttpsConfig = HttpsConfig()
    dns: DnsConfig = DnsConfig()
    email: EmailConfig = EmailConfig()
    ssh: SshConfig = SshConfig()


class DatabaseConfig(StrictModel):
    # Empty means SQLite in the data directory. Otherwise a SQLAlchemy URL,
    # for example postgresql+asyncpg://user:pass@127.0.0.1/onestack.
    url: Annotated[str, AfterValidator(_check_database_url)] = ""


class Config(StrictModel):
    server: ServerConfig = ServerConfig()
    modules: ModulesConfig = ModulesConfig()
    database: DatabaseConfig = DatabaseConfig()

    def hash_secrets(self, previous: Config | None = None) -> None:
        """Replace a clear admin password with its hash, or keep the stored one.

        The redacted placeholder means "unchanged": it takes the previous hash.
        """
        admin = self.server.adminPanel
        if admin.password == REDACTED:
            if previous is None:
                raise ValueError("server.adminPanel.password: no stored password")
            admin.password = previous.server.adminPanel.password
        elif not passwords.is_hash(admin.password):
            admin.password = passwords.hash_password(admin.password)

    def redacted(self) -> dict[str, Any]:
        """Return the config as JSON data with every secret replaced."""
        data = self.model_dump(mode="json")
        data["server"]["adminPanel"]["password"] = REDACTED
        url = data["database"]["url"]
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            credentials, host = rest.rsplit("@", 1)
            user = credentials.split(":", 1)[0]
            data["database"]["url"] = f"{scheme}://{user}:{REDACTED}@{host}"
        return data

    def admin_password_is_default(self) -> bool:
        return passwords.verify_password(
            self.server.adminPanel.password, DEFAULT_ADMIN_PASSWORD
        )

    def listeners(self) -> list[tuple[str, int]]:
        """Return every port OneStack binds, with the key that sets it."""
        modules = self.modules
        return [
            ("server.adminPanel.port", self.server.adminPanel.port),
            ("modules.http.port", modules.http.port),
            ("modules.https.port", modules.https.port),
            ("modules.dns.port", modules.dns.port),
            ("modules.email.smtp.port", modules.email.smtp.port),
            ("modules.email.imap.port", modules.email.imap.port),
            ("modules.ssh.port", modules.ssh.port),
        ]


class ConfigError(ValueError):
    """An invalid config: ``errors`` lists each bad key with its reason."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"invalid config: {summary}")


def check_admin_exposure(config: Config) -> None:
    """Raise ConfigError when the admin API would listen beyond loopback
    with the default password, which anyone reaching the port could use.
    """
    admin = config.server.adminPanel
    if admin.host in LOOPBACK_HOSTS or not config.admin_password_is_default():
        return
    raise ConfigError(
        [
            {
                "field": "server.adminPanel.host",
                "message": f"the admin API cannot listen on {admin.host} with the "
                "default password: set server.adminPanel.password first, or "
                "bind the admin API to 127.0.0.1",
            }
        ]
    )


def _check_distinct_ports(config: Config) -> None:
    """Raise ConfigError when two listeners share a port.

    Modules bind with SO_REUSEPORT, so a second module on a taken port would
    not fail: the kernel would split the port's connections between them.
    Disabled modules count too, so that starting one later cannot collide.
    """
    owners: dict[int, str] = {}
    errors = []
    for field, port in config.listeners():
        if port in owners:
            errors.append(
                {
                    "field": field,
                    "message": f"port {port} is already used by {owners[port]}",
                }
            )
        else:
            owners[port] = field
    if errors:
        raise ConfigError(errors)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``update`` merged in; nested objects merge by key."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate(data: Any) -> Config:
    """Build a Config from JSON data, raising ConfigError that names each key."""
    if not isinstance(data, dict):
        raise ConfigError([{"field": "(root)", "message": "must be a JSON object"}])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(part) for part in err["loc"]) or "(root)",
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        raise ConfigError(errors) from None
    _check_distinct_ports(config)
    return config


def merge_update(current: Config, update: Any) -> Config:
    """Deep-merge a partial update over ``current`` and validate the result."""
    if not isinstance(update, dict):
        raise ConfigError([{"field": "(root)", "message": "must be a JSON object"}])
    merged = deep_merge(current.model_dump(mode="json"), update)
    config = validate(merged)
    config.hash_secrets(previous=current)
    return config


def config_path(data_dir: Path) -> Path:
    return data_dir / CONFIG_FILENAME


def load(data_dir: Path) -> Config:
    """Read the config file, merged over the defaults; write it if missing.

    ``ONESTACK_ADMIN_PASSWORD`` sets the admin password when the file is
    first written.
    """
    path = config_path(data_dir)
    if not path.exists():
        config = Config()
        env_password = os.environ.get("ONESTACK_ADMIN_PASSWORD")
        if env_password:
            config.server.adminPanel.password = env_password
        config.hash_secrets()
        save(data_dir, config)
        logger.info("wrote default config to %s", path)
        return config
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [
                {
                    "field": "(file)",
                    "message": f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}",
                }
            ]
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError([{"field": "(root)", "message": "must be a JSON object"}])
    config = validate(deep_merge(Config().model_dump(mode="json"), raw))
    if not passwords.is_hash(config.server.adminPanel.password):
        # A clear password typed into the file by hand: hash it and store that.
        config.hash_secrets()
        save(data_dir, config)
    return config


def save(data_dir: Path, config: Config) -> None:
    """Write the config atomically: temporary file, fsync, rename."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = config_path(data_dir)
    text = json.dumps(config.model_dump(mode="json"), indent=2) + "\n"
    fd, tmp_name = tempfile.mkstemp(dir=data_dir, prefix=".config.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
