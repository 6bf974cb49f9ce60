-- Run with pgbench -C (a new backend per transaction) beside the others:
-- backends keep exiting while the reports scan them.
\set p random(0, 4096 - 64)
SELECT pages FROM ptbm_touch(:p, 64, 'read');
