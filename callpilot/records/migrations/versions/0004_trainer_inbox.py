"""The trainer's inbox: caller turns the bot did not handle, merged by near-identical text.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from callpilot.records.models import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_items",
        sa.Column("id", sa.Integer(), autoincrement=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_key", sa.String(255), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("predicted_intent", sa.String(128)),
        sa.Column("confidence", sa.Float()),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("call_id", sa.String(80)),
        sa.Column("channel", sa.String(16)),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.JSON(), nullable=False),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("resolved_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_items")),
    )
    op.create_index(op.f("ix_inbox_items_text_key"), "inbox_items", ["text_key"])
    op.create_index(op.f("ix_inbox_items_call_id"), "inbox_items", ["call_id"])
    op.create_index(op.f("ix_inbox_items_last_seen_at"), "inbox_items", ["last_seen_at"])
    op.create_index(op.f("ix_inbox_items_status"), "inbox_items", ["status"])


def downgrade() -> None:
    for column in ("status", "last_seen_at", "call_id", "text_key"):
        op.drop_index(op.f(f"ix_inbox_items_{column}"), table_name="inbox_items")
    op.drop_table("inbox_items")
