/* ptbm--1.3--1.4.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ptbm UPDATE TO '1.4'" to load this file. \quit

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
