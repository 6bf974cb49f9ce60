-- Each client has 64 scratch pages from 128 + 64 * client_id: it writes 32
-- random bytes at a random offset, reads them back, then evicts a random run
-- of its own scratch pages with any method the region kind accepts
-- (dontneed, pageout, cold; remove for the shared kinds).
\set pg 128 + :client_id * 64 + random(0, 63)
\set off random(0, :psz - 32)
\set salt random(1, 1000000000)
SELECT ptbm_write(:pg, decode(md5(:salt || '-' || :client_id), 'hex') || decode(md5(:salt || ''), 'hex'), :off);
SELECT stress_check(ptbm_read(:pg, 32, :off) = decode(md5(:salt || '-' || :client_id), 'hex') || decode(md5(:salt || ''), 'hex'), 'scratch page ' || :pg || ' offset ' || :off);
\set m random(0, 2 + :shared)
\set n random(1, 64 - (:pg - 128 - :client_id * 64))
SELECT pages FROM ptbm_evict(:pg, :n, (ARRAY['dontneed', 'pageout', 'cold', 'remove'])[:m + 1]);
