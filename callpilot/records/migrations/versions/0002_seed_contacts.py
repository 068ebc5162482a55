"""Seed the built-in contacts table with the demo back office's customers.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from bot.backoffice import BackOffice

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

contacts = sa.table(
    "contacts",
    sa.column("phone", sa.String),
    sa.column("name", sa.String),
    sa.column("email", sa.String),
    sa.column("customer_id", sa.String),
    sa.column("tier", sa.String),
    sa.column("city", sa.String),
    sa.column("created_at", sa.DateTime),
)


def upgrade() -> None:
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    rows = [
        {"phone": c.phone, "name": c.name, "email": c.email, "customer_id": c.customer_id,
         "tier": c.tier.value, "city": c.city, "created_at": now}
        for c in BackOffice.demo().customers
    ]
    if rows:
        op.bulk_insert(contacts, rows)


def downgrade() -> None:
    op.execute(contacts.delete().where(contacts.c.customer_id.is_not(None)))
