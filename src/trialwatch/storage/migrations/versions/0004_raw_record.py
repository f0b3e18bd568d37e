"""``record_version.raw_zlib`` becomes ``raw_record``: new versions are kept as zstd.

zstd compresses the record as served three times faster than zlib for the same size (see
:mod:`trialwatch.rawcodec`). Existing rows are left as they are (zlib): the reader tells the two
apart by their first bytes, so the upgrade renames a column and rewrites nothing.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE ... RENAME COLUMN on both engines (SQLite 3.25+): no table copy, whatever its
    # size.
    op.execute("ALTER TABLE record_version RENAME COLUMN raw_zlib TO raw_record")
