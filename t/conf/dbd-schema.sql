-- The tables of t/ws/dbd.t (SQLite) and t/ws/dbd_pg.t (PostgreSQL): the
-- same SQL for both.
CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);
INSERT INTO items (id, name, note) VALUES (1, 'first', NULL);
INSERT INTO items (id, name, note) VALUES (2, 'second', 'two');
INSERT INTO kv (k, v) VALUES ('fixed', 'x');
