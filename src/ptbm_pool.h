/*-------------------------------------------------------------------------
 *
 * ptbm_pool.h
 *	  The page-table buffer pool: relation blocks served from the region at
 *	  computed addresses, translated by the page table.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_pool.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_POOL_H
#define PTBM_POOL_H

#include "storage/block.h"
#include "storage/relfilenode.h"
#include "utils/relcache.h"

typedef enum PtbmEviction
{
	PTBM_EVICT_REMOVE,			/* MADV_REMOVE: every process's PTEs at once */
	PTBM_EVICT_COOPERATIVE		/* each busy backend drops its own first */
} PtbmEviction;

/* settings (defined in ptbm.c) */
extern int	ptbm_pool_evict_batch;
extern int	ptbm_pool_eviction;
extern int	ptbm_pool_coop_wait_ms;

/* postmaster: after the region is mapped, and at every reset */
extern void ptbm_pool_map(Size pool_bytes);
extern void ptbm_pool_reset(void);
/* shared memory (request, then attach in every process) */
extern Size ptbm_pool_shmem_size(void);
extern void ptbm_pool_shmem_attach(void);
extern void ptbm_pool_backend_init(void);

/* ERROR (55000) unless the pool is on; whether it is */
extern void ptbm_pool_require(void);
extern bool ptbm_pool_enabled(void);

/*
 * A relation fork's extent as a backend uses it: block b of the fork is
 * region block first + b, at ptbm_region.base + (first + b) * BLCKSZ, the
 * same in every process.  Resolved once per relation (ptbm_pool_open), then
 * only arithmetic.
 */
typedef struct PtbmPoolRel
{
	Relation	rel;			/* opened and locked by the caller */
	ForkNumber	fork;
	int			extent;			/* in the shared table */
	uint32		generation;		/* of the extent when resolved */
	uint64		first;			/* region block of block 0 */
	BlockNumber capacity;		/* blocks the extent holds */
} PtbmPoolRel;

/*
 * Finds rel's extent (ERROR 55000 if rel is not attached).  If the
 * relation's file node changed since the extent cached it (TRUNCATE,
 * VACUUM FULL, CLUSTER), the extent's blocks are dropped first: the caller
 * holds a lock on rel, so no backend can read the old blocks any more.
 */
extern void ptbm_pool_open(Relation rel, ForkNumber fork, PtbmPoolRel *pr);

/*
 * Runs fn on the bytes of block blkno, loading the block on a miss.  A
 * resident block is read optimistically: fn reads the page in place while
 * nothing is locked, and the block's version, read before and after, tells
 * whether an eviction or a load overlapped (then fn runs again, or under a
 * shared lock after a few tries).  fn must therefore be a function of the
 * page's bytes only, keep its results in arg (overwriting them), and raise
 * no ERROR.  The block must be below the extent's capacity and the
 * relation's size (checked by the caller).
 */
typedef void (*PtbmPageFn) (const char *page, void *arg);

extern void ptbm_pool_with_page(PtbmPoolRel *pr, BlockNumber blkno, PtbmPageFn fn,
								void *arg);

/* around a pool call: this backend uses the pool (a busy mapper) */
extern void ptbm_pool_enter(void);
extern void ptbm_pool_leave(void);

/* attach, detach, prewarm and evict: the SQL layer's */
extern void ptbm_pool_attach(Relation rel, ForkNumber fork, uint64 *first, BlockNumber *capacity);
extern int64 ptbm_pool_detach(Oid relid);
extern int64 ptbm_pool_evict_rel(Oid relid);

/* What ptbm_pool_stats reports (summed over backends, exited ones too). */
typedef struct PtbmPoolStats
{
	uint64		budget_units;
	uint64		resident_units;
	uint64		unit_bytes;
	int			extents;
	uint64		attached_blocks;
	uint64		hits;
	uint64		misses;
	uint64		loads_from_buffers;
	uint64		loads_from_file;
	uint64		optimistic_retries;
	uint64		shared_locks;
	uint64		evicted_blocks;
	uint64		eviction_batches;
	uint64		eviction_us;
	uint64		cooperative_batches;
	uint64		cooperative_timeouts;
	uint64		reader_waits;	/* reads in flight an eviction waited for */
} PtbmPoolStats;

extern void ptbm_pool_get_stats(PtbmPoolStats *s);

/* one resident block of an extent, for ptbm_pool_blocks */
typedef struct PtbmPoolBlock
{
	BlockNumber blkno;
	uint64		word;			/* its page-state word */
} PtbmPoolBlock;

extern PtbmPoolBlock *ptbm_pool_resident(Oid relid, ForkNumber fork, int *n, uint64 *first);
extern const char *ptbm_pool_state_name(uint64 word);
extern int	ptbm_pool_state_holders(uint64 word);
extern uint64 ptbm_pool_state_version(uint64 word);

#endif							/* PTBM_POOL_H */
