/* ptbm--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ptbm UPDATE TO '1.1'" to load this file. \quit

-- How a present page came into a process's page table (ptbm_pte.via): a
-- closed set of values, so an enum.  Four bytes a row instead of a text of
-- up to 18; comparisons with the same string literals as before still work.
CREATE TYPE ptbm_via AS ENUM (
    'own access',           -- the process touched it itself through ptbm
    'shared page table',    -- hugetlb page tables shared between processes
    'huge mapping',         -- one THP fault mapped the whole 2 MB
    'fault-around',         -- a read fault mapped neighbours from the page cache
    'other');

-- ptbm_pte() with via of that type (an OUT parameter's type cannot be
-- altered in place).
DROP FUNCTION ptbm_pte(integer, bigint, bigint);
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
    OUT flags text[],
    OUT touched boolean,
    OUT via ptbm_via,
    OUT written boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_pte'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED ROWS 1000;

REVOKE ALL ON FUNCTION ptbm_pte(integer, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ptbm_pte(integer, bigint, bigint) TO pg_monitor;

-- Resetting another backend's write set write-protects pages in its page
-- table: ptbm_written(pid, true) allows that to superusers only; this
-- function does the same for whoever a superuser grants EXECUTE on it.
CREATE FUNCTION ptbm_written_reset(
    pid integer DEFAULT pg_backend_pid(),
    OUT first_page bigint,
    OUT pages bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ptbm_written_reset'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED ROWS 100;

REVOKE ALL ON FUNCTION ptbm_written_reset(integer) FROM PUBLIC;
