/* ptbm--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ptbm UPDATE TO '1.2'" to load this file. \quit

-- ptbm_backend_memory bound its arithmetic to whatever operator matched
-- best when it was created: numeric * bigint and numeric / bigint have no
-- exact match in pg_catalog, so an operator planted in the extension's
-- schema beforehand won, and ran with the privileges of whoever read the
-- view.  Every operator, function and relation is now named in pg_catalog
-- and every operand cast to the type of the pg_catalog operator.
CREATE OR REPLACE VIEW ptbm_backend_memory AS
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

-- Labels that tell the truth.  STRICT where a NULL argument gives no
-- answer (the C code returned NULL or no rows for it already); the others
-- read a NULL page count as "to the end of the region" or a NULL pid as
-- "every process".  A function that reports the calling process's own
-- mapping is PARALLEL RESTRICTED: a parallel worker would answer for
-- itself.
ALTER FUNCTION ptbm_region() PARALLEL RESTRICTED;
ALTER FUNCTION ptbm_shmem_segment() PARALLEL RESTRICTED;
ALTER FUNCTION ptbm_write(bigint, bytea, integer) STRICT;
ALTER FUNCTION ptbm_read(bigint, integer, integer) STRICT;
ALTER FUNCTION ptbm_map(integer) STRICT;
ALTER FUNCTION ptbm_track_writes(boolean) STRICT;
ALTER FUNCTION ptbm_written(integer, boolean) STRICT;
ALTER FUNCTION ptbm_written_reset(integer) STRICT;
