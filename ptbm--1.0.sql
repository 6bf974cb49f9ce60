/* ptbm--1.0.sql */

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
    OUT frames_visible boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'ptbm_region_info'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- One row per page of the region as one process's page table holds it.
CREATE FUNCTION ptbm_pte(
    pid integer DEFAULT pg_backend_pid(),
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
    OUT flags text[])
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
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED;

-- Reads bytes from one page of the region (faulting it in this backend).
CREATE FUNCTION ptbm_read(page bigint, length integer, "offset" integer DEFAULT 0)
RETURNS bytea
AS 'MODULE_PATHNAME', 'ptbm_read'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED;

-- Reporting: pg_monitor.  Changing memory: superuser unless granted.
REVOKE ALL ON FUNCTION ptbm_region() FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_pte(integer, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_touch(bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_write(bigint, bytea, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ptbm_read(bigint, integer, integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION ptbm_region() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ptbm_pte(integer, bigint, bigint) TO pg_monitor;
