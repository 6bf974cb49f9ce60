/* ptbm--1.4--1.5.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ptbm UPDATE TO '1.5'" to load this file. \quit

-- NUMA nodes of present pages, read from the page tables with move_pages
-- (no target nodes): nothing is touched or allocated to ask.  NULL where
-- there is no PTE, or the kernel gives no node (the zero page, or a kernel
-- without NUMA).

-- ptbm_pte gains numa_node (its other columns unchanged)
DROP FUNCTION ptbm_pte(integer, bigint, bigint);
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
REVOKE ALL ON FUNCTION ptbm_pte(integer, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ptbm_pte(integer, bigint, bigint) TO pg_monitor;

-- ptbm_buffer_ptes gains numa_node: the node of a present page of the
-- buffer, in pid's page table (NULL pid: in any process's)
DROP FUNCTION ptbm_buffer_ptes(integer);
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
REVOKE ALL ON FUNCTION ptbm_buffer_ptes(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ptbm_buffer_ptes(integer) TO pg_monitor;

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
REVOKE ALL ON FUNCTION ptbm_numa_nodes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ptbm_numa_nodes() TO pg_monitor;
