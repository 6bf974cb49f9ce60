/*-------------------------------------------------------------------------
 *
 * ptbm_pool_sql.c
 *	  SQL functions of the buffer pool: attach, detach, read, prewarm,
 *	  evict, and its reports (ptbm_pool_stats, ptbm_pool_blocks).
 *
 * Relations are checked as pageinspect and pg_prewarm check them: a table,
 * index, materialized view or TOAST table with storage, not temporary (a
 * temporary relation's blocks live in one backend's local buffers), and
 * for reading its blocks SELECT on it besides EXECUTE on the function.
 * Every function holds AccessShareLock on the relation while it works, so
 * the file node cannot change under it.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_pool_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "common/relpath.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "kmem.h"
#include "ptbm_pool.h"
#include "ptbm_proc.h"
#include "ptbm_region.h"

PG_FUNCTION_INFO_V1(ptbm_pool_attach_sql);
PG_FUNCTION_INFO_V1(ptbm_pool_detach_sql);
PG_FUNCTION_INFO_V1(ptbm_pool_read);
PG_FUNCTION_INFO_V1(ptbm_pool_prewarm);
PG_FUNCTION_INFO_V1(ptbm_pool_evict);
PG_FUNCTION_INFO_V1(ptbm_pool_stats);
PG_FUNCTION_INFO_V1(ptbm_pool_blocks);

/* ---- relations --------------------------------------------------------------- */

/*
 * Opens a relation the pool can serve, with AccessShareLock, and checks it;
 * need_select: its blocks are read (SELECT on it, as for reading rows).
 */
static Relation
ptbm_pool_relation(Oid relid, bool need_select)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	char		relkind;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = rel->rd_rel->relkind;

	if (!RELKIND_HAS_STORAGE(relkind) || relkind == RELKIND_SEQUENCE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot use the ptbm pool with relation \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail_relkind_not_supported(relkind)));
	if (RELATION_IS_OTHER_TEMP(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot access temporary tables of other sessions")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("temporary relation \"%s\" cannot use the ptbm pool",
						RelationGetRelationName(rel)),
				 errdetail("Its blocks live in this backend's local buffers, which no other backend sees.")));
	if (need_select)
	{
		AclResult	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);

		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, get_relkind_objtype(relkind),
						   RelationGetRelationName(rel));
	}
	return rel;
}

/* The fork named by a text argument, which the relation must have. */
static ForkNumber
ptbm_pool_fork(Relation rel, text *name)
{
	ForkNumber	fork = forkname_to_number(text_to_cstring(name));

	if (!smgrexists(RelationGetSmgr(rel), fork))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"%s\" has no %s fork",
						RelationGetRelationName(rel), forkNames[fork])));
	return fork;
}

/* ERROR unless blkno is a block of the fork that the extent holds. */
static void
ptbm_pool_check_block(const PtbmPoolRel *pr, int64 blkno)
{
	BlockNumber nblocks = RelationGetNumberOfBlocksInFork(pr->rel, pr->fork);

	if (blkno < 0 || blkno >= nblocks)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("block number %lld is out of range for relation \"%s\"",
						(long long) blkno, RelationGetRelationName(pr->rel))));
	if (blkno >= pr->capacity)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("block %lld of relation \"%s\" is past its extent in the ptbm pool (%u blocks)",
						(long long) blkno, RelationGetRelationName(pr->rel), pr->capacity),
				 errdetail("The relation grew past the room given to it when it was attached."),
				 errhint("Detach it and attach it again to give it room.")));
}

/* ---- attach, detach ---------------------------------------------------------- */

/*
 * ptbm_pool_attach(rel regclass, fork text) returns (first_block bigint,
 * capacity bigint): the relation fork's extent of region blocks.
 */
Datum
ptbm_pool_attach_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {0};
	Relation	rel;
	uint64		first;
	BlockNumber capacity;

	ptbm_pool_require();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rel = ptbm_pool_relation(PG_GETARG_OID(0), false);
	ptbm_pool_attach(rel, ptbm_pool_fork(rel, PG_GETARG_TEXT_PP(1)), &first, &capacity);
	relation_close(rel, AccessShareLock);
	values[0] = Int64GetDatum((int64) first);
	values[1] = Int64GetDatum((int64) capacity);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ptbm_pool_detach(rel regclass) returns bigint: forks detached, blocks freed */
Datum
ptbm_pool_detach_sql(PG_FUNCTION_ARGS)
{
	ptbm_pool_require();
	PG_RETURN_INT64(ptbm_pool_detach(PG_GETARG_OID(0)));
}

/* ---- read, prewarm, evict ------------------------------------------------------- */

static void
ptbm_pool_copy_page(const char *page, void *arg)
{
	memcpy(arg, page, BLCKSZ);
}

static void
ptbm_pool_touch_page(const char *page, void *arg)
{
}

/*
 * ptbm_pool_read(rel regclass, blkno bigint, fork text) returns bytea: one
 * block through the pool (loaded on a miss).
 */
Datum
ptbm_pool_read(PG_FUNCTION_ARGS)
{
	int64		blkno = PG_GETARG_INT64(1);
	bytea	   *result;
	Relation	rel;
	PtbmPoolRel pr;

	ptbm_pool_require();
	rel = ptbm_pool_relation(PG_GETARG_OID(0), true);
	ptbm_pool_open(rel, ptbm_pool_fork(rel, PG_GETARG_TEXT_PP(2)), &pr);
	ptbm_pool_check_block(&pr, blkno);
	result = palloc(VARHDRSZ + BLCKSZ);
	SET_VARSIZE(result, VARHDRSZ + BLCKSZ);
	ptbm_pool_enter();
	ptbm_pool_with_page(&pr, (BlockNumber) blkno, ptbm_pool_copy_page, VARDATA(result));
	ptbm_pool_leave();
	relation_close(rel, AccessShareLock);
	PG_RETURN_BYTEA_P(result);
}

/*
 * ptbm_pool_prewarm(rel regclass, fork text) returns bigint: every block of
 * the fork through the pool (a budget smaller than the relation evicts on
 * the way); the blocks passed.
 */
Datum
ptbm_pool_prewarm(PG_FUNCTION_ARGS)
{
	Relation	rel;
	PtbmPoolRel pr;
	BlockNumber nblocks;

	ptbm_pool_require();
	rel = ptbm_pool_relation(PG_GETARG_OID(0), true);
	ptbm_pool_open(rel, ptbm_pool_fork(rel, PG_GETARG_TEXT_PP(1)), &pr);
	nblocks = Min(RelationGetNumberOfBlocksInFork(rel, pr.fork), pr.capacity);
	ptbm_pool_enter();
	for (BlockNumber b = 0; b < nblocks; b++)
	{
		CHECK_FOR_INTERRUPTS();
		ptbm_pool_with_page(&pr, b, ptbm_pool_touch_page, NULL);
	}
	ptbm_pool_leave();
	relation_close(rel, AccessShareLock);
	PG_RETURN_INT64((int64) nblocks);
}

/*
 * ptbm_pool_evict(rel regclass) returns bigint: frees the resident blocks of
 * one relation, or (NULL) of every attached one, for every process.
 */
Datum
ptbm_pool_evict(PG_FUNCTION_ARGS)
{
	ptbm_pool_require();
	PG_RETURN_INT64(ptbm_pool_evict_rel(PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0)));
}

/* ---- reports -------------------------------------------------------------------- */

#define PTBM_POOL_STATS_COLS 20

/* ptbm_pool_stats() returns the pool's budget, residency and counters */
Datum
ptbm_pool_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[PTBM_POOL_STATS_COLS];
	bool		nulls[PTBM_POOL_STATS_COLS] = {0};
	PtbmPoolStats s;
	int			i = 0;

	ptbm_pool_get_stats(&s);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[i++] = Int64GetDatum((int64) (s.budget_units * s.unit_bytes));
	values[i++] = Int64GetDatum((int64) (s.resident_units * s.unit_bytes));
	values[i++] = Int64GetDatum((int64) s.resident_units);
	values[i++] = Int64GetDatum((int64) s.unit_bytes);
	values[i++] = Int32GetDatum(s.extents);
	values[i++] = Int64GetDatum((int64) s.attached_blocks);
	values[i++] = Int64GetDatum((int64) s.hits);
	values[i++] = Int64GetDatum((int64) s.misses);
	values[i++] = Int64GetDatum((int64) s.loads_from_buffers);
	values[i++] = Int64GetDatum((int64) s.loads_from_file);
	values[i++] = Int64GetDatum((int64) s.optimistic_retries);
	values[i++] = Int64GetDatum((int64) s.shared_locks);
	values[i++] = Int64GetDatum((int64) s.evicted_blocks);
	values[i++] = Int64GetDatum((int64) s.eviction_batches);
	values[i++] = Float8GetDatum(s.eviction_us / 1000.0);
	values[i++] = Int64GetDatum((int64) s.cooperative_batches);
	values[i++] = Int64GetDatum((int64) s.cooperative_timeouts);
	values[i++] = Int64GetDatum((int64) s.reader_waits);
	values[i++] = CStringGetTextDatum(ptbm_pool_eviction == PTBM_EVICT_COOPERATIVE ?
									  "cooperative" : "remove");
	values[i++] = Int32GetDatum(ptbm_pool_evict_batch);
	Assert(i == PTBM_POOL_STATS_COLS);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* processes mapping each block of an extent, counted from their page tables */
typedef struct BlockMappers
{
	uint64		first_addr;		/* address of the extent's block 0 */
	int32	   *mappers;		/* per block */
	int64		last;			/* the last block counted for this process */
	int64		nblocks;
} BlockMappers;

/* a sink: runs of present pages, each block counted once per process */
static int
ptbm_pool_mappers_run(void *arg, const kmem_chunk *c)
{
	BlockMappers *m = arg;
	int64		b0 = (c->addr - m->first_addr) / BLCKSZ;
	int64		b1 = (c->addr + c->npages * c->page_size - 1 - m->first_addr) / BLCKSZ;

	for (int64 b = Max(b0, m->last + 1); b <= b1 && b < m->nblocks; b++)
		m->mappers[b]++;
	m->last = Max(m->last, b1);
	return 0;
}

#define PTBM_POOL_BLOCKS_COLS 5

/*
 * ptbm_pool_blocks(rel regclass, fork text) returns one row per resident
 * block: its state, version and shared holders (the page-state word), and
 * how many processes of the cluster map it (their page tables).
 */
Datum
ptbm_pool_blocks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	ForkNumber	fork;
	PtbmPoolBlock *blocks;
	int			n;
	uint64		first;
	BlockMappers m;
	PtbmProc   *procs;
	int			nprocs;
	kmem_work	w;

	ptbm_pool_require();
	InitMaterializedSRF(fcinfo, 0);
	rel = ptbm_pool_relation(PG_GETARG_OID(0), false);
	fork = ptbm_pool_fork(rel, PG_GETARG_TEXT_PP(1));
	blocks = ptbm_pool_resident(RelationGetRelid(rel), fork, &n, &first);

	/* the extent's blocks up to the last resident one, in every page table */
	m.first_addr = (uint64) (uintptr_t) ptbm_region.base + first * BLCKSZ;
	m.nblocks = n > 0 ? (int64) blocks[n - 1].blkno + 1 : 0;
	m.mappers = palloc_extended(Max(m.nblocks, 1) * sizeof(int32), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	procs = ptbm_procs(&nprocs);
	ptbm_walk_work(&w, 65536, false);
	for (int p = 0; p < nprocs && m.nblocks > 0; p++)
	{
		int			r;

		CHECK_FOR_INTERRUPTS();
		if (!ptbm_proc_open(&procs[p]))
			continue;
		m.last = -1;
		r = kmem_walk(procs[p].pagemap, m.first_addr, m.first_addr + m.nblocks * BLCKSZ, 1,
					  KMEM_PRESENT, &w, ptbm_pool_mappers_run, &m);
		(void) ptbm_proc_close(&procs[p], r, errno);
	}

	for (int i = 0; i < n; i++)
	{
		Datum		values[PTBM_POOL_BLOCKS_COLS];
		bool		nulls[PTBM_POOL_BLOCKS_COLS] = {0};

		values[0] = Int64GetDatum((int64) blocks[i].blkno);
		values[1] = CStringGetTextDatum(ptbm_pool_state_name(blocks[i].word));
		values[2] = Int64GetDatum((int64) ptbm_pool_state_version(blocks[i].word));
		values[3] = Int32GetDatum(ptbm_pool_state_holders(blocks[i].word));
		values[4] = Int32GetDatum(m.mappers[blocks[i].blkno]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}
