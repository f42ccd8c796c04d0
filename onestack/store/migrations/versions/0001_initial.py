"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "dns_zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=False),
        sa.Column("primary_ns", sa.String(length=253), nullable=False),
        sa.Column("email", sa.String(length=253), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("refresh", sa.Integer(), nullable=False),
        sa.Column("retry", sa.Integer(), nullable=False),
        sa.Column("expire", sa.Integer(), nullable=False),
        sa.Column("minimum", sa.Integer(), nullable=False),
        sa.Column("allow_transfer", sa.JSON(), nullable=False),
        sa.Column("also_notify", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_zones")),
        sa.UniqueConstraint("name", name=op.f("uq_dns_zones_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("quota", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
        sa.UniqueConstraint("email", name=op.f("uq_mailboxes_email")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "outbound_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("rcpt_to", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_queue")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("outbound_queue", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbound_queue_next_attempt_at"),
            ["next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "vhosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("document_root", sa.Text(), nullable=False),
        sa.Column("managed_root", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("ssl", sa.Boolean(), nullable=False),
        sa.Column("redirect_to_https", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vhosts")),
        sa.UniqueConstraint("domain", name=op.f("uq_vhosts_domain")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vhost_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("key_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vhost_id"],
            ["vhosts.id"],
            name=op.f("fk_certificates_vhost_id_vhosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificates_vhost_id"), ["vhost_id"], unique=False
        )

    op.create_table(
        "dns_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["dns_zones.id"],
            name=op.f("fk_dns_records_zone_id_dns_zones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_records")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("dns_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dns_records_zone_id"), ["zone_id"], unique=False
        )

    op.create_table(
        "mail_folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("special_use", sa.String(length=16), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uidnext", sa.BigInteger(), nullable=False),
        sa.Column("highestmodseq", sa.BigInteger(), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mail_folders_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_folders")),
        sa.UniqueConstraint(
            "mailbox_id", "name", name=op.f("uq_mail_folders_mailbox_id_name")
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "ssh_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("public_keys", sa.JSON(), nullable=False),
        sa.Column("vhost_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vhost_id"],
            ["vhosts.id"],
            name=op.f("fk_ssh_users_vhost_id_vhosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ssh_users")),
        sa.UniqueConstraint("username", name=op.f("uq_ssh_users_username")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "vhost_names",
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("vhost_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vhost_id"],
            ["vhosts.id"],
            name=op.f("fk_vhost_names_vhost_id_vhosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_vhost_names")),
    )
    with op.batch_alter_table("vhost_names", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vhost_names_vhost_id"), ["vhost_id"], unique=False
        )

    op.create_table(
        "vhost_stats",
        sa.Column("vhost_id", sa.Integer(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("bytes_served", sa.BigInteger(), nullable=False),
        sa.Column("response_time_total_ms", sa.Float(), nullable=False),
        sa.Column("last_request", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["vhost_id"],
            ["vhosts.id"],
            name=op.f("fk_vhost_stats_vhost_id_vhosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vhost_id", name=op.f("pk_vhost_stats")),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("rcpt_to", sa.JSON(), nullable=False),
        sa.Column("from_header", sa.Text(), nullable=False),
        sa.Column("to_header", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("internal_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("seen", sa.Boolean(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["folder_id"],
            ["mail_folders.id"],
            name=op.f("fk_messages_folder_id_mail_folders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_messages_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("folder_id", "uid", name=op.f("uq_messages_folder_id_uid")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_mailbox_folder_date",
            ["mailbox_id", "folder_id", "internal_date"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_mailbox_folder_date")

    op.drop_table("messages")
    op.drop_table("vhost_stats")
    with op.batch_alter_table("vhost_names", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vhost_names_vhost_id"))

    op.drop_table("vhost_names")
    op.drop_table("ssh_users")
    op.drop_table("mail_folders")
    with op.batch_alter_table("dns_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dns_records_zone_id"))

    op.drop_table("dns_records")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_vhost_id"))

    op.drop_table("certificates")
    op.drop_table("vhosts")
    with op.batch_alter_table("outbound_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_queue_next_attempt_at"))

    op.drop_table("outbound_queue")
    op.drop_table("mailboxes")
    op.drop_table("login_failures")
    op.drop_table("dns_zones")
    op.drop_table("counters")
