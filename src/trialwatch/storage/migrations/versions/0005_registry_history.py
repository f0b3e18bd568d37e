"""The registry's record history (``trialwatch backfill``).

- ``registry_version``: each version CT.gov kept of a record (its number, the day it was
  submitted, its status; the record itself once fetched);
- ``registry_read``: how far each trial's history was read;
- ``record_version.registry_version`` / ``registry_date``: a stored version read from that
  history, numbered and dated by the registry;
- ``change_event.origin``: ``live`` (every existing row) or ``registry``;
- ``printed_entry.printed_on``: the day the imported paper was published (``--printed-on``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_version",
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("submitted_on", sa.String(10), nullable=False),
        sa.Column("status", sa.String(64)),
        sa.Column("module_labels", sa.Text()),
        sa.Column("raw_record", sa.LargeBinary()),
        sa.Column("fetched_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "registry_read",
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("joined", sa.String(16)),
        sa.Column("joined_at", sa.DateTime(timezone=True)),
    )
    # ADD COLUMN on both engines: no table copy, whatever the history's size.
    op.add_column("record_version", sa.Column("registry_version", sa.Integer()))
    op.add_column("record_version", sa.Column("registry_date", sa.String(10)))
    op.add_column(
        "change_event",
        sa.Column("origin", sa.String(16), nullable=False, server_default="live"),
    )
    op.add_column("printed_entry", sa.Column("printed_on", sa.String(10)))
