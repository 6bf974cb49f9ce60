/* ptbm--1.5.sql */

-- A fresh install of version 1.5; ptbm--1.0.sql and the update scripts
-- take an installed 1.0, 1.1, 1.2, 1.3 or 1.4 to the same objects.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ptbm" to load this file. \quit

-- The buffer-table region and what this kernel lets ptbm see.
CREATE FUNCTION ptbm_region(
    OUT base text,
    OUT size bigint,
    OUT page_size integer,
    OUT pages bigint,
    OUT kind text,
    OUT backing text,
    OUT inode bigint,
    OUT vma_flags text[],
    OUT vmas integer,
    OUT generation integer,
    OUT pagemap_scan boolean,
    OUT soft_dirty boolean,
    OUT frames_visible boolean,
    OUT huge_pages text,
    OUT kernel_page_size integer,
    OUT huge_mapped bigint,
    OUT page_table_sharing boolean,
    OUT touch_granule bigint,
    OUT write_tracking text)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_region_info'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- How a present page came into a process's page table (ptbm_pte.via).
CREATE TYPE ptbm_via AS ENUM (
    'own access',           -- the process touched it itself through ptbm
    'shared page table',    -- hugetlb page tables shared between processes
    'huge mapping',         -- one THP fault mapped the whole 2 MB
    'fault-around',         -- a read fault mapped neighbours from the page cache
    'other');

-- One row per page of the region as one process's page table holds it.
CREATE FUNCTION ptbm_pte(
    pid integer DEFAULT pg_catalog.pg_backend_pid(),
    first_page bigint DEFAULT 0,
    page_count bigint DEFAULT NULL,
    OUT page bigint,
    OUT address text,
    OUT present boolean,
    OUT swapped boolean,
    OUT shared boolean,
    OUT exclusive boolean,
    OUT soft_dirty boolean,
    OUT zero_page boolean,
    OUT huge boolean,
    OUT pfn bigint,
    OUT mapcount bigint,
    OUT flags text[],
    OUT touched boolean,
    OUT via ptbm_via,
    OUT written boolean,
    OUT numa_node integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_pte'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED ROWS 1000;

-- Reads or writes pages in the calling backend; reports the faults taken.
CREATE FUNCTION ptbm_touch(
    first_page bigint,
    page_count bigint DEFAULT 1,
    mode text DEFAULT 'read',
    OUT pages bigint,
    OUT minor_faults bigint,
    OUT major_faults bigint,
    OUT elapsed_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_touch'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED;

-- Writes bytes into one page of the region; returns the bytes written.
CREATE FUNCTION ptbm_write(page bigint, data bytea, "offset" integer DEFAULT 0)
RETURNS integer
AS 'MODULE_PATHNAME', 'ptbm_write'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Reads bytes from one page of the region (faulting it in this backend).
CREATE FUNCTION ptbm_read(page bigint, length integer, "offset" integer DEFAULT 0)
RETURNS bytea
AS 'MODULE_PATHNAME', 'ptbm_read'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Every process of the cluster: what its page table holds for the region,
-- and the kernel's own accounting of it (smaps, VmPTE).
CREATE FUNCTION ptbm_backends(
    OUT pid integer,
    OUT backend_type text,
    OUT application_name text,
    OUT present bigint,
    OUT exclusive bigint,
    OUT shared bigint,
    OUT swapped bigint,
    OUT rss bigint,
    OUT pss bigint,
    OUT shared_clean bigint,
    OUT shared_dirty bigint,
    OUT private_clean bigint,
    OUT private_dirty bigint,
    OUT huge_mapped bigint,
    OUT page_table bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_backends'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 20;

-- One row per page: which processes map it, and does it exist at all.
CREATE FUNCTION ptbm_sharing(
    first_page bigint DEFAULT 0,
    page_count bigint DEFAULT NULL,
    OUT page bigint,
    OUT processes integer,
    OUT pids integer[],
    OUT same_frame boolean,
    OUT mapcount bigint,
    OUT in_page_cache boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_sharing'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED ROWS 1000;

-- One row per process: a strip of width cells, each the density of present
-- pages in its slice of the region ('.' none, ':' to '%' eighths, '@' full).
CREATE FUNCTION ptbm_map(
    width integer DEFAULT 64,
    OUT pid integer,
    OUT backend_type text,
    OUT present bigint,
    OUT pages_per_cell bigint,
    OUT map text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_map'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 20;

-- Drops pages: dontneed (this backend's PTEs), remove (every backend's, and
-- the data), pageout, cold.
CREATE FUNCTION ptbm_evict(
    first_page bigint,
    page_count bigint DEFAULT 1,
    method text DEFAULT 'dontneed',
    OUT pages bigint,
    OUT elapsed_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_evict'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

-- The calling backend starts (or stops) tracking its own writes to the
-- region; calling it again while tracking resets the set.
CREATE FUNCTION ptbm_track_writes(
    enable boolean DEFAULT true,
    OUT tracking boolean,
    OUT mechanism text,
    OUT page_table_before bigint,
    OUT page_table_after bigint,
    OUT elapsed_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_track_writes'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- The runs of pages a process wrote since it started tracking or since the
-- last reset; reset protects them again in the same walk.
CREATE FUNCTION ptbm_written(
    pid integer DEFAULT pg_catalog.pg_backend_pid(),
    reset boolean DEFAULT false,
    OUT first_page bigint,
    OUT pages bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_written'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 100;

-- Resetting another backend's write set write-protects pages in its page
-- table: ptbm_written(pid, true) allows that to superusers only; this
-- function does the same for whoever a superuser grants EXECUTE on it.
CREATE FUNCTION ptbm_written_reset(
    pid integer DEFAULT pg_catalog.pg_backend_pid(),
    OUT first_page bigint,
    OUT pages bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_written_reset'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 100;

-- Reporting: pg_monitor.  Changing memory: superuser unless granted.
REVOKE ALL ON FUNCTION ptbm_region() FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_pte(integer, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_touch(bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_write(bigint, bytea, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_read(bigint, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_backends() FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_sharing(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_map(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_evict(bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_track_writes(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_written(integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_written_reset(integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION ptbm_region() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_pte(integer, bigint, bigint) TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_backends() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_sharing(bigint, bigint) TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_map(integer) TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_written(integer, boolean) TO pg_monitor;

-- PostgreSQL's main shared memory segment (the mapping that holds
-- shared_buffers), backend by backend.

-- Where the segment is, and where shared_buffers lie in it.
CREATE FUNCTION ptbm_shmem_segment(
    OUT base text,
    OUT size bigint,
    OUT backing text,
    OUT page_size bigint,
    OUT base_page_size integer,
    OUT buffers_base text,
    OUT buffers_offset bigint,
    OUT buffers_size bigint,
    OUT buffers_os_pages bigint,
    OUT nbuffers integer)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_shmem_segment'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Every process of the cluster: how much of the segment and of
-- shared_buffers its page table maps, with which page size, and what its
-- page tables cost.  present and present_buffers count base pages.
CREATE FUNCTION ptbm_shmem_backends(
    OUT pid integer,
    OUT backend_type text,
    OUT state text,
    OUT application_name text,
    OUT segment_size bigint,
    OUT page_size bigint,
    OUT page_kind text,
    OUT present bigint,
    OUT present_buffers bigint,
    OUT mapped_pages bigint,
    OUT rss bigint,
    OUT pss bigint,
    OUT hugetlb bigint,
    OUT segment_page_table bigint,
    OUT page_table bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_shmem_backends'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 20;

-- One row per shared buffer (bufferid as in pg_buffercache): how many of
-- its OS pages are present in pid's page table; with pid NULL, summed over
-- every process, and how many processes map at least one of them.
CREATE FUNCTION ptbm_buffer_ptes(
    pid integer DEFAULT NULL,
    OUT bufferid integer,
    OUT os_pages integer,
    OUT present integer,
    OUT processes integer,
    OUT numa_node integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_buffer_ptes'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED ROWS 16384;

-- Every process of the cluster: its present pages per NUMA node, for the
-- region and for PostgreSQL's main shared memory segment (base pages; a
-- NULL node: present, but no node to tell).  A process's rows of an area
-- sum to what ptbm_backends (region) and ptbm_shmem_backends (segment)
-- count present.
CREATE FUNCTION ptbm_numa_nodes(
    OUT pid integer,
    OUT backend_type text,
    OUT area text,
    OUT node integer,
    OUT pages bigint,
    OUT bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_numa_nodes'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 40;

-- pg_stat_activity with what each process maps of shared memory and what
-- its page tables cost, the costliest first.
-- Every operator, function and relation is named in pg_catalog, every
-- operand cast to the type of the pg_catalog operator: nothing planted in
-- the extension's schema can stand in for them.
CREATE VIEW ptbm_backend_memory AS
SELECT b.pid,
       b.backend_type,
       a.datname,
       a.usename,
       b.application_name,
       b.state,
       b.page_kind,
       b.page_size,
       b.present OPERATOR(pg_catalog.*) s.base_page_size::pg_catalog.int8 AS shmem_mapped,
       b.present_buffers OPERATOR(pg_catalog.*) s.base_page_size::pg_catalog.int8 AS buffers_mapped,
       pg_catalog.round(100.0::pg_catalog.numeric
                        OPERATOR(pg_catalog.*) b.present_buffers::pg_catalog.numeric
                        OPERATOR(pg_catalog./) s.buffers_os_pages::pg_catalog.numeric,
                        1) AS buffers_mapped_pct,
       b.segment_page_table AS shmem_page_table,
       b.page_table,
       a.backend_start,
       a.wait_event_type,
       a.wait_event,
       a.query
FROM ptbm_shmem_backends() b
     CROSS JOIN ptbm_shmem_segment() s
     LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) b.pid
ORDER BY b.page_table DESC, b.pid;

REVOKE ALL ON FUNCTION ptbm_shmem_segment() FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_shmem_backends() FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_buffer_ptes(integer) FROM PUBLIC;
REVOKE ALL ON ptbm_backend_memory FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ptbm_shmem_segment() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_shmem_backends() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_buffer_ptes(integer) TO pg_monitor;
REVOKE ALL ON FUNCTION ptbm_numa_nodes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ptbm_numa_nodes() TO pg_monitor;
GRANT SELECT ON ptbm_backend_memory TO pg_monitor;

-- The page-table buffer pool (ptbm.pool_size > 0): relation blocks served
-- from the region at computed addresses, translated by the page table.

-- Gives a relation fork an extent of region blocks: block b of the fork is
-- region block first_block + b in every process.
CREATE FUNCTION ptbm_pool_attach(
    rel regclass,
    fork text DEFAULT 'main',
    OUT first_block bigint,
    OUT capacity bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_pool_attach_sql'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Frees the relation's blocks and its extents; returns the forks detached.
CREATE FUNCTION ptbm_pool_detach(rel regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ptbm_pool_detach_sql'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- One block through the pool (loaded on a miss).
CREATE FUNCTION ptbm_pool_read(rel regclass, blkno bigint, fork text DEFAULT 'main')
RETURNS bytea
AS 'MODULE_PATHNAME', 'ptbm_pool_read'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Every block of the fork through the pool; returns the blocks passed.
CREATE FUNCTION ptbm_pool_prewarm(rel regclass, fork text DEFAULT 'main')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ptbm_pool_prewarm'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Frees the resident blocks of one relation, or of all (NULL).
CREATE FUNCTION ptbm_pool_evict(rel regclass DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ptbm_pool_evict'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

-- The budget, what is resident, and the counters.
CREATE FUNCTION ptbm_pool_stats(
    OUT budget bigint,
    OUT resident bigint,
    OUT resident_units bigint,
    OUT unit_size bigint,
    OUT extents integer,
    OUT attached_blocks bigint,
    OUT hits bigint,
    OUT misses bigint,
    OUT loads_from_buffers bigint,
    OUT loads_from_file bigint,
    OUT optimistic_retries bigint,
    OUT shared_locks bigint,
    OUT evicted_blocks bigint,
    OUT eviction_batches bigint,
    OUT eviction_ms double precision,
    OUT cooperative_batches bigint,
    OUT cooperative_timeouts bigint,
    OUT reader_waits bigint,
    OUT eviction text,
    OUT evict_batch integer)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_pool_stats'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- One row per resident block of a relation fork: its page-state word, and
-- how many processes of the cluster map it in their page tables.
CREATE FUNCTION ptbm_pool_blocks(
    rel regclass,
    fork text DEFAULT 'main',
    OUT blkno bigint,
    OUT state text,
    OUT version bigint,
    OUT holders integer,
    OUT processes integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_pool_blocks'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 1000;

-- Reports: pg_monitor.  Loading and evicting: superuser unless granted;
-- reading blocks also needs SELECT on the relation (checked in C).
REVOKE ALL ON FUNCTION ptbm_pool_attach(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_pool_detach(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_pool_read(regclass, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_pool_prewarm(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_pool_evict(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_pool_stats() FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_pool_blocks(regclass, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ptbm_pool_stats() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_pool_blocks(regclass, text) TO pg_monitor;

-- The study: the same access loops through the buffer pool ('pool') and
-- through PostgreSQL's buffer manager ('bufmgr': ReadBufferExtended and a
-- share lock; 'recent': ReadRecentBuffer with the buffer remembered).
-- Superusers only.

-- Random blocks among the first hot of rel (NULL: all), until accesses are
-- done or seconds have passed; verify checks every page (checksum, and that
-- each tuple's own TID names the block).
CREATE FUNCTION ptbm_bench_hits(
    rel regclass,
    path text,
    accesses bigint,
    seed integer DEFAULT 1,
    seconds double precision DEFAULT NULL,
    hot bigint DEFAULT NULL,
    verify boolean DEFAULT false,
    OUT accesses bigint,
    OUT elapsed_ms double precision,
    OUT ns_per_access double precision,
    OUT minor_faults bigint,
    OUT major_faults bigint,
    OUT sum bigint,
    OUT verified bigint,
    OUT failures bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_bench_hits'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

-- Point lookups: random keys in 1..max_key, each from the index's metapage
-- down to its leaf and the heap tuple by TID, every page through the path;
-- a sample is checked against SELECT ... WHERE key_column = k.
CREATE FUNCTION ptbm_bench_lookups(
    index regclass,
    heap regclass,
    path text,
    lookups bigint,
    seed integer DEFAULT 1,
    seconds double precision DEFAULT NULL,
    max_key bigint DEFAULT 100000,
    key_column text DEFAULT 'aid',
    OUT lookups bigint,
    OUT elapsed_ms double precision,
    OUT lookups_per_s double precision,
    OUT pages bigint,
    OUT found bigint,
    OUT minor_faults bigint,
    OUT verified bigint,
    OUT mismatches bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_bench_lookups'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

-- Every page of rel in order, counting its normal line pointers.
CREATE FUNCTION ptbm_bench_scan(
    rel regclass,
    path text,
    passes integer DEFAULT 1,
    OUT pages bigint,
    OUT line_pointers bigint,
    OUT elapsed_ms double precision,
    OUT pages_per_s double precision,
    OUT minor_faults bigint,
    OUT major_faults bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_bench_scan'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION ptbm_bench_hits(regclass, text, bigint, integer, double precision, bigint, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_bench_lookups(regclass, regclass, text, bigint, integer, double precision, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_bench_scan(regclass, text, integer) FROM PUBLIC;
