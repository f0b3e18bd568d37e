"""The watch set moves into the database; snapshots record their normalizer; webhook URLs
leave the outbox; runs are written page by page.

- ``watch`` (nct_id, source): 0.1.0's watched trials come from the config file, so each
  becomes a ``config`` watch with its label, table and reference;
- ``trial`` loses those columns (and ``watched``, ``last_checked_at``: a run says when it
  checked) and gains ``fingerprint``, ``normalizer_version`` and ``recheck``;
- ``record_version.normalizer_version``: every 0.1.0 snapshot was made by normalizer 1;
- ``sync_run`` gains ``kind`` and ``rebaselined``;
- webhook notifications keep a reference to their subscription instead of the secret URL.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _webhook_reference(url: str) -> str:
    # Frozen copy of trialwatch.routing.webhook_reference (a test keeps them equal).
    return "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:16]


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)

    op.create_table(
        "watch",
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("source", sa.String(120), primary_key=True),
        sa.Column("label", sa.String(200)),
        sa.Column("table_ref", sa.String(200)),
        sa.Column("reference", sa.Text()),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    trial = sa.table(
        "trial",
        sa.column("nct_id", sa.String),
        sa.column("label", sa.String),
        sa.column("table_ref", sa.String),
        sa.column("reference", sa.Text),
        sa.column("watched", sa.Boolean),
        sa.column("added_at", sa.DateTime),
    )
    watch = sa.table(
        "watch",
        sa.column("nct_id", sa.String),
        sa.column("source", sa.String),
        sa.column("label", sa.String),
        sa.column("table_ref", sa.String),
        sa.column("reference", sa.Text),
        sa.column("added_at", sa.DateTime),
    )
    rows = conn.execute(
        sa.select(
            trial.c.nct_id, trial.c.label, trial.c.table_ref, trial.c.reference, trial.c.added_at
        ).where(trial.c.watched.is_(True))
    ).all()
    if rows:
        conn.execute(
            sa.insert(watch),
            [
                {
                    "nct_id": r.nct_id,
                    "source": "config",
                    "label": r.label,
                    "table_ref": r.table_ref,
                    "reference": r.reference,
                    "added_at": r.added_at or now,
                }
                for r in rows
            ],
        )

    with op.batch_alter_table("trial") as batch:
        batch.drop_column("label")
        batch.drop_column("table_ref")
        batch.drop_column("reference")
        batch.drop_column("watched")
        batch.drop_column("last_checked_at")
        batch.add_column(sa.Column("fingerprint", sa.String(64)))
        batch.add_column(sa.Column("normalizer_version", sa.Integer()))
        batch.add_column(
            sa.Column("recheck", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("record_version") as batch:
        batch.add_column(
            sa.Column("normalizer_version", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="full"))
        batch.add_column(sa.Column("rebaselined", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE trial SET normalizer_version = 1 WHERE current_version_id IS NOT NULL")

    notification = sa.table(
        "notification",
        sa.column("id", sa.Integer),
        sa.column("channel", sa.String),
        sa.column("recipient", sa.Text),
    )
    hooks = conn.execute(
        sa.select(notification.c.id, notification.c.recipient).where(
            notification.c.channel == "webhook"
        )
    ).all()
    for hook_id, url in hooks:
        if not url.startswith("webhook:"):
            conn.execute(
                sa.update(notification)
                .where(notification.c.id == hook_id)
                .values(recipient=_webhook_reference(url))
            )
