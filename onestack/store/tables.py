"""The database schema: one SQLAlchemy table per stored resource.

The Alembic migrations under ``migrations/versions`` create exactly these
tables; ``tests/store/test_migrations.py`` compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Stable constraint names, so migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# --- websites -------------------------------------------------------------

vhosts = Table(
    "vhosts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain", String(253), nullable=False, unique=True),
    Column("aliases", JSON, nullable=False, default=list),
    Column("document_root", Text, nullable=False),
    # True when OneStack created the document root under its data directory;
    # only such a root may be deleted with deleteFiles=true.
    Column("managed_root", Boolean, nullable=False, default=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("ssl", Boolean, nullable=False, default=False),
    Column("redirect_to_https", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# Every hostname a vhost answers to (its domain and each alias), so that
# uniqueness across vhosts is enforced by the database itself.
vhost_names = Table(
    "vhost_names",
    metadata,
    Column("name", String(253), primary_key=True),
    Column(
        "vhost_id",
        Integer,
        ForeignKey("vhosts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)

vhost_stats = Table(
    "vhost_stats",
    metadata,
    Column(
        "vhost_id",
        Integer,
        ForeignKey("vhosts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("requests", BigInteger, nullable=False, default=0),
    Column("bytes_served", BigInteger, nullable=False, default=0),
    # Sum of response times in milliseconds; average = total / requests.
    Column("response_time_total_ms", Float, nullable=False, default=0.0),
    Column("last_request", DateTime(timezone=True), nullable=True),
)

certificates = Table(
    "certificates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "vhost_id",
        Integer,
        ForeignKey("vhosts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("source", String(16), nullable=False),  # acme, uploaded, self-signed
    Column("names", JSON, nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("cert_pem", Text, nullable=False),  # leaf first, then the chain
    Column("key_pem", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# --- dns ------------------------------------------------------------------

dns_zones = Table(
    "dns_zones",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(253), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("ttl", Integer, nullable=False, default=3600),
    Column("primary_ns", String(253), nullable=False),
    Column("email", String(253), nullable=False),
    Column("serial", BigInteger, nullable=False),
    Column("refresh", Integer, nullable=False, default=3600),
    Column("retry", Integer, nullable=False, default=1800),
    Column("expire", Integer, nullable=False, default=604800),
    Column("minimum", Integer, nullable=False, default=86400),
    Column("allow_transfer", JSON, nullable=False, default=list),
    Column("also_notify", JSON, nullable=False, default=list),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

dns_records = Table(
    "dns_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "zone_id",
        Integer,
        ForeignKey("dns_zones.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(253), nullable=False),  # relative, "@" is the apex
    Column("type", String(10), nullable=False),
    Column("data", Text, nullable=False),
    Column("ttl", Integer, nullable=True),  # None: the zone's ttl
    Column("priority", Integer, nullable=True),
    sqlite_autoincrement=True,
)

# --- mail -----------------------------------------------------------------

mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("password_hash", Text, nullable=False),
    Column("quota", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Set when the mailbox was deleted but its messages were kept; creating
    # the same address again brings the mailbox and its messages back.
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    sqlite_autoincrement=True,
)

# IMAP mailboxes of one account (RFC 3501 calls them mailboxes; the API calls
# them folders).
mail_folders = Table(
    "mail_folders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "mailbox_id",
        Integer,
        ForeignKey("mailboxes.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(255), nullable=False),  # API name: inbox, sent, ...
    Column("special_use", String(16), nullable=True),  # RFC 6154: \Sent, ...
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uidnext", BigInteger, nullable=False, default=1),
    Column("highestmodseq", BigInteger, nullable=False, default=1),
    Column("subscribed", Boolean, nullable=False, default=True),
    UniqueConstraint("mailbox_id", "name"),
    sqlite_autoincrement=True,
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "mailbox_id",
        Integer,
        ForeignKey("mailboxes.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "folder_id",
        Integer,
        ForeignKey("mail_folders.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    Column("message_id", Text, nullable=True),
    Column("mail_from", Text, nullable=False, default=""),  # envelope sender
    Column("rcpt_to", JSON, nullable=False, default=list),  # envelope recipients
    Column("from_header", Text, nullable=False, default=""),
    Column("to_header", Text, nullable=False, default=""),
    Column("subject", Text, nullable=False, default=""),
    Column("date", DateTime(timezone=True), nullable=True),  # Date: header
    Column("internal_date", DateTime(timezone=True), nullable=False),
    Column("size", Integer, nullable=False),
    Column("seen", Boolean, nullable=False, default=False),
    Column("flagged", Boolean, nullable=False, default=False),
    Column("answered", Boolean, nullable=False, default=False),
    Column("draft", Boolean, nullable=False, default=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("keywords", JSON, nullable=False, default=list),
    Column("raw", LargeBinary, nullable=False),  # the RFC 5322 bytes, whole
    UniqueConstraint("folder_id", "uid"),
    Index(
        "ix_messages_mailbox_folder_date", "mailbox_id", "folder_id", "internal_date"
    ),
    sqlite_autoincrement=True,
)

# Messages for remote recipients, kept until delivered or bounced.
outbound_queue = Table(
    "outbound_queue",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mail_from", Text, nullable=False),
    Column("rcpt_to", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, index=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# --- sftp -----------------------------------------------------------------

ssh_users = Table(
    "ssh_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),
    Column("public_keys", JSON, nullable=False, default=list),
    Column(
        "vhost_id",
        Integer,
        ForeignKey("vhosts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# --- shared ---------------------------------------------------------------

# Named counters (messagesSent, smtpConnections, ...) added to by any process.
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False, default=0),
)

# Failed logins per (protocol-independent) key, so throttling is shared by
# every protocol and every worker process.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("first_failure_at", DateTime(timezone=True), nullable=False),
    Column("blocked_until", DateTime(timezone=True), nullable=True),
)
