-- Evicts 64 pages anywhere in the first 4096 with a method that keeps the
-- data for this kind: pageout, cold, and dontneed for the shared kinds.
\set f random(0, 4096 - 64)
\set m random(0, 1 + :shared)
SELECT pages FROM ptbm_evict(:f, 64, (ARRAY['pageout', 'cold', 'dontneed'])[:m + 1]);
