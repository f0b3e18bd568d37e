"""The schema of release 0.1.0 (which created its tables without migrations).

A 0.1.0 database is stamped with this revision before it is upgraded; an empty database
upgraded step by step starts here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("nct_id", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("snapshot_json", sa.Text(), nullable=False),
        sa.Column("raw_zlib", sa.LargeBinary(), nullable=False),
        sa.Column("data_timestamp", sa.String(32)),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("nct_id", "content_hash", name="uq_version_hash"),
    )
    op.create_index("ix_record_version_nct_id", "record_version", ["nct_id"])
    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_uuid", sa.String(64), nullable=False, unique=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("api_version", sa.String(32)),
        sa.Column("data_timestamp", sa.String(32)),
        sa.Column("watchlist_hash", sa.String(64)),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("baselined", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("change_count", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors_json", sa.Text()),
    )
    op.create_index("ix_sync_run_finished_at", "sync_run", ["finished_at"])
    op.create_table(
        "health_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "trial",
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("table_ref", sa.String(200)),
        sa.Column("reference", sa.Text()),
        sa.Column("watched", sa.Boolean(), nullable=False),
        sa.Column("canonical_id", sa.String(16)),
        sa.Column("current_version_id", sa.Integer(), sa.ForeignKey("record_version.id")),
        sa.Column("current_hash", sa.String(64)),
        sa.Column("brief_title", sa.Text()),
        sa.Column("acronym", sa.String(200)),
        sa.Column("overall_status", sa.String(64)),
        sa.Column("added_at", sa.DateTime(timezone=True)),
        sa.Column("last_checked_at", sa.DateTime(timezone=True)),
        sa.Column("last_changed_at", sa.DateTime(timezone=True)),
        sa.Column("last_change_summary", sa.Text()),
        sa.Column("consecutive_misses", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
    )
    op.create_table(
        "change_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("sync_run.id"), nullable=False),
        sa.Column("nct_id", sa.String(16), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_timestamp", sa.String(32)),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_key", sa.Text()),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("old_json", sa.Text()),
        sa.Column("new_json", sa.Text()),
        sa.Column("from_version_id", sa.Integer(), sa.ForeignKey("record_version.id")),
        sa.Column("to_version_id", sa.Integer(), sa.ForeignKey("record_version.id")),
    )
    op.create_index("ix_change_event_nct_id", "change_event", ["nct_id"])
    op.create_index("ix_change_event_run_id", "change_event", ["run_id"])
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(80), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("sync_run.id")),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subscription", sa.String(200)),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("change_ids_json", sa.Text(), nullable=False),
        sa.Column("payload_json", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_notification_run_id", "notification", ["run_id"])
    op.create_index("ix_notification_next_attempt_at", "notification", ["next_attempt_at"])
    op.create_index("ix_notification_status", "notification", ["status"])
