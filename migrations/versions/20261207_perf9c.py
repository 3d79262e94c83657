"""the rollups' UPDATE triggers on incident count only the cases whose rollup keys or measures changed

Revision ID: 20261207_perf9c
Revises: 20261207_ops9d
Create Date: 2026-12-07

The statement triggers of migration 20261203_inc10 subtract every old row and add every new row of an
UPDATE, grouped into incident_heat and incident_eval. Publishing a base grid edition moves every case to
a new cell id in the same community (gridkit.grids.editions._move_cases): 300,000 old and 300,000 new
rows grouped and joined to their cells, ~4 s of the publish, to add nothing (every delta is zero, and
incident_eval's rows were rewritten with zeros all the same). The triggers now pair the old and new row
of each case (by id; a full join, so an id changed counts as a case gone and one added) and count only
the pairs whose values the rollup reads differ: the place, report month and community for the heatmap
(the community, not the cell id), every measure and key for the evaluation. A pair left out adds -v + v:
the sums are the same as before, for any UPDATE. The evaluation's function keeps what migrations 20261207_cal9e
(step times in working time) and 20261207_ops9d (days in the city's zone, gridkit_config) made it.

A search of the case lists of one or two characters (井盖: Chinese queries are often two characters) cannot use
the trigram indexes of migration 20261205_city7d and read every case twice (the page and its count, ~330 ms at
300,000 cases). A GIN index of each case's characters beyond ASCII (code and description, lower case: built-in
functions, no function of ours) finds the cases holding every such character of the text (ILIKE then keeps those
holding the text itself): ~15 ms for 井盖. A short text of ASCII alone is in most codes anyway and is not looked
up there, which keeps the index small: 0.4 s to build at 300,000 cases of ASCII texts, 1.7 s with Chinese
descriptions (the trigram index of the descriptions: 1.1 s); every publish of an edition rebuilds it
(gridkit.spatial.bulk). gridkit.incidents.queries.CASE_TEXT_CHARS writes the expression exactly as here.
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "20261207_perf9c"
down_revision = "20261207_ops9d"
branch_labels = None
depends_on = None



def _migration(name: str, file: str):
    """An earlier migration's module (those files are frozen: their helpers are reused, not copied)."""
    spec = importlib.util.spec_from_file_location(f"gridkit_migration_{name}", Path(__file__).with_name(file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The heatmap's SQL as migration 20261203_inc10 wrote it; the evaluation's as 20261207_cal9e and 20261207_ops9d did.
inc10 = _migration("inc10", "20261203_inc10_incident_rollups.py")
cal9e = _migration("cal9e", "20261207_cal9e.py")
ops9d = _migration("ops9d", "20261207_ops9d.py")
_EVAL_COLUMNS = cal9e._eval_columns(work=True)


def _columns(names: str) -> list[str]:
    return [c.strip() for c in names.split(",")]


def _changed_rows(columns: str) -> str:
    """SQL of the old rows (s = -1) and new rows (s = 1) of `columns` whose case changed what the rollup reads:
    the columns besides base_cell_id, and the cell's community. One pass: each old row paired with its new row,
    both given when they differ (the side a case lacks, inserted or deleted under another id, left out)."""
    names = _columns(columns)
    read = [c for c in names if c != "base_cell_id"]
    old = ", ".join([f"o.{c}" for c in read] + ["ob.community_code"])
    new = ", ".join([f"n.{c}" for c in read] + ["nb.community_code"])
    old_row = ", ".join([f"o.{c}" for c in names] + ["o.id", "-1"])
    new_row = ", ".join([f"n.{c}" for c in names] + ["n.id", "1"])
    return f"""
    SELECT {", ".join(f"v.{c}" for c in names)}, v.s FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
    LEFT JOIN base_cell ob ON ob.id = o.base_cell_id LEFT JOIN base_cell nb ON nb.id = n.base_cell_id
    CROSS JOIN LATERAL (VALUES ({old_row}), ({new_row})) v({columns}, id, s)
    WHERE ({old}) IS DISTINCT FROM ({new}) AND v.id IS NOT NULL"""


def _replace(name: str, body: str) -> None:
    op.execute(f"""
    CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {body} RETURN NULL; END $$""")


_CASE_TEXT_CHARS = (
    r"string_to_array(regexp_replace(lower(COALESCE(code, '') || ' ' || COALESCE(description, '')), "
    r"'[\x01-\x7f]+', '', 'g'), NULL)"
)


def upgrade() -> None:
    op.execute(f"CREATE INDEX ix_incident_text_chars ON incident USING gin (({_CASE_TEXT_CHARS}))")
    _replace("incident_heat_update", inc10._apply(_changed_rows(inc10._COLUMNS)))
    _replace("incident_eval_update", ops9d._eval_sql(_changed_rows(_EVAL_COLUMNS), ops9d._CITY_ZONE))


def downgrade() -> None:
    op.execute("DROP INDEX ix_incident_text_chars")

    def every_row(columns: str) -> str:
        return f"SELECT {columns}, -1 AS s FROM old_rows UNION ALL SELECT {columns}, 1 FROM new_rows"

    _replace("incident_heat_update", inc10._apply(every_row(inc10._COLUMNS)))
    _replace("incident_eval_update", ops9d._eval_sql(every_row(_EVAL_COLUMNS), ops9d._CITY_ZONE))
