-- Install the extension once for the whole pg_regress run, after checking
-- the way from version 1.0 to 1.1.
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

-- A fresh install gets 1.1.
DROP EXTENSION ptbm;
CREATE EXTENSION ptbm;
SELECT extname, extversion FROM pg_extension WHERE extname = 'ptbm';
SELECT pages FROM ptbm_evict(0, 1, 'remove');
