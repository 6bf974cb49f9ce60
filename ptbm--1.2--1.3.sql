/* ptbm--1.2--1.3.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ptbm UPDATE TO '1.3'" to load this file. \quit

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
