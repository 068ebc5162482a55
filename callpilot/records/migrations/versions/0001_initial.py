"""Initial tables: calls, api_keys, contacts, tickets, audit_log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from callpilot.records.models import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(80), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("caller_number", sa.String(32)),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("language", sa.String(16)),
        sa.Column("transport", sa.String(32)),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("answered_at", UtcDateTime()),
        sa.Column("ended_at", UtcDateTime()),
        sa.Column("duration_s", sa.Float()),
        sa.Column("end_reason", sa.String(64)),
        sa.Column("ivr_path", sa.JSON(), nullable=False),
        sa.Column("intents", sa.JSON(), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("contained", sa.Boolean()),
        sa.Column("handoff_reason", sa.String(64)),
        sa.Column("handoff_at", UtcDateTime()),
        sa.Column("queue", sa.String(64)),
        sa.Column("agent_id", sa.String(64)),
        sa.Column("agent_name", sa.String(128)),
        sa.Column("agent_connected_at", UtcDateTime()),
        sa.Column("wait_s", sa.Float()),
        sa.Column("talk_s", sa.Float()),
        sa.Column("disposition", sa.String(64)),
        sa.Column("notes", sa.Text()),
        sa.Column("recording_path", sa.String(512)),
        sa.Column("recording_consent", sa.Boolean(), nullable=False),
        sa.Column("retention_days", sa.Integer()),
        sa.Column("recording_expires_at", UtcDateTime()),
        sa.Column("recording_purged_at", UtcDateTime()),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("call_id", name=op.f("uq_calls_call_id")),
        sa.CheckConstraint("retention_days IS NULL OR retention_days <= 180 OR recording_consent",
                           name=op.f("ck_calls_retention_needs_consent")),
    )
    for column in ("caller_number", "customer_id", "started_at", "contained", "queue", "agent_id", "disposition",
                   "recording_expires_at", "ended_at"):
        op.create_index(f"ix_calls_{column}", "calls", [column])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime()),
        sa.Column("last_used_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_keys_key_id")),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("email", sa.String(256)),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("tier", sa.String(32)),
        sa.Column("city", sa.String(128)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("phone", name=op.f("uq_contacts_phone")),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("call_id", sa.String(80), nullable=False),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("caller_number", sa.String(32)),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("call_id", name=op.f("uq_tickets_call_id")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    for table in ("audit_log", "tickets", "contacts", "api_keys", "calls"):
        op.drop_table(table)
