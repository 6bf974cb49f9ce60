/*-------------------------------------------------------------------------
 *
 * ptbm_study.c
 *	  The study: the same access loops through the page-table buffer pool
 *	  and through PostgreSQL's buffer manager, so that the only difference
 *	  between two measured runs is how a block is found and held.
 *
 * A page source gives the loops a block's bytes for the time of one call
 * of a page function:
 *	  pool    extent lookup once, then address arithmetic and an optimistic
 *	          read (the version is checked after every call: the pool's
 *	          correctness checks are never off while measuring);
 *	  bufmgr  ReadBufferExtended + LockBuffer(SHARE) + UnlockReleaseBuffer;
 *	  recent  ReadRecentBuffer with the buffer remembered from the last
 *	          access to that block (PostgreSQL's own fast path), else as
 *	          bufmgr.
 * Page functions may see a torn page under an optimistic read (the pool
 * then calls them again): they check every offset before they follow it
 * and never fail; only a page that is still wrong once the version check
 * passed is an error.
 *
 * The workloads: random block hits (with an optional verification of each
 * page: its checksum, and that every tuple's own TID names the block),
 * point lookups that descend a B-tree on raw pages and fetch the heap
 * tuple (int4 keys: pgbench_accounts), and scans that count line pointers.
 * Each is a superuser-only SQL function that runs a bounded loop and
 * returns its counts, timings and this backend's faults (getrusage).
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_study.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "access/itup.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_type_d.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/checksum.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "ptbm_pool.h"

PG_FUNCTION_INFO_V1(ptbm_bench_hits);
PG_FUNCTION_INFO_V1(ptbm_bench_lookups);
PG_FUNCTION_INFO_V1(ptbm_bench_scan);

/* accesses between interrupt checks and clock reads */
#define STUDY_TICK	1024

/* ---- page sources ------------------------------------------------------------ */

typedef enum SourceKind
{
	SRC_POOL,
	SRC_BUFMGR,
	SRC_RECENT
} SourceKind;

typedef struct Source
{
	SourceKind	kind;
	Relation	rel;
	PtbmPoolRel pool;
	Buffer	   *recent;			/* per block: the buffer it was in last */
	BlockNumber nblocks;
	uint64		accesses;
} Source;

static void
source_open(Source *s, Relation rel, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->rel = rel;
	s->nblocks = RelationGetNumberOfBlocks(rel);
	if (strcmp(path, "pool") == 0)
	{
		s->kind = SRC_POOL;
		ptbm_pool_open(rel, MAIN_FORKNUM, &s->pool);
		s->nblocks = Min(s->nblocks, s->pool.capacity);
		ptbm_pool_enter();
	}
	else if (strcmp(path, "bufmgr") == 0)
		s->kind = SRC_BUFMGR;
	else if (strcmp(path, "recent") == 0)
	{
		s->kind = SRC_RECENT;
		s->recent = palloc_extended(Max(s->nblocks, 1) * sizeof(Buffer),
									MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown path \"%s\"", path),
				 errhint("Valid paths are \"pool\", \"bufmgr\" and \"recent\".")));
}

static void
source_close(Source *s)
{
	if (s->kind == SRC_POOL)
		ptbm_pool_leave();
}

/* fn on block blkno's bytes, held as the source holds a block */
static inline void
source_with_page(Source *s, BlockNumber blkno, PtbmPageFn fn, void *arg)
{
	Buffer		buf;

	s->accesses++;
	if (s->kind == SRC_POOL)
	{
		ptbm_pool_with_page(&s->pool, blkno, fn, arg);
		return;
	}
	if (s->kind == SRC_RECENT && BufferIsValid(s->recent[blkno]) &&
		ReadRecentBuffer(s->rel->rd_node, MAIN_FORKNUM, blkno, s->recent[blkno]))
		buf = s->recent[blkno];
	else
	{
		buf = ReadBufferExtended(s->rel, MAIN_FORKNUM, blkno, RBM_NORMAL, NULL);
		if (s->kind == SRC_RECENT)
			s->recent[blkno] = buf;
	}
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	fn(BufferGetPage(buf), arg);
	UnlockReleaseBuffer(buf);
}

/* ---- what every result has: time and faults ------------------------------------ */

typedef struct Clock
{
	instr_time	start;
	struct rusage ru;
} Clock;

static void
clock_start(Clock *c)
{
	getrusage(RUSAGE_SELF, &c->ru);
	INSTR_TIME_SET_CURRENT(c->start);
}

static double
clock_ms(const Clock *c)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, c->start);
	return INSTR_TIME_GET_MILLISEC(now);
}

static void
clock_faults(const Clock *c, int64 *minor, int64 *major)
{
	struct rusage now;

	getrusage(RUSAGE_SELF, &now);
	*minor = now.ru_minflt - c->ru.ru_minflt;
	*major = now.ru_majflt - c->ru.ru_majflt;
}

static void
study_require(void)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may run ptbm's benchmark functions")));
}

/* A relation given by OID, which may name none. */
static Relation
study_relation(Oid relid)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation \"%s\" has no storage", RelationGetRelationName(rel))));
	return rel;
}

/* ---- block hits --------------------------------------------------------------- */

typedef struct HitPage
{
	BlockNumber blkno;
	bool		verify;
	uint32		sum;			/* of a few header fields: the page was read */
	bool		ok;
} HitPage;

/*
 * A heap page is what it should be: its checksum matches (with data
 * checksums), and every normal tuple's own TID names this block (a table
 * that was never updated).  Checks every offset first: the page may be torn.
 * Checks a copy: pg_checksum_page writes into the page it checksums (it
 * zeroes pd_checksum and puts it back), which in memory that other backends
 * read at the same time would be a write racing their reads and checks.
 */
static bool
hit_verify(const char *shared, BlockNumber blkno, bool heap)
{
	PGAlignedBlock copy;
	char	   *page = copy.data;
	PageHeader	ph = (PageHeader) page;
	int			n;

	memcpy(page, shared, BLCKSZ);

	if (DataChecksumsEnabled() && !PageIsNew((Page) page) &&
		pg_checksum_page((char *) page, blkno) != ph->pd_checksum)
		return false;
	if (!heap || PageIsNew((Page) page))
		return true;
	if (ph->pd_lower < SizeOfPageHeaderData || ph->pd_lower > BLCKSZ)
		return false;
	n = (ph->pd_lower - SizeOfPageHeaderData) / sizeof(ItemIdData);
	for (int i = 0; i < n; i++)
	{
		ItemId		id = &ph->pd_linp[i];
		HeapTupleHeader t;

		if (!ItemIdIsNormal(id))
			continue;
		if (ItemIdGetOffset(id) < SizeOfPageHeaderData ||
			ItemIdGetOffset(id) + sizeof(HeapTupleHeaderData) > BLCKSZ)
			return false;
		t = (HeapTupleHeader) (page + ItemIdGetOffset(id));
		if (ItemPointerGetBlockNumberNoCheck(&t->t_ctid) != blkno)
			return false;
	}
	return true;
}

static void
hit_page(const char *page, void *arg)
{
	HitPage    *h = arg;
	PageHeader	ph = (PageHeader) page;

	h->sum = ph->pd_lower + ph->pd_upper + ph->pd_special;
	h->ok = !h->verify || hit_verify(page, h->blkno, true);
}

#define BENCH_HITS_COLS 8

/*
 * ptbm_bench_hits(rel regclass, path text, accesses bigint, seed integer,
 * seconds double precision, hot bigint, verify boolean) returns (accesses,
 * elapsed_ms, ns_per_access, minor_faults, major_faults, sum, verified,
 * failures): random blocks among the first hot of rel (all: NULL), until
 * accesses are done or seconds have passed.
 */
Datum
ptbm_bench_hits(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[BENCH_HITS_COLS];
	bool		nulls[BENCH_HITS_COLS] = {0};
	Relation	rel;
	Source		src;
	int64		limit;
	double		seconds = PG_ARGISNULL(4) ? 0 : PG_GETARG_FLOAT8(4);
	bool		verify;
	pg_prng_state rng;
	Clock		clk;
	HitPage		h = {0};
	uint64		sum = 0,
				verified = 0,
				failures = 0;
	BlockNumber hot;
	int64		done;
	double		ms;
	int64		minor,
				major;

	study_require();
	/* seconds and hot may be NULL: no time limit, every block */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(6))
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rel = study_relation(PG_GETARG_OID(0));
	source_open(&src, rel, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	hot = PG_ARGISNULL(5) ? src.nblocks : (BlockNumber) Min(PG_GETARG_INT64(5), src.nblocks);
	if (hot == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relation \"%s\" has no blocks to read", RelationGetRelationName(rel))));
	pg_prng_seed(&rng, (uint64) PG_GETARG_INT32(3));
	limit = PG_GETARG_INT64(2);
	verify = PG_GETARG_BOOL(6);
	h.verify = verify;

	clock_start(&clk);
	for (done = 0; done < limit; done++)
	{
		if ((done % STUDY_TICK) == 0)
		{
			CHECK_FOR_INTERRUPTS();
			if (seconds > 0 && clock_ms(&clk) >= seconds * 1000)
				break;
		}
		h.blkno = (BlockNumber) pg_prng_uint64_range(&rng, 0, hot - 1);
		source_with_page(&src, h.blkno, hit_page, &h);
		sum += h.sum;
		if (verify)
		{
			verified++;
			failures += !h.ok;
		}
	}
	ms = clock_ms(&clk);
	clock_faults(&clk, &minor, &major);
	source_close(&src);
	relation_close(rel, AccessShareLock);

	values[0] = Int64GetDatum(done);
	values[1] = Float8GetDatum(ms);
	values[2] = Float8GetDatum(done > 0 ? ms * 1e6 / done : 0);
	values[3] = Int64GetDatum(minor);
	values[4] = Int64GetDatum(major);
	values[5] = Int64GetDatum((int64) sum);
	values[6] = Int64GetDatum((int64) verified);
	values[7] = Int64GetDatum((int64) failures);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- point lookups: a B-tree descent on raw pages ----------------------------------- */

/* What one step of a descent found on a page. */
typedef struct Step
{
	int32		key;
	BlockNumber next;			/* the child, the right sibling, or the heap block */
	OffsetNumber heap_off;		/* at a leaf: the heap tuple's offset */
	int			kind;			/* STEP_* */
	int32		abalance;		/* heap: the tuple's abalance */
} Step;

#define STEP_BAD		0		/* not a page this step understands */
#define STEP_DOWN		1		/* next is the child to descend to */
#define STEP_RIGHT		2		/* the key is past this page: its right sibling */
#define STEP_LEAF		3		/* found: next/heap_off is the heap TID */
#define STEP_ABSENT		4		/* the key is not in the index */
#define STEP_TUPLE		5		/* heap: the tuple, its key matches */

/* The int4 key of an index tuple, or false if it has none or does not fit. */
static bool
tuple_key(const char *page, ItemId id, bool *minus_infinity, int32 *key, IndexTuple *out)
{
	IndexTuple	itup;
	Size		off;

	if (!ItemIdIsNormal(id) || ItemIdGetOffset(id) < SizeOfPageHeaderData ||
		ItemIdGetOffset(id) + ItemIdGetLength(id) > BLCKSZ ||
		ItemIdGetLength(id) < sizeof(IndexTupleData))
		return false;
	itup = (IndexTuple) (page + ItemIdGetOffset(id));
	*out = itup;
	off = IndexInfoFindDataOffset(itup->t_info);
	*minus_infinity = IndexTupleSize(itup) < off + sizeof(int32);
	if (!*minus_infinity)
		*key = *(const int32 *) ((const char *) itup + off);
	return true;
}

/* One page of the descent: the metapage, an internal page or a leaf. */
static void
btree_step(const char *page, void *arg)
{
	Step	   *s = arg;
	PageHeader	ph = (PageHeader) page;
	BTPageOpaque op;
	int			n,
				first,
				lo,
				hi;

	s->kind = STEP_BAD;
	if (ph->pd_special < SizeOfPageHeaderData || ph->pd_special + sizeof(BTPageOpaqueData) > BLCKSZ ||
		ph->pd_lower < SizeOfPageHeaderData || ph->pd_lower > ph->pd_special)
		return;
	op = (BTPageOpaque) (page + ph->pd_special);
	if (op->btpo_flags & BTP_META)
	{
		s->next = ((BTMetaPageData *) PageGetContents((Page) page))->btm_root;
		s->kind = STEP_DOWN;
		return;
	}
	n = (ph->pd_lower - SizeOfPageHeaderData) / sizeof(ItemIdData);
	first = P_RIGHTMOST(op) ? P_HIKEY : P_FIRSTKEY;
	/* past the high key: the key moved right (a split) */
	if (!P_RIGHTMOST(op) && n >= P_HIKEY)
	{
		bool		minf;
		int32		hikey;
		IndexTuple	itup;

		if (!tuple_key(page, &ph->pd_linp[P_HIKEY - 1], &minf, &hikey, &itup))
			return;
		if (!minf && s->key > hikey)
		{
			s->next = op->btpo_next;
			s->kind = STEP_RIGHT;
			return;
		}
	}
	/* the last item whose key is at most the key sought */
	lo = first;
	hi = n;
	while (lo < hi)
	{
		int			mid = (lo + hi + 1) / 2;
		bool		minf;
		int32		k;
		IndexTuple	itup;

		if (!tuple_key(page, &ph->pd_linp[mid - 1], &minf, &k, &itup))
			return;
		if (minf || k <= s->key)
			lo = mid;
		else
			hi = mid - 1;
	}
	if (lo < first || lo > n)
		return;
	{
		bool		minf;
		int32		k;
		IndexTuple	itup;

		if (!tuple_key(page, &ph->pd_linp[lo - 1], &minf, &k, &itup))
			return;
		if (!P_ISLEAF(op))
		{
			s->next = BTreeTupleGetDownLink(itup);
			s->kind = STEP_DOWN;
			return;
		}
		if (minf || k != s->key)
		{
			s->kind = STEP_ABSENT;
			return;
		}
		s->next = ItemPointerGetBlockNumberNoCheck(BTreeTupleGetHeapTID(itup));
		s->heap_off = ItemPointerGetOffsetNumberNoCheck(BTreeTupleGetHeapTID(itup));
		s->kind = STEP_LEAF;
	}
}

/* The heap tuple at heap_off: (aid int4, bid int4, abalance int4, ...). */
static void
heap_step(const char *page, void *arg)
{
	Step	   *s = arg;
	PageHeader	ph = (PageHeader) page;
	ItemId		id;
	HeapTupleHeader t;
	const char *data;

	s->kind = STEP_BAD;
	if (ph->pd_lower < SizeOfPageHeaderData || ph->pd_lower > BLCKSZ ||
		s->heap_off < 1 ||
		s->heap_off > (ph->pd_lower - SizeOfPageHeaderData) / sizeof(ItemIdData))
		return;
	id = &ph->pd_linp[s->heap_off - 1];
	if (!ItemIdIsNormal(id) || ItemIdGetOffset(id) < SizeOfPageHeaderData ||
		ItemIdGetOffset(id) + ItemIdGetLength(id) > BLCKSZ)
		return;
	t = (HeapTupleHeader) (page + ItemIdGetOffset(id));
	if (t->t_hoff + 3 * sizeof(int32) > ItemIdGetLength(id))
		return;
	data = (const char *) t + t->t_hoff;
	if (*(const int32 *) data != s->key)
		return;
	s->abalance = *(const int32 *) (data + 2 * sizeof(int32));
	s->kind = STEP_TUPLE;
}

/* One lookup through both sources; the pages read; false if the key is absent. */
static bool
lookup(Source *index, Source *heap, int32 key, int32 *abalance, ItemPointerData *tid, int64 *pages)
{
	Step		s = {.key = key};
	BlockNumber blk = BTREE_METAPAGE;

	for (int depth = 0; depth < 64; depth++)
	{
		if (blk >= index->nblocks)
			elog(ERROR, "ptbm lookup: block %u past the index", blk);
		source_with_page(index, blk, btree_step, &s);
		(*pages)++;
		if (s.kind == STEP_DOWN || s.kind == STEP_RIGHT)
		{
			blk = s.next;
			continue;
		}
		if (s.kind == STEP_ABSENT)
			return false;
		if (s.kind != STEP_LEAF)
			elog(ERROR, "ptbm lookup: block %u of index \"%s\" is not a B-tree page it understands",
				 blk, RelationGetRelationName(index->rel));
		if (s.next >= heap->nblocks)
			elog(ERROR, "ptbm lookup: heap block %u past the table", s.next);
		ItemPointerSet(tid, s.next, s.heap_off);
		source_with_page(heap, s.next, heap_step, &s);
		(*pages)++;
		if (s.kind != STEP_TUPLE)
			elog(ERROR, "ptbm lookup: the index points at (%u,%u), which does not hold key %d",
				 s.next, s.heap_off, key);
		*abalance = s.abalance;
		return true;
	}
	elog(ERROR, "ptbm lookup: no leaf within 64 levels");
	return false;
}

/* Checks a sample of lookups against SELECT ... WHERE key = k; the mismatches. */
static int64
lookups_verify(Relation heap, const char *keycol, const int32 *keys, const int32 *abal,
			   const ItemPointerData *tids, int n)
{
	char	   *q = psprintf("SELECT abalance, ctid::text FROM %s WHERE %s = $1",
							 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(heap)),
														RelationGetRelationName(heap)),
							 quote_identifier(keycol));
	Oid			argtype = INT4OID;
	int64		bad = 0;

	SPI_connect();
	for (int i = 0; i < n; i++)
	{
		Datum		arg = Int32GetDatum(keys[i]);
		char	   *tid = psprintf("(%u,%u)", ItemPointerGetBlockNumber(&tids[i]),
								   ItemPointerGetOffsetNumber(&tids[i]));
		bool		isnull;

		if (SPI_execute_with_args(q, 1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1 ||
			DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) != abal[i] ||
			strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), tid) != 0)
			bad++;
	}
	SPI_finish();
	return bad;
}

#define LOOKUP_SAMPLE 2000
#define BENCH_LOOKUPS_COLS 8

/*
 * ptbm_bench_lookups(index regclass, heap regclass, path text, lookups
 * bigint, seed integer, seconds double precision, max_key bigint,
 * key_column text) returns (lookups, elapsed_ms, lookups_per_s, pages,
 * found, minor_faults, verified, mismatches): random keys in 1..max_key,
 * each looked up from the metapage down to its leaf and the heap tuple by
 * TID, every page through the path; the first lookups (up to 2000) are
 * checked afterwards against SELECT ... WHERE key = k, untimed.
 */
Datum
ptbm_bench_lookups(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[BENCH_LOOKUPS_COLS];
	bool		nulls[BENCH_LOOKUPS_COLS] = {0};
	Relation	irel,
				hrel;
	Source		isrc,
				hsrc;
	char	   *path;
	int64		limit;
	double		seconds = PG_ARGISNULL(5) ? 0 : PG_GETARG_FLOAT8(5);
	int64		max_key;
	pg_prng_state rng;
	Clock		clk;
	int32		keys[LOOKUP_SAMPLE],
				abal[LOOKUP_SAMPLE];
	ItemPointerData tids[LOOKUP_SAMPLE];
	int64		done,
				pages = 0,
				found = 0,
				minor,
				major,
				bad;
	double		ms;

	study_require();
	/* seconds may be NULL (no time limit), key_column (aid) too */
	for (int a = 0; a <= 6; a++)
		if (a != 5 && PG_ARGISNULL(a))
			PG_RETURN_NULL();
	path = text_to_cstring(PG_GETARG_TEXT_PP(2));
	limit = PG_GETARG_INT64(3);
	max_key = PG_GETARG_INT64(6);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (max_key < 1 || max_key > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_key must be between 1 and %d", PG_INT32_MAX)));
	irel = study_relation(PG_GETARG_OID(0));
	hrel = study_relation(PG_GETARG_OID(1));
	if (irel->rd_rel->relkind != RELKIND_INDEX || irel->rd_rel->relam != BTREE_AM_OID ||
		irel->rd_index->indrelid != RelationGetRelid(hrel) ||
		TupleDescAttr(RelationGetDescr(irel), 0)->atttypid != INT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a B-tree on an int4 column of \"%s\"",
						RelationGetRelationName(irel), RelationGetRelationName(hrel))));
	source_open(&isrc, irel, path);
	source_open(&hsrc, hrel, path);
	pg_prng_seed(&rng, (uint64) PG_GETARG_INT32(4));

	clock_start(&clk);
	for (done = 0; done < limit; done++)
	{
		int32		key = (int32) pg_prng_uint64_range(&rng, 1, max_key);
		int32		ab;
		ItemPointerData tid;

		if ((done % STUDY_TICK) == 0)
		{
			CHECK_FOR_INTERRUPTS();
			if (seconds > 0 && clock_ms(&clk) >= seconds * 1000)
				break;
		}
		if (!lookup(&isrc, &hsrc, key, &ab, &tid, &pages))
			continue;
		if (found < LOOKUP_SAMPLE)
		{
			keys[found] = key;
			abal[found] = ab;
			tids[found] = tid;
		}
		found++;
	}
	ms = clock_ms(&clk);
	clock_faults(&clk, &minor, &major);
	source_close(&isrc);
	source_close(&hsrc);
	bad = lookups_verify(hrel, PG_ARGISNULL(7) ? "aid" : text_to_cstring(PG_GETARG_TEXT_PP(7)),
						 keys, abal, tids, (int) Min(found, LOOKUP_SAMPLE));
	relation_close(hrel, AccessShareLock);
	relation_close(irel, AccessShareLock);

	values[0] = Int64GetDatum(done);
	values[1] = Float8GetDatum(ms);
	values[2] = Float8GetDatum(ms > 0 ? done * 1000.0 / ms : 0);
	values[3] = Int64GetDatum(pages);
	values[4] = Int64GetDatum(found);
	values[5] = Int64GetDatum(minor);
	values[6] = Int64GetDatum(Min(found, LOOKUP_SAMPLE));
	values[7] = Int64GetDatum(bad);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- scans ---------------------------------------------------------------------- */

typedef struct ScanPage
{
	int			normal;			/* normal line pointers */
} ScanPage;

static void
scan_page(const char *page, void *arg)
{
	ScanPage   *s = arg;
	PageHeader	ph = (PageHeader) page;
	int			n;

	s->normal = 0;
	if (ph->pd_lower < SizeOfPageHeaderData || ph->pd_lower > BLCKSZ)
		return;
	n = (ph->pd_lower - SizeOfPageHeaderData) / sizeof(ItemIdData);
	for (int i = 0; i < n; i++)
		s->normal += ItemIdIsNormal(&ph->pd_linp[i]);
}

#define BENCH_SCAN_COLS 6

/*
 * ptbm_bench_scan(rel regclass, path text, passes integer) returns (pages,
 * line_pointers, elapsed_ms, pages_per_s, minor_faults, major_faults):
 * every page of rel, in order, counting its normal line pointers.  A fresh
 * backend's first pass measures what first access costs.
 */
Datum
ptbm_bench_scan(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[BENCH_SCAN_COLS];
	bool		nulls[BENCH_SCAN_COLS] = {0};
	Relation	rel;
	Source		src;
	int			passes = PG_GETARG_INT32(2);
	Clock		clk;
	ScanPage	sp;
	int64		pages = 0,
				lps = 0,
				minor,
				major;
	double		ms;

	study_require();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rel = study_relation(PG_GETARG_OID(0));
	source_open(&src, rel, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	clock_start(&clk);
	for (int p = 0; p < passes; p++)
		for (BlockNumber b = 0; b < src.nblocks; b++)
		{
			if ((b % STUDY_TICK) == 0)
				CHECK_FOR_INTERRUPTS();
			source_with_page(&src, b, scan_page, &sp);
			pages++;
			lps += sp.normal;
		}
	ms = clock_ms(&clk);
	clock_faults(&clk, &minor, &major);
	source_close(&src);
	relation_close(rel, AccessShareLock);

	values[0] = Int64GetDatum(pages);
	values[1] = Int64GetDatum(lps);
	values[2] = Float8GetDatum(ms);
	values[3] = Float8GetDatum(ms > 0 ? pages * 1000.0 / ms : 0);
	values[4] = Int64GetDatum(minor);
	values[5] = Int64GetDatum(major);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
