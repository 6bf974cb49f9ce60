-- Reporting is for pg_monitor; changing memory is for superusers unless granted.
SET client_min_messages = warning;

SELECT p.proname,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS pg_monitor
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON d.refobjid = e.oid AND e.extname = 'ptbm'
ORDER BY p.proname;

-- A role without privileges is denied everything.
SET ROLE pg_database_owner;
SELECT kind FROM ptbm_region();
SELECT count(*) FROM ptbm_pte();
SELECT * FROM ptbm_touch(0);
SELECT ptbm_write(0, '\x01');
SELECT ptbm_read(0, 1);
SELECT count(*) FROM ptbm_backends();
SELECT count(*) FROM ptbm_map();
SELECT count(*) FROM ptbm_sharing(0, 1);
SELECT * FROM ptbm_evict(0);
RESET ROLE;

-- pg_monitor may report, not change memory.
SET ROLE pg_monitor;
SELECT kind FROM ptbm_region();
SELECT count(*) > 0 AS rows FROM ptbm_pte();
SELECT * FROM ptbm_touch(0);
SELECT ptbm_write(0, '\x01');
SELECT ptbm_read(0, 1);
SELECT count(*) > 0 AS rows FROM ptbm_backends();
SELECT count(*) > 0 AS rows FROM ptbm_map();
SELECT count(*) AS rows FROM ptbm_sharing(0, 1);
SELECT * FROM ptbm_evict(0);
-- and sees no frame numbers, whatever the kernel allows
SELECT count(pfn) AS pfns, count(flags) AS flags FROM ptbm_pte();
RESET ROLE;

-- An explicit grant opens a memory-changing function to a role.
CREATE ROLE ptbm_regress_toucher;
GRANT EXECUTE ON FUNCTION ptbm_touch(bigint, bigint, text) TO ptbm_regress_toucher;
SET ROLE ptbm_regress_toucher;
SELECT pages FROM ptbm_touch(0);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION ptbm_touch(bigint, bigint, text) FROM ptbm_regress_toucher;
DROP ROLE ptbm_regress_toucher;
