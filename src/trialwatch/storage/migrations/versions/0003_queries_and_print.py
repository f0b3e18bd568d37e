"""Query watches and what a paper printed.

- ``query_match``: the trials each ``[[queries]]`` search returned (for "new matching trial"
  and "no longer matches" events);
- ``query_state``: each query's baseline (the search it was made with);
- ``printed_entry``: the status and title a paper printed for a trial (``watch import``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "query_match",
        sa.Column("query_name", sa.String(80), primary_key=True),
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("brief_title", sa.Text()),
        sa.Column("phases", sa.String(120)),
        sa.Column("overall_status", sa.String(64)),
        sa.Column("lead_sponsor", sa.Text()),
        sa.Column("first_posted", sa.String(16)),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "query_state",
        sa.Column("query_name", sa.String(80), primary_key=True),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("baselined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "printed_entry",
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("status", sa.String(64)),
        sa.Column("status_text", sa.Text()),
        sa.Column("title", sa.Text()),
        sa.Column("origin", sa.Text()),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True)),
    )
