"""``trial.refused`` and ``query_state.refused``: why CT.gov refuses to look a trial's id up,
or to run a ``[[queries]]`` search (None: it does not).

CT.gov refuses a whole ``filter.ids`` request for one id off its pattern (``NCT00000000``, a
placeholder papers print; digits of other scripts). trialwatch now refuses such ids at every
door, but a database an older version filled may hold them: the upgrade marks each with the
validator's reason, so it is shown (``watch list``, ``status``) and left out of every batch
instead of costing its batch, or the run, on every poll. A query the server refuses at run time
(a 400 the load-time check did not foresee) is recorded the same way, so ``status`` names it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwatch.ids import refused_mark

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trial") as batch:
        batch.add_column(sa.Column("refused", sa.Text(), nullable=True))
    with op.batch_alter_table("query_state") as batch:
        batch.add_column(sa.Column("refused", sa.Text(), nullable=True))
    trial = sa.table(
        "trial",
        sa.column("nct_id", sa.String),
        sa.column("refused", sa.Text),
        sa.column("last_error", sa.Text),
        sa.column("recheck", sa.Boolean),
    )
    conn = op.get_bind()
    marks = [
        {"b_id": nct_id, "mark": mark}
        for (nct_id,) in conn.execute(sa.select(trial.c.nct_id))
        if (mark := refused_mark(nct_id)) is not None
    ]
    if marks:
        conn.execute(
            trial.update()
            .where(trial.c.nct_id == sa.bindparam("b_id"))
            .values(refused=sa.bindparam("mark"), last_error=sa.bindparam("mark"), recheck=False),
            marks,
        )


def downgrade() -> None:
    with op.batch_alter_table("query_state") as batch:
        batch.drop_column("refused")
    with op.batch_alter_table("trial") as batch:
        batch.drop_column("refused")
