/*-------------------------------------------------------------------------
 *
 * ptbm_pool.c
 *	  The page-table buffer pool: relation blocks cached in the region at
 *	  computed addresses, translated by every process's own page table.
 *
 * Address space.  Each attached relation fork has an extent of region
 * blocks (BLCKSZ each); block b of the fork lives at region base + (extent
 * start + b) * BLCKSZ in every process, so a lookup is one extent per
 * relation (a small shared table, cached per backend) and then arithmetic:
 * no hash probe per block.  The kernel's page table is the translation:
 * the first access of a process to a block another process loaded is a
 * minor fault that finds the frame in the region's shmem file.
 *
 * Page state.  One 64-bit word per region block, in an anonymous shared
 * mapping made by the postmaster before any fork (NORESERVE: untouched
 * parts cost nothing; zero means evicted, so nothing is initialised):
 *
 *	  bits 63..56  state: 0 evicted, 1 unlocked, 2..252 shared by that many
 *	               minus one holders, 253 marked (the clock saw it once and
 *	               no access came since), 255 exclusive (being loaded or
 *	               evicted)
 *	  bits 55..0   version, one more at every release of exclusive (a load
 *	               done, an eviction done)
 *
 * These are what a PTE cannot hold across processes: who holds a block,
 * whether a load is in progress, and the clock's reference bit (the
 * hardware accessed bit is per process and per PTE; the clock needs one
 * for the block).  Each PTE keeps only what is per process: present, and
 * the hardware's own bits.
 *
 * Reads.  A resident block is read optimistically: read the word, run the
 * caller's function on the bytes in place, read the word again; the
 * version says whether a load or an eviction came in between.  To keep an
 * eviction from freeing a page under a read in progress (a read fault on a
 * shared mapping would allocate a fresh zero page in the shmem file, memory
 * outside the budget), every backend has a sequence number in shared
 * memory, odd while it is inside a read: an evictor takes its victims
 * exclusive, then waits for each odd sequence to move, then frees.  After a
 * few failed tries, a read takes a shared lock instead, which no eviction
 * can take from it.
 *
 * Misses.  The loader takes the block exclusive (from evicted), reserves
 * room in the budget (evicting a batch if there is none), copies the block
 * from shared_buffers if PostgreSQL has it there (under a share lock), else
 * reads it from the relation's file with smgr and verifies it (checksums),
 * checks shared_buffers once more, and publishes it unlocked, version + 1.
 *
 * Eviction.  When the resident units would pass the budget, a clock over
 * the attached extents picks a batch: an unlocked unit is marked (second
 * chance), a marked one taken exclusive.  A unit is a block, or a huge page
 * (ptbm.huge_pages: every block of it together).  Then, by
 * ptbm.pool_eviction:
 *	  remove       MADV_REMOVE frees the memory and every process's PTEs at
 *	               once (a TLB shootdown to every CPU running a mapper);
 *	  cooperative  the batch is published; every backend inside a pool call
 *	               drops its own PTEs to it (MADV_DONTNEED through
 *	               process_madvise: a local flush) at its next access, and
 *	               once all have, or after ptbm.pool_cooperative_wait, the
 *	               evictor frees the memory, which the busy backends no
 *	               longer map.
 *
 * Staleness.  The pool caches blocks as of their load; it is read-only.  A
 * file node change (TRUNCATE, VACUUM FULL, CLUSTER) is seen at the next
 * ptbm_pool_open (under the caller's lock on the relation, so no backend
 * can still read the old blocks), which drops the extent's blocks; the
 * relcache callback drops the backend's cached extent.
 *
 * Locks and rules:
 *	  - extents_lock guards the extent table; a slot's generation changes
 *	    whenever its contents are dropped, and a loader checks it after
 *	    taking its block, so no block is loaded into a dropped extent;
 *	  - evict_lock: one evictor at a time; waiters keep answering
 *	    cooperative batches (no backend ever blocks on an evictor that
 *	    waits for it);
 *	  - a block's word is changed only by compare-and-swap, exclusive
 *	    taken only from evicted (loaders) or marked (evictors);
 *	  - a backend's slot (sequence, acknowledged batch, counters) is written
 *	    by that backend only; counters are folded into the totals when it
 *	    exits;
 *	  - the postmaster resets all of it with the region at a crash-restart.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_pool.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>
#include <sys/uio.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/smgr.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kmem.h"
#include "ptbm_pool.h"
#include "ptbm_region.h"
#include "ptbm_writes.h"

/* ---- settings ---------------------------------------------------------------- */

int			ptbm_pool_evict_batch = 64;
int			ptbm_pool_eviction = PTBM_EVICT_REMOVE;
int			ptbm_pool_coop_wait_ms = 10;

/* ---- the page-state word ------------------------------------------------------ */

#define PS_EVICTED		0
#define PS_UNLOCKED		1
#define PS_SHARED_MAX	252		/* 2..252: shared by (state - 1) holders */
#define PS_MARKED		253
#define PS_EXCLUSIVE	255

#define PS_VERSION_MASK	((UINT64CONST(1) << 56) - 1)
#define PS_STATE(w)		((int) ((w) >> 56))
#define PS_VERSION(w)	((w) & PS_VERSION_MASK)
#define PS_MAKE(s, v)	(((uint64) (s) << 56) | ((v) & PS_VERSION_MASK))

/* resident and readable without a lock: unlocked, marked or shared */
#define PS_READABLE(s)	((s) >= PS_UNLOCKED && (s) <= PS_MARKED)

/* ---- shared state ------------------------------------------------------------- */

#define PTBM_POOL_EXTENTS	256		/* relation forks attached at most */
#define PTBM_POOL_MAX_BATCH	1024	/* units per eviction batch */
#define PTBM_POOL_OPTIMISTIC_TRIES 8
#define PTBM_POOL_MIN_SLACK	1024	/* blocks an extent may grow by, at least */

typedef struct PtbmExtent
{
	bool		in_use;
	bool		dropping;		/* being detached: not found any more */
	Oid			relid;
	ForkNumber	fork;
	RelFileNode rnode;			/* the file node its blocks come from */
	uint64		first;			/* first region block */
	uint64		capacity;		/* blocks; a multiple of the unit */
	uint32		generation;		/* changes whenever its blocks are dropped */
} PtbmExtent;

/* A backend's slot: written by that backend only (a cache line of its own). */
typedef struct PtbmPoolBackend
{
	pg_atomic_uint64 seq;		/* odd while inside an optimistic read */
	pg_atomic_uint64 ack;		/* the cooperative batch it passed last */
	pg_atomic_uint32 busy;		/* inside a pool call */
	pg_atomic_uint64 hits;
	pg_atomic_uint64 misses;
	pg_atomic_uint64 loads_from_buffers;
	pg_atomic_uint64 loads_from_file;
	pg_atomic_uint64 retries;
	pg_atomic_uint64 shared_locks;
	char		pad[64];
} PtbmPoolBackend;

typedef struct PtbmPoolShared
{
	LWLock	   *extents_lock;
	LWLock	   *evict_lock;
	pg_atomic_uint64 resident;	/* units holding at least one loaded block */
	pg_atomic_uint64 clock;		/* the hand: a region unit */
	pg_atomic_uint64 batch_id;	/* the last cooperative batch published */
	int			batch_n;
	uint64		batch[PTBM_POOL_MAX_BATCH];	/* its units */
	uint32		next_generation;
	/* counters of the evictors, and those of exited backends */
	pg_atomic_uint64 evicted_blocks;
	pg_atomic_uint64 eviction_batches;
	pg_atomic_uint64 eviction_us;
	pg_atomic_uint64 coop_batches;
	pg_atomic_uint64 coop_timeouts;
	pg_atomic_uint64 reader_waits;	/* reads in flight an evictor waited for */
	PtbmPoolBackend exited;
	PtbmExtent	extents[PTBM_POOL_EXTENTS];
	PtbmPoolBackend backends[FLEXIBLE_ARRAY_MEMBER];	/* MaxBackends + 1 */
} PtbmPoolShared;

/* set in the postmaster, inherited by every child */
static uint64 pool_budget;		/* units */
static Size pool_unit;			/* bytes per unit */
static uint64 pool_unit_blocks; /* blocks per unit */
static uint64 pool_units;		/* units in the region */
static pg_atomic_uint64 *pool_state;	/* a word per region block */
static pg_atomic_uint32 *pool_unit_count;	/* per unit of many blocks: see below */
static PtbmPoolShared *pool;

/* this backend's */
static PtbmPoolBackend *pool_me;
static uint64 pool_my_seq;
static uint64 pool_my_ack;
static HTAB *pool_cache;		/* (relid, fork) -> its extent, as resolved */
static uint64 *pool_prior;		/* words of a unit taken for eviction */

typedef struct PoolCacheKey
{
	Oid			relid;
	ForkNumber	fork;
} PoolCacheKey;

typedef struct PoolCacheEntry
{
	PoolCacheKey key;
	int			extent;
	uint32		generation;
} PoolCacheEntry;

static void ptbm_pool_catch_up(uint64 id);
static void ptbm_pool_sweep(uint64 first, uint64 blocks);

/* ---- the postmaster's part ------------------------------------------------------ */

bool
ptbm_pool_enabled(void)
{
	return pool_budget > 0;
}

void
ptbm_pool_require(void)
{
	ptbm_require_region();
	if (!ptbm_pool_enabled())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the ptbm buffer pool is off"),
				 errhint("Set ptbm.pool_size (a memory size, at most ptbm.region_size) and restart the server.")));
}

/* Maps one anonymous shared array before any fork; zero-filled, NORESERVE. */
static void *
ptbm_pool_array(Size bytes)
{
	void	   *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
						 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not map the ptbm pool's page-state words (%zu bytes): %m", bytes)));
	return p;
}

/*
 * In the postmaster, after the region: refuses a pool whose memory cannot
 * be shared, held or budgeted, and maps the page-state words.
 */
void
ptbm_pool_map(Size pool_bytes)
{
	kmem_headroom room;
	uint64		blocks;

	if (pool_bytes == 0)
		return;
	if (!ptbm_kind_is_shared(ptbm_region.kind))
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the ptbm buffer pool needs a shared region, not %s",
						ptbm_kind_name(ptbm_region.kind)),
				 errdetail("A block one backend loads into a private region is its own copy: no other backend could find it."),
				 errhint("Set ptbm.region_kind to shared_anon, shared_memfd or shared_file, or ptbm.pool_size to 0.")));
	if (pool_bytes > ptbm_region.size)
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ptbm.pool_size (%zu bytes) is larger than the region (%zu bytes)",
						pool_bytes, ptbm_region.size),
				 errhint("The budget bounds the bytes resident in the region: lower ptbm.pool_size or raise ptbm.region_size.")));
	if (kmem_mem_headroom(&room) == 0 && pool_bytes > room.bytes)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("ptbm.pool_size (%zu MB) is more than the %llu MB that %s leaves",
						pool_bytes >> 20, (unsigned long long) (room.bytes >> 20), room.what),
				 errhint("Lower ptbm.pool_size, or raise the memory limit.")));

	/* a huge page is loaded and freed whole: it is the unit */
	pool_unit = ptbm_region.huge == PTBM_HUGE_OFF ? BLCKSZ :
		Max(ptbm_region.page_size, (Size) 2 * 1024 * 1024);
	pool_unit_blocks = pool_unit / BLCKSZ;
	blocks = ptbm_region.size / BLCKSZ;
	pool_units = blocks / pool_unit_blocks;
	pool_budget = Max(pool_bytes / pool_unit, 1);
	pool_state = ptbm_pool_array(blocks * sizeof(pg_atomic_uint64));
	if (pool_unit_blocks > 1)
		pool_unit_count = ptbm_pool_array(pool_units * sizeof(pg_atomic_uint32));
}

/* With the region, at a crash-restart: every block evicted again. */
void
ptbm_pool_reset(void)
{
	if (!ptbm_pool_enabled())
		return;
	if (madvise(pool_state, ptbm_region.size / BLCKSZ * sizeof(uint64), MADV_REMOVE) != 0 ||
		(pool_unit_count &&
		 madvise(pool_unit_count, pool_units * sizeof(uint32), MADV_REMOVE) != 0))
		ereport(FATAL,
				(errmsg("could not reset the ptbm pool after a crash: %m")));
}

Size
ptbm_pool_shmem_size(void)
{
	if (!ptbm_pool_enabled())
		return 0;
	return add_size(offsetof(PtbmPoolShared, backends),
					mul_size(MaxBackends + 1, sizeof(PtbmPoolBackend)));
}

/* In the postmaster's shmem_startup (every cycle): the table and the slots. */
void
ptbm_pool_shmem_attach(void)
{
	bool		found;

	if (!ptbm_pool_enabled())
		return;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pool = ShmemInitStruct("ptbm pool", ptbm_pool_shmem_size(), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("ptbm pool");

		memset(pool, 0, ptbm_pool_shmem_size());
		pool->extents_lock = &locks[0].lock;
		pool->evict_lock = &locks[1].lock;
		pg_atomic_init_u64(&pool->resident, 0);
		pg_atomic_init_u64(&pool->clock, 0);
		pg_atomic_init_u64(&pool->batch_id, 0);
		pg_atomic_init_u64(&pool->evicted_blocks, 0);
		pg_atomic_init_u64(&pool->eviction_batches, 0);
		pg_atomic_init_u64(&pool->eviction_us, 0);
		pg_atomic_init_u64(&pool->coop_batches, 0);
		pg_atomic_init_u64(&pool->coop_timeouts, 0);
		pg_atomic_init_u64(&pool->reader_waits, 0);
		for (int i = 0; i <= MaxBackends; i++)
		{
			PtbmPoolBackend *b = i < MaxBackends + 1 ? &pool->backends[i] : NULL;

			pg_atomic_init_u64(&b->seq, 0);
			pg_atomic_init_u64(&b->ack, 0);
			pg_atomic_init_u32(&b->busy, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---- a backend's part ------------------------------------------------------------- */

static void
ptbm_pool_fold(pg_atomic_uint64 *total, pg_atomic_uint64 *mine)
{
	pg_atomic_fetch_add_u64(total, pg_atomic_read_u64(mine));
	pg_atomic_write_u64(mine, 0);
}

/* At exit: the counters go to the totals, and the slot is clean for the next owner. */
static void
ptbm_pool_backend_exit(int code, Datum arg)
{
	PtbmPoolBackend *e = &pool->exited;

	ptbm_pool_fold(&e->hits, &pool_me->hits);
	ptbm_pool_fold(&e->misses, &pool_me->misses);
	ptbm_pool_fold(&e->loads_from_buffers, &pool_me->loads_from_buffers);
	ptbm_pool_fold(&e->loads_from_file, &pool_me->loads_from_file);
	ptbm_pool_fold(&e->retries, &pool_me->retries);
	ptbm_pool_fold(&e->shared_locks, &pool_me->shared_locks);
	pg_atomic_write_u32(&pool_me->busy, 0);
	pool_me = NULL;
}

/* A relation's file node or its extent may have changed: resolve it again. */
static void
ptbm_pool_relcache_cb(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	PoolCacheEntry *e;

	if (pool_cache == NULL)
		return;
	hash_seq_init(&seq, pool_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (relid == InvalidOid || e->key.relid == relid)
			(void) hash_search(pool_cache, &e->key, HASH_REMOVE, NULL);
}

/* An aborted pool call is not busy any more. */
static void
ptbm_pool_xact_cb(XactEvent event, void *arg)
{
	if (pool_me && (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT))
		pg_atomic_write_u32(&pool_me->busy, 0);
}

void
ptbm_pool_backend_init(void)
{
	HASHCTL		ctl;

	if (pool_me != NULL)
		return;
	ptbm_pool_require();
	if (MyBackendId == InvalidBackendId || MyBackendId > MaxBackends)
		elog(ERROR, "the ptbm pool is for backends and background workers");
	pool_me = &pool->backends[MyBackendId];
	/* the slot's sequence is even: its last owner left no read open */
	pool_my_seq = pg_atomic_read_u64(&pool_me->seq);
	pool_my_ack = pg_atomic_read_u64(&pool->batch_id);
	pg_atomic_write_u64(&pool_me->ack, pool_my_ack);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PoolCacheKey);
	ctl.entrysize = sizeof(PoolCacheEntry);
	pool_cache = hash_create("ptbm pool extents", 16, &ctl, HASH_ELEM | HASH_BLOBS);
	pool_prior = MemoryContextAlloc(TopMemoryContext, pool_unit_blocks * sizeof(uint64));
	CacheRegisterRelcacheCallback(ptbm_pool_relcache_cb, (Datum) 0);
	RegisterXactCallback(ptbm_pool_xact_cb, NULL);
	before_shmem_exit(ptbm_pool_backend_exit, (Datum) 0);
}

void
ptbm_pool_enter(void)
{
	ptbm_pool_backend_init();
	pg_atomic_write_u32(&pool_me->busy, 1);
	pg_memory_barrier();
}

void
ptbm_pool_leave(void)
{
	if (pool_me)
		pg_atomic_write_u32(&pool_me->busy, 0);
}

/* counters of this backend: written by it only, read by ptbm_pool_stats */
static inline void
ptbm_pool_count(pg_atomic_uint64 *c)
{
	pg_atomic_write_u64(c, pg_atomic_read_u64(c) + 1);
}

/* ---- units ------------------------------------------------------------------------ */

static inline uint64
ptbm_unit_of(uint64 block)
{
	return block / pool_unit_blocks;
}

static inline char *
ptbm_unit_addr(uint64 unit)
{
	return ptbm_region.base + unit * pool_unit;
}

/*
 * A unit of many blocks has a count: its blocks loaded or being loaded, and
 * UNIT_RESERVED once its room in the budget is taken (by the load that
 * counted itself in first).  Its memory is freed only with every block of
 * it held exclusive, so that no load can be copying into it: by an
 * eviction, or by the last of its loads to fail.
 */
#define UNIT_RESERVED	((uint32) 1 << 31)
#define UNIT_BLOCKS(c)	((c) & ~UNIT_RESERVED)

/* whether a unit holds a loaded block */
static bool
ptbm_unit_resident(uint64 unit)
{
	if (pool_unit_blocks > 1)
		return UNIT_BLOCKS(pg_atomic_read_u32(&pool_unit_count[unit])) > 0;
	return PS_STATE(pg_atomic_read_u64(&pool_state[unit])) != PS_EVICTED;
}

/* ---- extents ----------------------------------------------------------------------- */

/* The slot of (relid, fork), or -1.  extents_lock held. */
static int
ptbm_extent_find(Oid relid, ForkNumber fork)
{
	for (int i = 0; i < PTBM_POOL_EXTENTS; i++)
	{
		PtbmExtent *e = &pool->extents[i];

		if (e->in_use && !e->dropping && e->relid == relid && e->fork == fork)
			return i;
	}
	return -1;
}

static int
ptbm_extent_cmp(const void *a, const void *b)
{
	uint64		x = ((const PtbmExtent *const *) a)[0]->first;
	uint64		y = ((const PtbmExtent *const *) b)[0]->first;

	return x < y ? -1 : x > y;
}

/*
 * The first region block of a free range of blocks (a multiple of the
 * unit), or -1 with the largest free range in *largest.  extents_lock held.
 */
static int64
ptbm_extent_gap(uint64 blocks, uint64 *largest)
{
	PtbmExtent *used[PTBM_POOL_EXTENTS];
	int			n = 0;
	uint64		at = 0;
	uint64		end = pool_units * pool_unit_blocks;

	for (int i = 0; i < PTBM_POOL_EXTENTS; i++)
		if (pool->extents[i].in_use)
			used[n++] = &pool->extents[i];
	qsort(used, n, sizeof(used[0]), ptbm_extent_cmp);
	*largest = 0;
	for (int i = 0; i <= n; i++)
	{
		uint64		next = i < n ? used[i]->first : end;

		if (next - at >= blocks)
			return (int64) at;
		*largest = Max(*largest, next - at);
		if (i < n)
			at = used[i]->first + used[i]->capacity;
	}
	return -1;
}

/*
 * Drops an extent's blocks: its generation changes first (so that no load
 * can start in it), then every resident unit of it is freed.
 */
static void
ptbm_extent_drop_blocks(int slot, bool detach)
{
	PtbmExtent *e = &pool->extents[slot];
	uint64		first = e->first;
	uint64		capacity = e->capacity;

	LWLockAcquire(pool->extents_lock, LW_EXCLUSIVE);
	e->generation = ++pool->next_generation;
	if (detach)
		e->dropping = true;
	LWLockRelease(pool->extents_lock);

	ptbm_pool_sweep(first, capacity);

	if (detach)
	{
		LWLockAcquire(pool->extents_lock, LW_EXCLUSIVE);
		e->in_use = false;
		e->dropping = false;
		LWLockRelease(pool->extents_lock);
	}
}

void
ptbm_pool_attach(Relation rel, ForkNumber fork, uint64 *first, BlockNumber *capacity)
{
	BlockNumber nblocks = RelationGetNumberOfBlocksInFork(rel, fork);
	uint64		want = TYPEALIGN(pool_unit_blocks,
								 Max((uint64) nblocks * 2, (uint64) nblocks + PTBM_POOL_MIN_SLACK));
	int			slot;

	ptbm_pool_backend_init();
	LWLockAcquire(pool->extents_lock, LW_EXCLUSIVE);
	slot = ptbm_extent_find(RelationGetRelid(rel), fork);
	if (slot < 0)
	{
		uint64		largest;
		int64		at = ptbm_extent_gap(want, &largest);

		for (slot = 0; slot < PTBM_POOL_EXTENTS && pool->extents[slot].in_use; slot++)
			;
		if (slot == PTBM_POOL_EXTENTS)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("the ptbm pool has %d relation forks attached already", PTBM_POOL_EXTENTS),
					 errhint("Detach one with ptbm_pool_detach.")));
		if (at < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("no room in the ptbm region for an extent of %llu blocks for \"%s\"",
							(unsigned long long) want, RelationGetRelationName(rel)),
					 errdetail("The largest free range of the region is %llu blocks; an extent holds the relation's %u blocks and as many again to grow.",
							   (unsigned long long) largest, nblocks),
					 errhint("Raise ptbm.region_size (virtual space is cheap: the region is mapped with MAP_NORESERVE), or detach another relation.")));
		pool->extents[slot] = (PtbmExtent) {
			.in_use = true, .relid = RelationGetRelid(rel), .fork = fork,
			.rnode = rel->rd_node, .first = (uint64) at, .capacity = want,
			.generation = ++pool->next_generation
		};
	}
	*first = pool->extents[slot].first;
	*capacity = (BlockNumber) pool->extents[slot].capacity;
	LWLockRelease(pool->extents_lock);
}

int64
ptbm_pool_detach(Oid relid)
{
	int64		n = 0;

	ptbm_pool_backend_init();
	for (;;)
	{
		int			slot = -1;

		LWLockAcquire(pool->extents_lock, LW_SHARED);
		for (int i = 0; i < PTBM_POOL_EXTENTS && slot < 0; i++)
			if (pool->extents[i].in_use && !pool->extents[i].dropping &&
				pool->extents[i].relid == relid)
				slot = i;
		LWLockRelease(pool->extents_lock);
		if (slot < 0)
			break;
		ptbm_extent_drop_blocks(slot, true);
		n++;
	}
	ptbm_pool_relcache_cb((Datum) 0, relid);
	return n;
}

int64
ptbm_pool_evict_rel(Oid relid)
{
	uint64		before;

	ptbm_pool_backend_init();
	before = pg_atomic_read_u64(&pool->evicted_blocks);
	for (int i = 0; i < PTBM_POOL_EXTENTS; i++)
	{
		PtbmExtent *e = &pool->extents[i];

		if (e->in_use && !e->dropping && (relid == InvalidOid || e->relid == relid))
			ptbm_pool_sweep(e->first, e->capacity);
	}
	return (int64) (pg_atomic_read_u64(&pool->evicted_blocks) - before);
}

void
ptbm_pool_open(Relation rel, ForkNumber fork, PtbmPoolRel *pr)
{
	PoolCacheKey key = {RelationGetRelid(rel), fork};
	PoolCacheEntry *c;
	bool		found;
	PtbmExtent *e;

	ptbm_pool_backend_init();
	c = hash_search(pool_cache, &key, HASH_ENTER, &found);
	if (!found || pool->extents[c->extent].generation != c->generation ||
		!pool->extents[c->extent].in_use)
	{
		int			slot;
		bool		stale;

		LWLockAcquire(pool->extents_lock, LW_SHARED);
		slot = ptbm_extent_find(key.relid, fork);
		stale = slot >= 0 && !RelFileNodeEquals(pool->extents[slot].rnode, rel->rd_node);
		LWLockRelease(pool->extents_lock);
		if (slot < 0)
		{
			(void) hash_search(pool_cache, &key, HASH_REMOVE, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("relation \"%s\" is not attached to the ptbm pool",
							RelationGetRelationName(rel)),
					 errhint("Attach it with ptbm_pool_attach('%s'::regclass).",
							 RelationGetRelationName(rel))));
		}
		if (stale)
		{
			/* a new file node: the cached blocks are of the old one */
			ptbm_extent_drop_blocks(slot, false);
			LWLockAcquire(pool->extents_lock, LW_EXCLUSIVE);
			pool->extents[slot].rnode = rel->rd_node;
			LWLockRelease(pool->extents_lock);
		}
		c->extent = slot;
		c->generation = pool->extents[slot].generation;
	}
	e = &pool->extents[c->extent];
	pr->rel = rel;
	pr->fork = fork;
	pr->extent = c->extent;
	pr->generation = c->generation;
	pr->first = e->first;
	pr->capacity = (BlockNumber) e->capacity;
}

/* ---- eviction ---------------------------------------------------------------------- */

/*
 * One visit of the clock to a unit: an unlocked block is marked (its second
 * chance) and the unit kept; a unit whose every loaded block is marked is
 * taken exclusive, evicted ones included (no load may start in it).
 * Returns whether it was taken; pool_prior keeps the words for a rollback.
 */
static bool
ptbm_unit_take(uint64 unit)
{
	uint64		first = unit * pool_unit_blocks;
	bool		all_marked = true;
	uint64		k;

	for (k = 0; k < pool_unit_blocks; k++)
	{
		uint64		w = pg_atomic_read_u64(&pool_state[first + k]);
		int			s = PS_STATE(w);

		if (s == PS_UNLOCKED)
		{
			(void) pg_atomic_compare_exchange_u64(&pool_state[first + k], &w,
												  PS_MAKE(PS_MARKED, PS_VERSION(w)));
			all_marked = false;
		}
		else if (s != PS_MARKED && s != PS_EVICTED)
			all_marked = false; /* shared, or exclusive */
	}
	if (!all_marked)
		return false;
	for (k = 0; k < pool_unit_blocks; k++)
	{
		uint64		w = pg_atomic_read_u64(&pool_state[first + k]);
		int			s = PS_STATE(w);

		pool_prior[k] = w;
		if ((s == PS_MARKED || s == PS_EVICTED) &&
			pg_atomic_compare_exchange_u64(&pool_state[first + k], &w,
										   PS_MAKE(PS_EXCLUSIVE, PS_VERSION(w))))
			continue;
		/* an access came: give back what was taken, as it was */
		while (k-- > 0)
			pg_atomic_write_u64(&pool_state[first + k], pool_prior[k]);
		return false;
	}
	return true;
}

/*
 * Picks up to want units to evict with the clock, over the units of the
 * attached extents, and takes them exclusive.  Returns how many.
 */
static int
ptbm_pool_pick(uint64 *victims, int want)
{
	PtbmExtent *used[PTBM_POOL_EXTENTS];
	int			nused = 0;
	uint64		total = 0;
	uint64		hand = pg_atomic_read_u64(&pool->clock);
	uint64		visits = 0;
	int			n = 0;

	LWLockAcquire(pool->extents_lock, LW_SHARED);
	for (int i = 0; i < PTBM_POOL_EXTENTS; i++)
		if (pool->extents[i].in_use)
		{
			used[nused++] = &pool->extents[i];
			total += pool->extents[i].capacity / pool_unit_blocks;
		}
	qsort(used, nused, sizeof(used[0]), ptbm_extent_cmp);

	/* two rounds at most: the first marks, the second takes */
	while (n < want && visits < 2 * total + want && nused > 0)
	{
		int			i;
		uint64		unit;

		/* the extent at or after the hand, wrapping around */
		for (i = 0; i < nused; i++)
			if (hand < (used[i]->first + used[i]->capacity) / pool_unit_blocks)
				break;
		if (i == nused)
			i = 0, hand = 0;
		unit = Max(hand, used[i]->first / pool_unit_blocks);
		hand = unit + 1;
		visits++;
		if (ptbm_unit_resident(unit) && ptbm_unit_take(unit))
			victims[n++] = unit;
	}
	LWLockRelease(pool->extents_lock);
	pg_atomic_write_u64(&pool->clock, hand);
	return n;
}

/* Waits until no backend is still inside a read it began before now. */
static void
ptbm_pool_wait_readers(void)
{
	for (int i = 0; i <= MaxBackends; i++)
	{
		PtbmPoolBackend *b = &pool->backends[i];
		uint64		s = pg_atomic_read_u64(&b->seq);

		if (b == pool_me || (s & 1) == 0)
			continue;
		pg_atomic_fetch_add_u64(&pool->reader_waits, 1);
		/* a read is a copy or a search of one page: short */
		for (int spins = 0; pg_atomic_read_u64(&b->seq) == s; spins++)
		{
			if (spins < 1000)
				pg_spin_delay();
			else
				pg_usleep(10);
		}
	}
}

/*
 * Cooperative: publishes the batch, drops this backend's own PTEs to it,
 * and waits (at most ptbm.pool_cooperative_wait) until every busy backend
 * has dropped its own.
 */
static void
ptbm_pool_publish(const uint64 *victims, int n)
{
	instr_time	start,
				now;
	uint64		id;

	pool->batch_n = n;
	memcpy(pool->batch, victims, n * sizeof(uint64));
	pg_write_barrier();
	id = pg_atomic_add_fetch_u64(&pool->batch_id, 1);
	ptbm_pool_catch_up(id);
	pg_atomic_fetch_add_u64(&pool->coop_batches, 1);

	INSTR_TIME_SET_CURRENT(start);
	for (int i = 0; i <= MaxBackends; i++)
	{
		PtbmPoolBackend *b = &pool->backends[i];

		if (b == pool_me)
			continue;
		while (pg_atomic_read_u32(&b->busy) && pg_atomic_read_u64(&b->ack) < id)
		{
			INSTR_TIME_SET_CURRENT(now);
			INSTR_TIME_SUBTRACT(now, start);
			if (INSTR_TIME_GET_MILLISEC(now) >= ptbm_pool_coop_wait_ms)
			{
				pg_atomic_fetch_add_u64(&pool->coop_timeouts, 1);
				return;
			}
			pg_spin_delay();
		}
	}
}

/*
 * Frees the victims' memory (for every process) and publishes them
 * evicted, version + 1.
 */
static void
ptbm_pool_release(const uint64 *victims, int n)
{
	int			reserved = 0;	/* the victims' rooms in the budget */

	for (int v = 0; v < n; v++)
	{
		uint64		first = victims[v] * pool_unit_blocks;
		int			run = 1;

		/* adjacent units in one call */
		while (v + run < n && victims[v + run] == victims[v] + run)
			run++;
		if (kmem_release(ptbm_unit_addr(victims[v]), run * pool_unit) != 0)
			elog(PANIC, "could not free ptbm pool memory: %m");
		for (int r = 0; r < run; r++)
		{
			first = victims[v + r] * pool_unit_blocks;
			if (pool_unit_count == NULL ||
				(pg_atomic_exchange_u32(&pool_unit_count[victims[v + r]], 0) & UNIT_RESERVED))
				reserved++;
			for (uint64 k = 0; k < pool_unit_blocks; k++)
			{
				uint64		w = pg_atomic_read_u64(&pool_state[first + k]);

				pg_atomic_write_u64(&pool_state[first + k],
									PS_MAKE(PS_EVICTED, PS_VERSION(w) + 1));
			}
		}
		v += run - 1;
	}
	pg_memory_barrier();
	pg_atomic_fetch_sub_u64(&pool->resident, reserved);
}

static int
ptbm_u64_cmp(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y;
}

/* One batch, with evict_lock held.  Returns the units evicted. */
static int
ptbm_pool_evict_once(void)
{
	uint64		victims[PTBM_POOL_MAX_BATCH];
	int			want = Min(PTBM_POOL_MAX_BATCH,
						   Max(1, (ptbm_pool_evict_batch + (int) pool_unit_blocks - 1) /
							   (int) pool_unit_blocks));
	instr_time	start,
				elapsed;
	int			n;

	INSTR_TIME_SET_CURRENT(start);
	n = ptbm_pool_pick(victims, want);
	if (n == 0)
		return 0;
	qsort(victims, n, sizeof(uint64), ptbm_u64_cmp);
	if (ptbm_pool_eviction == PTBM_EVICT_COOPERATIVE)
		ptbm_pool_publish(victims, n);
	/* no read that began before the victims were taken is still on them */
	ptbm_pool_wait_readers();
	ptbm_pool_release(victims, n);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	pg_atomic_fetch_add_u64(&pool->evicted_blocks, n * pool_unit_blocks);
	pg_atomic_fetch_add_u64(&pool->eviction_batches, 1);
	pg_atomic_fetch_add_u64(&pool->eviction_us, INSTR_TIME_GET_MICROSEC(elapsed));
	return n;
}

/*
 * Room in the budget for one more unit: evicts a batch when it is full, or
 * waits for the backend that evicts one (answering its batches meanwhile).
 */
static void
ptbm_pool_reserve(void)
{
	for (;;)
	{
		uint64		r = pg_atomic_read_u64(&pool->resident);

		if (r < pool_budget)
		{
			if (pg_atomic_compare_exchange_u64(&pool->resident, &r, r + 1))
				return;
			continue;
		}
		if (LWLockConditionalAcquire(pool->evict_lock, LW_EXCLUSIVE))
		{
			int			n = 0;

			if (pg_atomic_read_u64(&pool->resident) >= pool_budget)
				n = ptbm_pool_evict_once();
			LWLockRelease(pool->evict_lock);
			if (n > 0)
				continue;
		}
		/* someone evicts, or everything is locked for now */
		if (pg_atomic_read_u64(&pool->batch_id) != pool_my_ack)
			ptbm_pool_catch_up(pg_atomic_read_u64(&pool->batch_id));
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10);
	}
}

/*
 * Frees every resident unit of [first, first + blocks) (detach, a new file
 * node, ptbm_pool_evict): each taken exclusive as soon as no read or load
 * holds it, then released as an eviction does.
 */
static void
ptbm_pool_sweep(uint64 first, uint64 blocks)
{
	LWLockAcquire(pool->evict_lock, LW_EXCLUSIVE);
	for (uint64 unit = first / pool_unit_blocks; unit < (first + blocks) / pool_unit_blocks; unit++)
	{
		uint64		b0 = unit * pool_unit_blocks;

		if (!ptbm_unit_resident(unit))
			continue;
		for (uint64 k = 0; k < pool_unit_blocks; k++)
		{
			for (;;)
			{
				uint64		w = pg_atomic_read_u64(&pool_state[b0 + k]);
				int			s = PS_STATE(w);

				if ((s == PS_UNLOCKED || s == PS_MARKED || s == PS_EVICTED) &&
					pg_atomic_compare_exchange_u64(&pool_state[b0 + k], &w,
												   PS_MAKE(PS_EXCLUSIVE, PS_VERSION(w))))
					break;
				/* held shared, or being loaded: a moment */
				pg_usleep(10);
			}
		}
		ptbm_pool_wait_readers();
		ptbm_pool_release(&unit, 1);
		pg_atomic_fetch_add_u64(&pool->evicted_blocks, pool_unit_blocks);
	}
	LWLockRelease(pool->evict_lock);
}

/* ---- the cooperative batch, from the side of a busy backend ------------------------ */

/* Drops this backend's own PTEs to the published batch id, and says so. */
static void
ptbm_pool_catch_up(uint64 id)
{
	struct iovec iov[PTBM_POOL_MAX_BATCH];
	int			n;

	pg_read_barrier();
	n = Min(pool->batch_n, PTBM_POOL_MAX_BATCH);
	for (int i = 0; i < n; i++)
	{
		iov[i].iov_base = ptbm_unit_addr(pool->batch[i]);
		iov[i].iov_len = pool_unit;
	}
	(void) kmem_drop_own(iov, n);
	pg_memory_barrier();
	pool_my_ack = id;
	if (pool_me)
		pg_atomic_write_u64(&pool_me->ack, id);
}

/* ---- loads ------------------------------------------------------------------------- */

typedef struct PoolCopy
{
	char	   *to;
	const char *from;
} PoolCopy;

static void
ptbm_pool_copy(void *arg)
{
	PoolCopy   *c = arg;

	memcpy(c->to, c->from, BLCKSZ);
}

/* Copies the block from shared_buffers if PostgreSQL has it there. */
static bool
ptbm_pool_from_buffers(Relation rel, ForkNumber fork, BlockNumber blkno, char *to)
{
	PrefetchBufferResult r = PrefetchBuffer(rel, fork, blkno);
	PoolCopy	c;

	if (!BufferIsValid(r.recent_buffer) ||
		!ReadRecentBuffer(rel->rd_node, fork, blkno, r.recent_buffer))
		return false;
	LockBuffer(r.recent_buffer, BUFFER_LOCK_SHARE);
	c.to = to;
	c.from = BufferGetPage(r.recent_buffer);
	ptbm_region_access(ptbm_pool_copy, &c);
	UnlockReleaseBuffer(r.recent_buffer);
	return true;
}

/*
 * The last failed load of a unit of many blocks (own, held exclusive):
 * frees the unit and gives its room back, unless another load has begun in
 * it meanwhile (a load begins by taking its block exclusive, before it
 * counts itself in), which then keeps the unit and its room.
 */
static void
ptbm_unit_free_idle(uint64 unit, uint64 own)
{
	uint64		first = unit * pool_unit_blocks;
	uint64		k;

	for (k = 0; k < pool_unit_blocks; k++)
	{
		uint64		w = pg_atomic_read_u64(&pool_state[first + k]);

		pool_prior[k] = w;
		if (first + k != own &&
			(PS_STATE(w) != PS_EVICTED ||
			 !pg_atomic_compare_exchange_u64(&pool_state[first + k], &w,
											 PS_MAKE(PS_EXCLUSIVE, PS_VERSION(w)))))
			break;
	}
	if (k == pool_unit_blocks)
	{
		uint32		c = pg_atomic_exchange_u32(&pool_unit_count[unit], 0);

		(void) kmem_release(ptbm_unit_addr(unit), pool_unit);
		if (c & UNIT_RESERVED)
			pg_atomic_fetch_sub_u64(&pool->resident, 1);
		pg_memory_barrier();
	}
	/* give back what was taken, as it was */
	while (k-- > 0)
		if (first + k != own)
			pg_atomic_write_u64(&pool_state[first + k], pool_prior[k]);
}

/*
 * Loads a block that is evicted, unless another backend has it first.
 * Nothing half-loaded is ever served: a failure (a page that fails
 * verification, a cancel) publishes the block evicted again.
 */
static void
ptbm_pool_load(PtbmPoolRel *pr, BlockNumber blkno)
{
	uint64		b = pr->first + blkno;
	uint64		unit = ptbm_unit_of(b);
	char	   *to = ptbm_region.base + b * BLCKSZ;
	uint64		w = pg_atomic_read_u64(&pool_state[b]);
	volatile bool counted = false;
	volatile bool reserved = false;

	if (PS_STATE(w) != PS_EVICTED ||
		!pg_atomic_compare_exchange_u64(&pool_state[b], &w, PS_MAKE(PS_EXCLUSIVE, PS_VERSION(w))))
		return;
	PG_TRY();
	{
		bool		buffered;

		/* detached, or a new file node, since the caller resolved it */
		if (pool->extents[pr->extent].generation != pr->generation)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("relation \"%s\" was detached from the ptbm pool or changed its file",
							RelationGetRelationName(pr->rel))));
		counted = true;
		if (pool_unit_count == NULL)
		{
			ptbm_pool_reserve();
			reserved = true;
		}
		else if (pg_atomic_fetch_add_u32(&pool_unit_count[unit], 1) == 0)
		{
			/* the first block of an empty unit: the unit's room */
			ptbm_pool_reserve();
			pg_atomic_fetch_or_u32(&pool_unit_count[unit], UNIT_RESERVED);
		}
		ptbm_tracking_prepare((int64) (b * BLCKSZ / ptbm_region.page_size),
							  Max(BLCKSZ / ptbm_region.page_size, 1));
		buffered = ptbm_pool_from_buffers(pr->rel, pr->fork, blkno, to);
		if (!buffered)
		{
			smgrread(RelationGetSmgr(pr->rel), pr->fork, blkno, to);
			/* in place: it writes into the page, which only we hold */
			if (!PageIsVerifiedExtended((Page) to, blkno, PIV_LOG_WARNING | PIV_REPORT_STAT))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid page in block %u of relation \"%s\"; not loaded into the ptbm pool",
								blkno, RelationGetRelationName(pr->rel))));
			/* changed in shared_buffers meanwhile: PostgreSQL's is newer */
			buffered = ptbm_pool_from_buffers(pr->rel, pr->fork, blkno, to);
		}
		ptbm_pool_count(buffered ? &pool_me->loads_from_buffers : &pool_me->loads_from_file);
	}
	PG_CATCH();
	{
		if (counted && pool_unit_count == NULL && reserved)
		{
			(void) kmem_release(ptbm_unit_addr(unit), pool_unit);
			pg_atomic_fetch_sub_u64(&pool->resident, 1);
		}
		else if (counted && pool_unit_count &&
				 UNIT_BLOCKS(pg_atomic_sub_fetch_u32(&pool_unit_count[unit], 1)) == 0)
			ptbm_unit_free_idle(unit, b);
		pg_memory_barrier();
		pg_atomic_write_u64(&pool_state[b], PS_MAKE(PS_EVICTED, PS_VERSION(w) + 1));
		PG_RE_THROW();
	}
	PG_END_TRY();
	pg_memory_barrier();
	pg_atomic_write_u64(&pool_state[b], PS_MAKE(PS_UNLOCKED, PS_VERSION(w) + 1));
	ptbm_pool_count(&pool_me->misses);
}

/* ---- reads ------------------------------------------------------------------------- */

typedef struct PoolRead
{
	PtbmPageFn	fn;
	void	   *arg;
	const char *page;
} PoolRead;

static void
ptbm_pool_run(void *arg)
{
	PoolRead   *r = arg;

	r->fn(r->page, r->arg);
}

/* fn on the page, under the SIGBUS guard where the backing file could shrink */
static inline void
ptbm_pool_call(PtbmPageFn fn, void *arg, const char *page)
{
	if (ptbm_region.kind == PTBM_SHARED_FILE)
	{
		PoolRead	r = {fn, arg, page};

		ptbm_region_access(ptbm_pool_run, &r);
	}
	else
		fn(page, arg);
}

/* Under a shared lock: no eviction can take the block meanwhile. */
static void
ptbm_pool_read_shared(PtbmPoolRel *pr, BlockNumber blkno, PtbmPageFn fn, void *arg)
{
	uint64		b = pr->first + blkno;
	pg_atomic_uint64 *st = &pool_state[b];
	const char *page = ptbm_region.base + b * BLCKSZ;

	for (;;)
	{
		uint64		w = pg_atomic_read_u64(st);
		int			s = PS_STATE(w);
		int			next = (s == PS_UNLOCKED || s == PS_MARKED) ? 2 : s + 1;

		if (s == PS_EVICTED)
			ptbm_pool_load(pr, blkno);
		else if (PS_READABLE(s) && next <= PS_SHARED_MAX &&
				 pg_atomic_compare_exchange_u64(st, &w, PS_MAKE(next, PS_VERSION(w))))
			break;
		else
		{
			if (pg_atomic_read_u64(&pool->batch_id) != pool_my_ack)
				ptbm_pool_catch_up(pg_atomic_read_u64(&pool->batch_id));
			pg_spin_delay();
		}
	}
	ptbm_pool_call(fn, arg, page);
	for (;;)
	{
		uint64		w = pg_atomic_read_u64(st);
		int			s = PS_STATE(w);

		if (pg_atomic_compare_exchange_u64(st, &w, PS_MAKE(s == 2 ? PS_UNLOCKED : s - 1,
														   PS_VERSION(w))))
			break;
	}
	ptbm_pool_count(&pool_me->shared_locks);
}

void
ptbm_pool_with_page(PtbmPoolRel *pr, BlockNumber blkno, PtbmPageFn fn, void *arg)
{
	uint64		b = pr->first + blkno;
	pg_atomic_uint64 *st = &pool_state[b];
	const char *page = ptbm_region.base + b * BLCKSZ;
	bool		loaded = false;

	if (unlikely(ptbm_tracking_active))
		ptbm_tracking_prepare((int64) (b * BLCKSZ / ptbm_region.page_size),
							  Max(BLCKSZ / ptbm_region.page_size, 1));
	for (int tries = 0; tries < PTBM_POOL_OPTIMISTIC_TRIES; tries++)
	{
		uint64		w1,
					w2;

		/* a published cooperative batch: drop our PTEs to it first */
		if (unlikely(pg_atomic_read_u64(&pool->batch_id) != pool_my_ack))
			ptbm_pool_catch_up(pg_atomic_read_u64(&pool->batch_id));

		/* inside a read: an evictor waits for us before it frees anything */
		pg_atomic_write_u64(&pool_me->seq, ++pool_my_seq);
		pg_memory_barrier();
		w1 = pg_atomic_read_u64(st);
		if (likely(PS_READABLE(PS_STATE(w1))))
		{
			ptbm_pool_call(fn, arg, page);
			pg_read_barrier();
			w2 = pg_atomic_read_u64(st);
			pg_atomic_write_u64(&pool_me->seq, ++pool_my_seq);
			if (likely(PS_VERSION(w2) == PS_VERSION(w1) && PS_READABLE(PS_STATE(w2))))
			{
				/* an access: the clock's mark goes (second chance) */
				if (unlikely(PS_STATE(w2) == PS_MARKED))
					(void) pg_atomic_compare_exchange_u64(st, &w2,
														  PS_MAKE(PS_UNLOCKED, PS_VERSION(w2)));
				if (likely(!loaded))
					ptbm_pool_count(&pool_me->hits);
				return;
			}
			ptbm_pool_count(&pool_me->retries);
			continue;
		}
		pg_atomic_write_u64(&pool_me->seq, ++pool_my_seq);
		if (PS_STATE(w1) == PS_EVICTED)
		{
			ptbm_pool_load(pr, blkno);
			loaded = true;
		}
		else
			pg_spin_delay();	/* exclusive: a load or an eviction */
	}
	ptbm_pool_read_shared(pr, blkno, fn, arg);
}

/* ---- reports ----------------------------------------------------------------------- */

void
ptbm_pool_get_stats(PtbmPoolStats *s)
{
	PtbmPoolBackend *e = &pool->exited;

	ptbm_pool_require();
	memset(s, 0, sizeof(*s));
	s->budget_units = pool_budget;
	s->resident_units = pg_atomic_read_u64(&pool->resident);
	s->unit_bytes = pool_unit;
	LWLockAcquire(pool->extents_lock, LW_SHARED);
	for (int i = 0; i < PTBM_POOL_EXTENTS; i++)
		if (pool->extents[i].in_use)
		{
			s->extents++;
			s->attached_blocks += pool->extents[i].capacity;
		}
	LWLockRelease(pool->extents_lock);
	for (int i = -1; i <= MaxBackends; i++)
	{
		PtbmPoolBackend *b = i < 0 ? e : &pool->backends[i];

		s->hits += pg_atomic_read_u64(&b->hits);
		s->misses += pg_atomic_read_u64(&b->misses);
		s->loads_from_buffers += pg_atomic_read_u64(&b->loads_from_buffers);
		s->loads_from_file += pg_atomic_read_u64(&b->loads_from_file);
		s->optimistic_retries += pg_atomic_read_u64(&b->retries);
		s->shared_locks += pg_atomic_read_u64(&b->shared_locks);
	}
	s->evicted_blocks = pg_atomic_read_u64(&pool->evicted_blocks);
	s->eviction_batches = pg_atomic_read_u64(&pool->eviction_batches);
	s->eviction_us = pg_atomic_read_u64(&pool->eviction_us);
	s->cooperative_batches = pg_atomic_read_u64(&pool->coop_batches);
	s->cooperative_timeouts = pg_atomic_read_u64(&pool->coop_timeouts);
	s->reader_waits = pg_atomic_read_u64(&pool->reader_waits);
}

PtbmPoolBlock *
ptbm_pool_resident(Oid relid, ForkNumber fork, int *n, uint64 *first)
{
	PtbmPoolBlock *out;
	uint64		capacity;
	int			slot;

	ptbm_pool_require();
	LWLockAcquire(pool->extents_lock, LW_SHARED);
	slot = ptbm_extent_find(relid, fork);
	*first = slot >= 0 ? pool->extents[slot].first : 0;
	capacity = slot >= 0 ? pool->extents[slot].capacity : 0;
	LWLockRelease(pool->extents_lock);
	if (slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation %u is not attached to the ptbm pool", relid)));
	out = palloc_extended(Max(capacity, 1) * sizeof(PtbmPoolBlock), MCXT_ALLOC_HUGE);
	*n = 0;
	for (uint64 k = 0; k < capacity; k++)
	{
		uint64		w = pg_atomic_read_u64(&pool_state[*first + k]);

		if ((k & 65535) == 0)
			CHECK_FOR_INTERRUPTS();
		if (PS_STATE(w) == PS_EVICTED)
			continue;
		out[*n].blkno = (BlockNumber) k;
		out[*n].word = w;
		(*n)++;
	}
	return out;
}

const char *
ptbm_pool_state_name(uint64 word)
{
	int			s = PS_STATE(word);

	if (s == PS_EVICTED)
		return "evicted";
	if (s == PS_UNLOCKED)
		return "unlocked";
	if (s == PS_MARKED)
		return "marked";
	if (s == PS_EXCLUSIVE)
		return "exclusive";
	return "shared";
}

int
ptbm_pool_state_holders(uint64 word)
{
	int			s = PS_STATE(word);

	return (s >= 2 && s <= PS_SHARED_MAX) ? s - 1 : 0;
}

uint64
ptbm_pool_state_version(uint64 word)
{
	return PS_VERSION(word);
}
