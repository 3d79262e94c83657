import time
from sqlalchemy import text
from gridkit.grids import validate as v
from tests.test_validate_grid import make_city_grid

Q = {
 "current": """SELECT count(*) FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id AND a.id < b.id AND ST_Intersects(a.geom, b.geom)
   WHERE a.edition_id = :e AND ST_IsValid(a.geom) AND ST_IsValid(b.geom) AND ST_Relate(a.geom, b.geom, '2********')""",
 "novalid": """SELECT count(*) FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id AND a.id < b.id AND ST_Intersects(a.geom, b.geom)
   WHERE a.edition_id = :e AND ST_Relate(a.geom, b.geom, '2********')""",
 "bboxrelate": """SELECT count(*) FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id AND a.id < b.id AND a.geom && b.geom
   WHERE a.edition_id = :e AND ST_Relate(a.geom, b.geom, '2********')""",
 "bboxonly": """SELECT count(*) FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id AND a.id < b.id AND a.geom && b.geom
   WHERE a.edition_id = :e""",
 "intersects": """SELECT count(*) FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id AND a.id < b.id AND ST_Intersects(a.geom, b.geom)
   WHERE a.edition_id = :e""",
 "overlaps_or_contains": """SELECT count(*) FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id AND a.id < b.id AND a.geom && b.geom
   WHERE a.edition_id = :e AND (ST_Overlaps(a.geom, b.geom) OR ST_Contains(a.geom,b.geom) OR ST_Contains(b.geom, a.geom))""",
 "buffer_neg": """SELECT count(*) FROM base_cell a JOIN base_cell b ON b.edition_id = a.edition_id AND a.id < b.id AND a.geom && b.geom
   WHERE a.edition_id = :e AND NOT ST_Touches(a.geom, b.geom)""",
}
def test_profile(session):
    edition = make_city_grid(session)
    for name, q in Q.items():
        t = time.perf_counter(); n = session.execute(text(q), {"e": edition.id}).scalar(); print(name, n, round(time.perf_counter() - t, 3))
    print(session.execute(text("EXPLAIN ANALYZE " + Q["current"]), {"e": edition.id}).scalars().all())
