-- Reads or writes (an atomic OR 0: the data stay) a run of pages anywhere
-- in the first 4096, other clients' pages and the sentinels included; reads
-- another client's own page.
\set f random(0, 4096 - 64)
\set n random(1, 64)
\set m random(0, 1)
SELECT pages FROM ptbm_touch(:f, :n, (ARRAY['read', 'write'])[:m + 1]);
\set other random(16, 79)
SELECT length(ptbm_read(:other, 16, 0));
