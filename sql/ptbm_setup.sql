-- Install the extension once for the whole pg_regress run, after checking
-- the way from version 1.0 to 1.1, 1.2 and 1.3.
SET client_min_messages = warning;

-- 1.0: ptbm_pte.via is text, and the library serves it as text.
CREATE EXTENSION ptbm VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'ptbm';
SELECT format_type(t, NULL) AS via_type_1_0
FROM unnest((SELECT proallargtypes FROM pg_proc WHERE proname = 'ptbm_pte')) WITH ORDINALITY a(t, n)
WHERE n = 17;
SELECT pages FROM ptbm_touch(0, 1);
SELECT via, pg_typeof(via) FROM ptbm_pte(pg_backend_pid(), 0, 1);

-- 1.1: via is the enum ptbm_via; the privileges are those of 1.0.
ALTER EXTENSION ptbm UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'ptbm';
SELECT via, pg_typeof(via), via = 'own access' AS compares_with_a_literal
FROM ptbm_pte(pg_backend_pid(), 0, 1);
SELECT enum_range(NULL::ptbm_via);
SELECT has_function_privilege('pg_monitor', 'ptbm_pte(integer, bigint, bigint)', 'EXECUTE') AS monitor_may,
       has_function_privilege('public', 'ptbm_pte(integer, bigint, bigint)', 'EXECUTE') AS public_may;
-- and the new ptbm_written_reset is nobody's but a superuser's until granted
SELECT has_function_privilege('pg_monitor', 'ptbm_written_reset(integer)', 'EXECUTE') AS monitor_may_reset,
       has_function_privilege('public', 'ptbm_written_reset(integer)', 'EXECUTE') AS public_may_reset;

-- 1.2: the view binds to pg_catalog only; STRICT where NULL gives NULL,
-- and the functions that report the calling process's own mapping are
-- PARALLEL RESTRICTED.
ALTER EXTENSION ptbm UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'ptbm';
SELECT p.oid::regprocedure AS function, p.proisstrict AS strict, p.proparallel AS parallel
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ptbm') AND d.deptype = 'e'
ORDER BY p.oid::regprocedure::text;
SELECT ptbm_read(NULL, 1), ptbm_write(NULL, 'x'), count(*) AS map_rows FROM ptbm_map(NULL);

-- 1.3: the buffer pool's functions, nobody's but a superuser's unless granted,
-- the reports pg_monitor's.
ALTER EXTENSION ptbm UPDATE TO '1.3';
SELECT extversion FROM pg_extension WHERE extname = 'ptbm';
SELECT p.oid::regprocedure AS function,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS monitor_may,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
FROM pg_proc p WHERE p.proname LIKE 'ptbm\_pool\_%' ORDER BY p.oid::regprocedure::text;

-- A fresh install gets the default version (t/025 checks that it equals the way up).
DROP EXTENSION ptbm;
CREATE EXTENSION ptbm;
SELECT extname, extversion FROM pg_extension WHERE extname = 'ptbm';
SELECT pages FROM ptbm_evict(0, 1, 'remove');
