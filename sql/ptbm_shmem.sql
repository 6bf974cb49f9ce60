-- PostgreSQL's main shared memory segment, backend by backend.  Only
-- relations are checked: what the kernel maps where is its own business
-- (and the server may have the segment in huge pages or not).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_buffercache;

-- The columns.
SELECT * FROM ptbm_shmem_segment() WHERE false;
SELECT * FROM ptbm_shmem_backends() WHERE false;
SELECT * FROM ptbm_buffer_ptes() WHERE false;
SELECT * FROM ptbm_backend_memory WHERE false;

-- The segment is the mapping that holds shared_buffers: NBuffers blocks.
SELECT base ~ '^0x[0-9a-f]+$' AS base_is_hex,
       nbuffers = (SELECT setting::int FROM pg_settings WHERE name = 'shared_buffers')
         AS nbuffers_is_shared_buffers,
       buffers_size = nbuffers::bigint * current_setting('block_size')::int AS buffers_size,
       buffers_offset >= 0 AND buffers_offset + buffers_size <= size AS buffers_inside,
       ('x' || lpad(substr(buffers_base, 3), 16, '0'))::bit(64)::bigint
         - ('x' || lpad(substr(base, 3), 16, '0'))::bit(64)::bigint = buffers_offset
         AS offset_is_address_difference,
       page_size >= base_page_size AND size % page_size = 0 AS whole_pages,
       buffers_os_pages BETWEEN buffers_size / base_page_size
                            AND buffers_size / base_page_size + 1 AS os_pages_cover_buffers,
       CASE WHEN page_size > base_page_size THEN backing LIKE '/anon_hugepage%'
            ELSE backing LIKE '/dev/zero%' END AS shmem_or_hugetlbfs_file,
       base <> (SELECT base FROM ptbm_region()) AS not_ptbm_region
FROM ptbm_shmem_segment();

-- One line of this backend's maps.
SELECT count(*) AS segment_lines_in_maps
FROM regexp_split_to_table(pg_read_file('/proc/' || pg_backend_pid() || '/maps'), E'\n') AS l,
     ptbm_shmem_segment() AS s
WHERE l LIKE substr(s.base, 3) || '-%';

-- Every process of the cluster, the postmaster first.
SELECT count(*) FILTER (WHERE b.backend_type = 'postmaster') AS postmasters,
       (array_agg(b.backend_type))[1] AS first,
       count(*) FILTER (WHERE b.pid = pg_backend_pid()) AS me,
       count(*) <= (SELECT count(*) + 1 FROM pg_stat_activity) AS within_pg_stat_activity,
       bool_and(b.segment_size = s.size) AS same_segment,
       bool_and(b.page_size = s.page_size) AS same_page_size,
       bool_and(b.page_kind = CASE WHEN s.page_size > s.base_page_size THEN 'hugetlb'
                                   ELSE b.page_kind END) AS hugetlb_if_huge_page_size,
       bool_and(b.page_kind IN ('base', 'thp', 'hugetlb')) AS known_kinds,
       bool_and(b.present_buffers <= b.present) AS buffers_within_present,
       bool_and(b.present * s.base_page_size <= b.segment_size) AS present_within_segment,
       bool_and(b.mapped_pages <= b.present
                AND b.mapped_pages * b.page_size >= b.present * s.base_page_size)
         AS mapped_pages_in_page_size_units,
       bool_and(b.page_table > 0 AND b.segment_page_table <= b.page_table) AS page_tables,
       bool_and(b.rss >= 0 AND b.pss <= b.rss AND b.hugetlb >= 0) AS smaps_sizes
FROM ptbm_shmem_backends() b, ptbm_shmem_segment() s;

-- This backend, as pg_stat_activity sees it.
SELECT b.backend_type, b.state, b.application_name = a.application_name AS same_app,
       b.present > 0 AS maps_some_shared_memory
FROM ptbm_shmem_backends() b JOIN pg_stat_activity a USING (pid)
WHERE pid = pg_backend_pid();

-- A table of a few hundred blocks, written by this backend.
CREATE TABLE ptbm_shmem_t (i int, pad text);
INSERT INTO ptbm_shmem_t SELECT g, repeat('x', 400) FROM generate_series(1, 3000) g;

-- A new backend scans it: afterwards, every buffer that holds one of its
-- blocks (pg_buffercache says which) is present in its page table.
\c
SET client_min_messages = warning;
SELECT count(*) FROM ptbm_shmem_t;
SELECT count(*) = pg_relation_size('ptbm_shmem_t') / current_setting('block_size')::int
         AS every_block_in_a_buffer,
       count(*) > 100 AS more_than_a_few,
       count(*) FILTER (WHERE p.present > 0) = count(*) AS every_buffer_mapped_here,
       bool_and(p.present <= p.os_pages) AS within_os_pages
FROM pg_buffercache b
     JOIN ptbm_buffer_ptes(pg_backend_pid()) p USING (bufferid)
WHERE b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND b.relfilenode = pg_relation_filenode('ptbm_shmem_t')
  AND b.relforknumber = 0;

-- With no pid: summed over all processes, this one among them.
SELECT bool_and(allp.processes >= 1) AS mapped_by_a_process,
       bool_and(allp.present >= mine.present) AS mine_included,
       bool_and(allp.processes <= (SELECT count(*) FROM ptbm_shmem_backends()))
         AS at_most_every_process
FROM pg_buffercache b
     JOIN ptbm_buffer_ptes(pg_backend_pid()) mine USING (bufferid)
     JOIN ptbm_buffer_ptes() allp USING (bufferid)
WHERE b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND b.relfilenode = pg_relation_filenode('ptbm_shmem_t')
  AND b.relforknumber = 0;

-- One row per buffer, joining pg_buffercache one to one.
SELECT count(*) = (SELECT count(*) FROM pg_buffercache) AS one_row_per_buffer,
       min(bufferid) AS first_buffer,
       max(bufferid) = (SELECT nbuffers FROM ptbm_shmem_segment()) AS last_is_nbuffers,
       bool_and(os_pages BETWEEN current_setting('block_size')::int / s.base_page_size
                             AND current_setting('block_size')::int / s.base_page_size + 1)
         AS os_pages_of_a_block,
       bool_and(present BETWEEN 0 AND os_pages) AS present_within_os_pages,
       bool_and(processes = sign(present)) AS one_process
FROM ptbm_buffer_ptes(pg_backend_pid()) JOIN pg_buffercache USING (bufferid),
     ptbm_shmem_segment() s;

-- Another process's buffers: the postmaster's.
SELECT count(*) = (SELECT nbuffers FROM ptbm_shmem_segment()) AS one_row_per_buffer,
       bool_and(processes = sign(present)) AS one_process
FROM ptbm_buffer_ptes((SELECT pid FROM ptbm_shmem_backends() WHERE backend_type = 'postmaster'));

-- Bad and NULL pids.
SELECT count(*) FROM ptbm_buffer_ptes(1);
SELECT count(*) FROM ptbm_buffer_ptes(-1);
SELECT count(*) = (SELECT nbuffers FROM ptbm_shmem_segment()) AS null_pid_is_all
FROM ptbm_buffer_ptes(NULL);

-- The view: pg_stat_activity and page-table cost, the costliest first.
SELECT count(*) = (SELECT count(*) FROM ptbm_shmem_backends()) AS every_process,
       count(*) FILTER (WHERE backend_type = 'postmaster' AND datname IS NULL) AS postmaster,
       array_agg(page_table) = array_agg(page_table ORDER BY page_table DESC) AS by_cost,
       bool_and(shmem_page_table <= page_table) AS shmem_part_of_cost,
       bool_and(buffers_mapped <= shmem_mapped) AS buffers_part_of_shmem,
       bool_and(buffers_mapped_pct BETWEEN 0 AND 100) AS percent
FROM ptbm_backend_memory;
SELECT datname = current_database() AS db, usename = current_user AS usr, state
FROM ptbm_backend_memory WHERE pid = pg_backend_pid();

-- Privileges: reports are for pg_monitor.
SELECT p.proname,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS pg_monitor
FROM pg_proc p
WHERE p.proname IN ('ptbm_shmem_segment', 'ptbm_shmem_backends', 'ptbm_buffer_ptes')
ORDER BY p.proname;
SELECT has_table_privilege('public', 'ptbm_backend_memory', 'SELECT') AS public,
       has_table_privilege('pg_monitor', 'ptbm_backend_memory', 'SELECT') AS pg_monitor;

SET ROLE pg_database_owner;
SELECT count(*) FROM ptbm_shmem_segment();
SELECT count(*) FROM ptbm_shmem_backends();
SELECT count(*) FROM ptbm_buffer_ptes();
SELECT count(*) FROM ptbm_backend_memory;
RESET ROLE;

SET ROLE pg_monitor;
SELECT count(*) AS rows FROM ptbm_shmem_segment();
SELECT count(*) > 1 AS rows, count(state) > 0 AS states_visible FROM ptbm_shmem_backends();
SELECT count(*) = (SELECT nbuffers FROM ptbm_shmem_segment()) AS rows FROM ptbm_buffer_ptes();
SELECT count(*) > 1 AS rows FROM ptbm_backend_memory;
RESET ROLE;

-- A view runs its functions with the reader's privileges: SELECT on
-- ptbm_backend_memory is not enough without EXECUTE on the two functions
-- it reads (pg_monitor has all three), as the README says.
CREATE ROLE ptbm_regress_viewer;
GRANT SELECT ON ptbm_backend_memory TO ptbm_regress_viewer;
SET ROLE ptbm_regress_viewer;
SELECT count(*) FROM ptbm_backend_memory;
RESET ROLE;
GRANT EXECUTE ON FUNCTION ptbm_shmem_segment() TO ptbm_regress_viewer;
SET ROLE ptbm_regress_viewer;
SELECT count(*) FROM ptbm_backend_memory;
RESET ROLE;
GRANT EXECUTE ON FUNCTION ptbm_shmem_backends() TO ptbm_regress_viewer;
SET ROLE ptbm_regress_viewer;
SELECT count(*) > 1 AS rows FROM ptbm_backend_memory;
RESET ROLE;
REVOKE ALL ON ptbm_backend_memory FROM ptbm_regress_viewer;
REVOKE ALL ON FUNCTION ptbm_shmem_backends() FROM ptbm_regress_viewer;
REVOKE ALL ON FUNCTION ptbm_shmem_segment() FROM ptbm_regress_viewer;
DROP ROLE ptbm_regress_viewer;

DROP TABLE ptbm_shmem_t;
