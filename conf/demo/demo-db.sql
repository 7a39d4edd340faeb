-- The demo's SQLite database (build/lib.sh, ws_demo_make_db, makes it
-- afresh each time the demo's ServerRoot is prepared).  The dbd panel of
-- the demo page queries it through WebSocketHandler dbd.
CREATE TABLE planets (
    name      TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    moons     INTEGER NOT NULL,
    radius_km INTEGER NOT NULL
);
INSERT INTO planets VALUES ('Mercury', 'terrestrial', 0, 2440);
INSERT INTO planets VALUES ('Venus', 'terrestrial', 0, 6052);
INSERT INTO planets VALUES ('Earth', 'terrestrial', 1, 6371);
INSERT INTO planets VALUES ('Mars', 'terrestrial', 2, 3390);
INSERT INTO planets VALUES ('Jupiter', 'gas giant', 95, 69911);
INSERT INTO planets VALUES ('Saturn', 'gas giant', 146, 58232);
INSERT INTO planets VALUES ('Uranus', 'ice giant', 28, 25362);
INSERT INTO planets VALUES ('Neptune', 'ice giant', 16, 24622);
