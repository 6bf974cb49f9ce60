-- ptbm stress run: what the pgbench scripts need in the database.
-- Run by run.sh once per region kind, on a fresh server.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ptbm;

-- a checksum mismatch: fatal for the client, counted by run.sh
CREATE OR REPLACE FUNCTION stress_check(ok boolean, what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF ok IS NOT TRUE THEN
		RAISE EXCEPTION 'stress checksum mismatch: %', what USING ERRCODE = 'PTB01';
	END IF;
	RETURN true;
END $$;

-- expected errors, counted without stopping the client
CREATE SEQUENCE IF NOT EXISTS stress_gone;        -- ptbm_pte of a pid gone meanwhile
CREATE SEQUENCE IF NOT EXISTS stress_unsupported; -- write tracking the kernel refuses

-- every report of ptbm that exists in this version, one per id
DROP TABLE IF EXISTS stress_reports;
CREATE TABLE stress_reports (id int PRIMARY KEY, fn text, sql text);
INSERT INTO stress_reports
SELECT row_number() OVER () - 1, fn, q
FROM (VALUES
	('ptbm_backends', 'SELECT count(*) FROM ptbm_backends()'),
	('ptbm_map', 'SELECT count(*) FROM ptbm_map(64)'),
	('ptbm_sharing', 'SELECT count(*) FROM ptbm_sharing($1, 1024)'),
	('ptbm_pte', 'SELECT count(*) FROM ptbm_pte(pg_backend_pid(), $1, 1024)'),
	('ptbm_pte', 'SELECT count(*) FROM ptbm_pte((SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL ORDER BY random() LIMIT 1), $1, 1024)'),
	('ptbm_region', 'SELECT count(*) FROM ptbm_region()'),
	('ptbm_shmem_segment', 'SELECT count(*) FROM ptbm_shmem_segment()'),
	('ptbm_shmem_backends', 'SELECT count(*) FROM ptbm_shmem_backends()'),
	('ptbm_buffer_ptes', 'SELECT count(*) FROM ptbm_buffer_ptes(NULL)'),
	('ptbm_buffer_ptes', 'SELECT count(*) FROM ptbm_buffer_ptes((SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL ORDER BY random() LIMIT 1))')
) v(fn, q)
WHERE to_regproc(fn) IS NOT NULL;

-- Runs report number r (modulo their count) from page f.  A pid chosen
-- from pg_stat_activity may have exited: 22023 "not a process of this
-- cluster" is expected then; any other error stops the client.
CREATE OR REPLACE FUNCTION stress_report(r int, f bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	q text;
	n bigint;
BEGIN
	SELECT sql INTO q FROM stress_reports
	WHERE id = r % (SELECT count(*) FROM stress_reports);
	BEGIN
		EXECUTE q INTO n USING f;
	EXCEPTION WHEN invalid_parameter_value THEN
		IF SQLERRM LIKE '%is not a process of this cluster%' THEN
			PERFORM nextval('stress_gone');
			RETURN -1;
		END IF;
		RAISE;
	END;
	RETURN n;
END $$;

-- Write tracking in the calling backend, where the kernel offers it for
-- this kind: start (or reset), then read and reset what it wrote.
CREATE OR REPLACE FUNCTION stress_track() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	IF to_regproc('ptbm_track_writes') IS NULL THEN
		RETURN 0;
	END IF;
	BEGIN
		PERFORM * FROM ptbm_track_writes(true);
		EXECUTE 'SELECT count(*) FROM ptbm_written(pg_backend_pid(), true)' INTO n;
	EXCEPTION WHEN feature_not_supported THEN
		PERFORM nextval('stress_unsupported');
		RETURN -1;
	END;
	RETURN n;
END $$;

-- Sentinel pages 0-15: known bytes no script may change.
SELECT count(ptbm_write(p, decode(repeat(md5('sentinel' || p), 256), 'hex'), 0))
FROM generate_series(0, 15) p;
