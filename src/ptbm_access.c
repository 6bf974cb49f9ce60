/*-------------------------------------------------------------------------
 *
 * ptbm_access.c
 *	  SQL functions that touch the region's pages in the calling backend, or
 *	  evict them: ptbm_touch, ptbm_read, ptbm_write, ptbm_evict.
 *
 * Every access goes the same way: the range is checked (22023 outside the
 * region), then ptbm_region_check_access refuses what would fault outside
 * the backing object or past the memory limit, ptbm_tracking_prepare
 * write-protects the chunks about to be touched if this backend tracks its
 * writes, the touch ledger records the pages, and the loads and stores run
 * under ptbm_region_access's SIGBUS guard.  The region's contents are
 * plain shared memory: no lock of ptbm's, as the experiments want.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_access.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>
#include <sys/resource.h>

#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "kabi.h"
#include "ptbm_ledger.h"
#include "ptbm_pool.h"
#include "ptbm_region.h"
#include "ptbm_writes.h"

PG_FUNCTION_INFO_V1(ptbm_touch);
PG_FUNCTION_INFO_V1(ptbm_write);
PG_FUNCTION_INFO_V1(ptbm_read);
PG_FUNCTION_INFO_V1(ptbm_evict);

/* ptbm_touch's modes and ptbm_evict's methods */
static const struct config_enum_entry ptbm_touch_modes[] = {
	{"read", false, false},
	{"write", true, false},
	{NULL, 0, false}
};

static const struct config_enum_entry ptbm_evict_methods[] = {
	{"dontneed", MADV_DONTNEED, false},
	{"remove", MADV_REMOVE, false},
	{"pageout", MADV_PAGEOUT, false},
	{"cold", MADV_COLD, false},
	{NULL, 0, false}
};

/*
 * The value of a text argument that must be one of opts; what names it in
 * the error ("touch mode"), whats in the hint ("modes").
 */
static int
ptbm_arg_choice(text *arg, const struct config_enum_entry *opts, const char *what,
				const char *whats)
{
	char	   *name = text_to_cstring(arg);
	StringInfoData valid;

	for (const struct config_enum_entry *e = opts; e->name; e++)
		if (strcmp(name, e->name) == 0)
			return e->val;
	initStringInfo(&valid);
	for (const struct config_enum_entry *e = opts; e->name; e++)
		appendStringInfo(&valid, "%s\"%s\"", e == opts ? "" : e[1].name ? ", " : " and ",
						 e->name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown %s \"%s\"", what, name),
			 errhint("Valid %s are %s.", whats, valid.data)));
	return 0;
}

/* Checks that [offset, offset + len) lies within one page. */
static void
ptbm_check_in_page(int64 page, int64 offset, int64 len)
{
	(void) ptbm_region_range(page, 1, false);
	if (offset < 0 || len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset and length must not be negative")));
	if (offset > (int64) ptbm_region.page_size - len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%lld bytes at offset %lld cross the end of page %lld",
						(long long) len, (long long) offset, (long long) page),
				 errdetail("A page holds %zu bytes.", ptbm_region.page_size)));
}

/* ---- ptbm_touch(), ptbm_write(), ptbm_read() ----------------------------- */

/*
 * With the buffer pool on, the region's pages are the pool's blocks: a
 * touch would allocate memory outside its budget, a write change a cached
 * block, an eviction free one behind the pool's back.
 */
static void
ptbm_pages_not_pooled(const char *caller)
{
	if (ptbm_pool_enabled())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("%s cannot be used while the ptbm region holds the buffer pool", caller),
				 errhint("With ptbm.pool_size above 0 the region's pages are the pool's blocks: use ptbm_pool_read and ptbm_pool_evict.")));
}

/*
 * What every access does before it touches count pages from first: the
 * checks of the backing object and of memory, the write-protection of the
 * chunks while this backend tracks its writes, and the touch ledger.
 */
static void
ptbm_access_prepare(const char *caller, int64 first, int64 count, bool write)
{
	ptbm_pages_not_pooled(caller);
	ptbm_region_check_access(caller, first, count, write);
	ptbm_tracking_prepare(first, count);
	ptbm_ledger_mark(first, count);
}

#define PTBM_TOUCH_COLS 4

/* pages touched per guarded access, between interrupt checks */
#define PTBM_TOUCH_BATCH	4096

typedef struct PtbmTouch
{
	char	   *first;			/* first byte of the first page */
	int64		pages;
	bool		write;
	char		sink;			/* what the reads add up to */
} PtbmTouch;

/* One batch of ptbm_touch, under the SIGBUS guard: no ERROR in here. */
static void
ptbm_touch_batch(void *arg)
{
	PtbmTouch  *t = arg;

	for (int64 k = 0; k < t->pages; k++)
	{
		char	   *p = t->first + k * ptbm_region.page_size;

		if (t->write)
			/* a write access that keeps the data, even with racing writers */
			(void) __atomic_fetch_or((unsigned char *) p, 0, __ATOMIC_RELAXED);
		else
			t->sink += *(volatile char *) p;
	}
}

Datum
ptbm_touch(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[PTBM_TOUCH_COLS];
	bool		nulls[PTBM_TOUCH_COLS] = {0};
	int64		first;
	int64		count;
	PtbmTouch	t = {0};
	struct rusage before,
				after;
	instr_time	start,
				elapsed;

	ptbm_require_region();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	count = ptbm_region_range_args(fcinfo, 0, &first);
	t.write = ptbm_arg_choice(PG_GETARG_TEXT_PP(2), ptbm_touch_modes, "touch mode", "modes");

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	ptbm_access_prepare("ptbm_touch", first, count, t.write);
	getrusage(RUSAGE_SELF, &before);
	INSTR_TIME_SET_CURRENT(start);
	for (int64 done = 0; done < count; done += t.pages)
	{
		CHECK_FOR_INTERRUPTS();
		t.first = ptbm_region.base + (first + done) * ptbm_region.page_size;
		t.pages = Min(count - done, PTBM_TOUCH_BATCH);
		ptbm_region_access(ptbm_touch_batch, &t);
	}
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	getrusage(RUSAGE_SELF, &after);

	values[0] = Int64GetDatum(count);
	values[1] = Int64GetDatum(after.ru_minflt - before.ru_minflt);
	values[2] = Int64GetDatum(after.ru_majflt - before.ru_majflt);
	values[3] = Float8GetDatum(INSTR_TIME_GET_MILLISEC(elapsed));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ptbm_read and ptbm_write: one copy, under the SIGBUS guard */
typedef struct PtbmCopy
{
	void	   *to;
	const void *from;
	Size		len;
} PtbmCopy;

static void
ptbm_copy(void *arg)
{
	PtbmCopy   *c = arg;

	memcpy(c->to, c->from, c->len);
}

/*
 * Copies len bytes between buf and a page at offset, as ptbm_write (write)
 * or ptbm_read does.
 */
static void
ptbm_page_copy(const char *caller, int64 page, int32 offset, void *buf, int32 len,
			   bool write)
{
	char	   *at = ptbm_region.base + page * ptbm_region.page_size + offset;
	PtbmCopy	c = {write ? at : buf, write ? buf : at, len};

	ptbm_check_in_page(page, offset, len);
	ptbm_access_prepare(caller, page, 1, write);
	ptbm_region_access(ptbm_copy, &c);
}

/* ptbm_write(page bigint, data bytea, "offset" integer) returns integer */
Datum
ptbm_write(PG_FUNCTION_ARGS)
{
	bytea	   *data;

	ptbm_require_region();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();		/* STRICT since 1.2 */
	data = PG_GETARG_BYTEA_PP(1);
	ptbm_page_copy("ptbm_write", PG_GETARG_INT64(0), PG_GETARG_INT32(2),
				   VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data), true);
	PG_RETURN_INT32(VARSIZE_ANY_EXHDR(data));
}

/* ptbm_read(page bigint, length integer, "offset" integer) returns bytea */
Datum
ptbm_read(PG_FUNCTION_ARGS)
{
	int32		len;
	bytea	   *result;

	ptbm_require_region();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();		/* STRICT since 1.2 */
	len = PG_GETARG_INT32(1);
	/* checked against the page before anything is allocated */
	ptbm_check_in_page(PG_GETARG_INT64(0), PG_GETARG_INT32(2), len);
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	ptbm_page_copy("ptbm_read", PG_GETARG_INT64(0), PG_GETARG_INT32(2),
				   VARDATA(result), len, false);
	PG_RETURN_BYTEA_P(result);
}

/* ---- ptbm_evict() ---------------------------------------------------------- */

#define PTBM_EVICT_COLS 2

Datum
ptbm_evict(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[PTBM_EVICT_COLS];
	bool		nulls[PTBM_EVICT_COLS] = {0};
	int64		first;
	int64		count;
	char	   *method;
	int			advice;
	instr_time	start,
				elapsed;

	ptbm_require_region();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	count = ptbm_region_range_args(fcinfo, 0, &first);
	ptbm_pages_not_pooled("ptbm_evict");
	method = text_to_cstring(PG_GETARG_TEXT_PP(2));
	advice = ptbm_arg_choice(PG_GETARG_TEXT_PP(2), ptbm_evict_methods, "eviction method", "methods");

	if (advice == MADV_REMOVE && !ptbm_kind_is_shared(ptbm_region.kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("eviction method \"remove\" needs a shared region, not %s",
						ptbm_kind_name(ptbm_region.kind)),
				 errdetail("remove frees the pages of the shared backing object; a private mapping has none."),
				 errhint("Use \"dontneed\" to drop this backend's private pages.")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	INSTR_TIME_SET_CURRENT(start);
	if (count > 0 &&
		madvise(ptbm_region.base + first * ptbm_region.page_size,
				count * ptbm_region.page_size, advice) != 0)
	{
		int			save = errno;

		ereport(ERROR,
				(errcode(save == EINVAL ? ERRCODE_FEATURE_NOT_SUPPORTED : ERRCODE_SYSTEM_ERROR),
				 errmsg("could not evict pages with \"%s\": %m", method),
				 save == EINVAL ? errhint("The kernel does not support this method for a %s region.",
										  ptbm_kind_name(ptbm_region.kind)) : 0));
	}
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);

	values[0] = Int64GetDatum(count);
	values[1] = Float8GetDatum(INSTR_TIME_GET_MILLISEC(elapsed));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
