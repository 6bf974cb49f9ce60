-- The region as the server mapped it (test/ptbm.conf: 16MB, shared_anon).
SET client_min_messages = warning;

SELECT base ~ '^0x[0-9a-f]+$' AS base_is_hex,
       size = 16 * 1024 * 1024 AS size_as_configured,
       page_size > 0 AND size = pages * page_size AS pages_cover_size,
       kind,
       backing LIKE '/dev/zero%' AS backed_by_shmem_file,
       inode > 0 AS has_inode,
       'sh' = ANY (vma_flags) AS vma_shared,
       'nr' = ANY (vma_flags) AS vma_noreserve,
       vmas,
       generation
FROM ptbm_region();

-- The region's address is the one the postmaster mapped: identical in
-- every backend (a second connection is a second process).
SELECT base AS my_base FROM ptbm_region() \gset
\c
SET client_min_messages = warning;
SELECT base = :'my_base' AS same_address_in_another_backend FROM ptbm_region();

-- The same mapping, as the kernel lists it in this backend's maps.
SELECT count(*) AS region_lines_in_maps
FROM regexp_split_to_table(pg_read_file('/proc/' || pg_backend_pid() || '/maps'), E'\n') AS l,
     ptbm_region() AS r
WHERE l LIKE substr(r.base, 3) || '-%';

-- Capabilities are the kernel's; the columns are never NULL.
SELECT pagemap_scan IS NOT NULL AND soft_dirty IS NOT NULL
       AND frames_visible IS NOT NULL AS capabilities_known
FROM ptbm_region();
