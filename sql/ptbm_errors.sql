-- Bad input: a clear error with a class 22 SQLSTATE, and the session goes on.
SET client_min_messages = warning;
\set VERBOSITY sqlstate

-- pages outside the region
SELECT * FROM ptbm_pte(pg_backend_pid(), -1, 1);
SELECT * FROM ptbm_pte(pg_backend_pid(), (SELECT pages FROM ptbm_region()), 1);
SELECT * FROM ptbm_pte(pg_backend_pid(), 9223372036854775807, 1);
-- negative, too large and overflowing counts
SELECT * FROM ptbm_pte(pg_backend_pid(), 0, -1);
SELECT * FROM ptbm_pte(pg_backend_pid(), 10, (SELECT pages FROM ptbm_region()));
SELECT * FROM ptbm_pte(pg_backend_pid(), 1, 9223372036854775807);
SELECT * FROM ptbm_touch(0, -5);
SELECT * FROM ptbm_touch((SELECT pages - 1 FROM ptbm_region()), 2);
SELECT * FROM ptbm_touch(-1);
-- unknown mode
SELECT * FROM ptbm_touch(0, 1, 'execute');
SELECT * FROM ptbm_touch(0, 1, '');
-- offsets and lengths outside a page
SELECT ptbm_write(0, '\x0102', 4095);
SELECT ptbm_write(0, '\x01', -1);
SELECT ptbm_write(0, '\x01', 2147483647);
SELECT ptbm_write(0, decode(repeat('00', 4097), 'hex'));
SELECT ptbm_write(-1, '\x01');
SELECT ptbm_read(0, 4097);
SELECT ptbm_read(0, -1);
SELECT ptbm_read(0, 1, -1);
SELECT ptbm_read(0, 2147483647, 2147483647);
SELECT ptbm_read((SELECT pages FROM ptbm_region()), 1);
-- pids that are not processes of this cluster
SELECT * FROM ptbm_pte(0);
SELECT * FROM ptbm_pte(-1);
SELECT * FROM ptbm_pte(1);
SELECT * FROM ptbm_pte(2147483647);

-- Nothing broke: the session works and the data outside the calls is intact.
\set VERBOSITY default
SELECT ptbm_write(7, '\xcafe');
SELECT * FROM ptbm_touch(0, 1, 'write') \gset
SELECT ptbm_read(7, 2) AS still_there;

-- The full text of two errors, for the reader.
SELECT * FROM ptbm_pte(pg_backend_pid(), 0, -1);
SELECT * FROM ptbm_pte(1);
SELECT ptbm_read(0, 2, 4095);
SELECT * FROM ptbm_touch(0, 1, 'execute');
