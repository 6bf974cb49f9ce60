-- ptbm_pte: this backend's page-table entries for the region.
SET client_min_messages = warning;

-- One row per page, numbered from 0, at page_size strides.
SELECT count(*) = (SELECT pages FROM ptbm_region()) AS one_row_per_page,
       min(page) = 0 AS from_zero,
       max(page) = (SELECT pages - 1 FROM ptbm_region()) AS to_last
FROM ptbm_pte();
-- The address of every page, as the text PostgreSQL's to_hex gives (rows
-- after the first rewrite only the digits that change).
SELECT bool_and(p.address = '0x' || to_hex(('x' || lpad(substr(r.base, 3), 16, '0'))::bit(64)::bigint
                                           + p.page * r.page_size))
       AS addresses_follow_pages
FROM ptbm_pte() p, ptbm_region() r;

-- Reporting never perturbs: this backend never touched the region, so it
-- has no PTE anywhere in it, however often we look.
SELECT count(*) FILTER (WHERE present) AS present_before FROM ptbm_pte();
SELECT count(*) FILTER (WHERE present) AS present_still FROM ptbm_pte();

-- Touch pages 100..149 for reading, 200..209 for writing.
SELECT pages, minor_faults >= 1 AS faulted FROM ptbm_touch(100, 50);
SELECT pages, minor_faults >= 1 AS faulted FROM ptbm_touch(200, 10, 'write');

-- Every touched page is present, shared-file backed (bit 61) and mapped by
-- this backend only.  Fault-around may add neighbours, never fewer.
SELECT count(*) AS touched_present,
       bool_and(shared) AS all_shared_bit,
       bool_and(exclusive) AS all_exclusive,
       bool_or(swapped) AS any_swapped
FROM ptbm_pte(pg_backend_pid(), 100, 50) WHERE present;
SELECT count(*) FILTER (WHERE present) AS written_present
FROM ptbm_pte(pg_backend_pid(), 200, 10);
SELECT count(*) FILTER (WHERE present) >= 60 AS at_least_touched FROM ptbm_pte();

-- Touching the pages again costs fewer faults than pages: their PTEs are there.
SELECT minor_faults < pages AS fewer_faults_than_pages FROM ptbm_touch(100, 50);

-- The present count equals the kernel's own accounting: smaps Rss of the
-- region divided by the page size, read here independently of ptbm.
WITH r AS (SELECT substr(base, 3) AS b, page_size FROM ptbm_region()),
     s AS (SELECT pg_read_file('/proc/' || pg_backend_pid() || '/smaps') AS t),
     rss AS (SELECT (regexp_match(substr(s.t, strpos(s.t, E'\n' || r.b || '-')),
                                  'Rss: +([0-9]+) kB'))[1]::bigint * 1024 / r.page_size AS pages
             FROM r, s)
SELECT (SELECT count(*) FROM ptbm_pte() WHERE present) = rss.pages AS present_equals_smaps_rss
FROM rss;

-- Frame numbers: the server runs without CAP_SYS_ADMIN, so the kernel
-- hides them; the columns are NULL rather than a misleading 0.
SELECT CASE WHEN frames_visible
            THEN (SELECT count(*) = count(pfn) FROM ptbm_pte() WHERE present)
            ELSE (SELECT count(pfn) = 0 AND count(mapcount) = 0 AND count(flags) = 0
                  FROM ptbm_pte())
       END AS frame_columns_consistent
FROM ptbm_region();

-- soft_dirty is NULL exactly when the kernel lacks soft-dirty tracking.
SELECT CASE WHEN r.soft_dirty THEN count(p.soft_dirty) = count(*)
            ELSE count(p.soft_dirty) = 0 END AS soft_dirty_consistent
FROM ptbm_region() r, ptbm_pte(pg_backend_pid(), 0, 300) p
GROUP BY r.soft_dirty;

-- Write and read back bytes; a read of an untouched page gives zeros.
SELECT ptbm_write(300, '\x70746266'::bytea, 10) AS bytes_written;
SELECT ptbm_read(300, 4, 10) AS read_back;
SELECT ptbm_read(301, 4) AS untouched_zeros;
SELECT ptbm_write(302, '\x01', 4095) AS last_byte_of_page;
SELECT ptbm_read(302, 1, 4095) AS last_byte;

-- NULL arguments: no rows or NULL, never an error.
SELECT count(*) AS null_pid_rows FROM ptbm_pte(NULL);
SELECT count(*) AS null_first_rows FROM ptbm_pte(pg_backend_pid(), NULL);
SELECT count(*) = 10 AS null_count_to_end
FROM ptbm_pte(pg_backend_pid(), (SELECT pages - 10 FROM ptbm_region()), NULL);
SELECT count(*) AS zero_count_rows FROM ptbm_pte(pg_backend_pid(), 0, 0);
SELECT ptbm_touch(NULL) IS NULL AS touch_null;
SELECT ptbm_read(NULL, 1) IS NULL AS read_null, ptbm_write(0, NULL) IS NULL AS write_null;

-- Other processes of the cluster: the postmaster and the checkpointer
-- never touch the region, whatever this backend did.
SELECT count(*) FILTER (WHERE present) AS postmaster_present
FROM ptbm_pte(split_part(pg_read_file('postmaster.pid'), E'\n', 1)::int);
SELECT count(*) FILTER (WHERE present) AS checkpointer_present
FROM ptbm_pte((SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'));


-- One row per page of the region, over pages of several kinds.
SELECT count(*) = (SELECT pages FROM ptbm_region()) AS all_pages,
       count(DISTINCT (present, via)) >= 2 AS several_kinds
FROM ptbm_pte();
