/*-------------------------------------------------------------------------
 *
 * ptbm_writes.c
 *	  Per-backend write tracking: the dirty bit that is not shared.
 *
 * The hardware dirty bit lives in each process's own PTE and the kernel
 * does not expose it; the frame's DIRTY flag is global and sticky.  A
 * backend can instead ask the kernel to track its own writes:
 *   - userfaultfd asynchronous write-protect (Linux 6.7): the region is
 *     write-protected in this backend's page table; a first write to a page
 *     unprotects it in the fault handler, with no signal and no thread, and
 *     PAGEMAP_SCAN's PAGE_IS_WRITTEN lists the pages written since.  Read
 *     and reset (re-protect) in one call, also from another process.  Not
 *     inherited by fork: each backend registers itself.
 *   - soft-dirty, where the kernel has it (not on this project's machines):
 *     /proc/PID/clear_refs resets it for the whole process.
 * The mechanism is chosen at run time; ptbm_region() says which.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "kmem.h"
#include "ptbm.h"

PG_FUNCTION_INFO_V1(ptbm_track_writes);
PG_FUNCTION_INFO_V1(ptbm_written);
PG_FUNCTION_INFO_V1(ptbm_written_reset);

/* this backend's userfaultfd while it tracks writes; -1 otherwise */
static int	ptbm_uffd = -1;
/* tracking mechanisms as the touch ledger's state byte records them */
#define PTBM_TRACK_NONE		0
#define PTBM_TRACK_UFFD		1
#define PTBM_TRACK_SOFT_DIRTY	2

#define PTBM_WRITTEN_VEC 1024

const char *
ptbm_write_tracking_mechanism(void)
{
	const kmem_caps *caps = kmem_get_caps();

	if (caps->uffd_wp_async)
		return "uffd-wp";
	if (caps->soft_dirty)
		return "soft-dirty";
	return NULL;
}

/* Clears soft-dirty bits of a process (all its memory: the kernel's unit). */
static void
ptbm_clear_soft_dirty(int pid)
{
	char		path[64];
	int			fd;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	fd = OpenTransientFile(path, O_WRONLY | PG_BINARY);
	if (fd < 0 || write(fd, "4", 1) != 1)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not reset soft-dirty bits of process %d: %m", pid)));
	CloseTransientFile(fd);
}

/*
 * Starts tracking in this backend; if it already tracks, protects the
 * region again (a reset).  Errors out where the kernel cannot.
 */
void
ptbm_start_tracking(void)
{
	const char *mech = ptbm_write_tracking_mechanism();

	if (mech == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("this kernel cannot track writes per process"),
				 errdetail("ptbm needs userfaultfd asynchronous write-protect (Linux 6.7) or soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY)."),
				 errhint("Check vm.unprivileged_userfaultfd and the kernel version.")));

	if (strcmp(mech, "uffd-wp") == 0)
	{
		if (ptbm_uffd >= 0)
		{
			if (kmem_uffd_wp_protect(ptbm_uffd, ptbm_region.base, ptbm_region.size) != 0)
				ereport(ERROR,
						(errmsg("could not write-protect the ptbm region: %m")));
			return;
		}
		ptbm_uffd = kmem_uffd_wp_start(ptbm_region.base, ptbm_region.size);
		if (ptbm_uffd >= 0)
			ptbm_ledger_set_tracking(PTBM_TRACK_UFFD);
		if (ptbm_uffd < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("could not track writes to a %s region: %m",
							ptbm_kind_name(ptbm_region.kind)),
					 errhint("userfaultfd write-protect works on anonymous, shmem (shared_anon, shared_memfd) and hugetlb memory, not on files of ordinary file systems.")));
	}
	else
	{
		ptbm_clear_soft_dirty(MyProcPid);
		ptbm_ledger_set_tracking(PTBM_TRACK_SOFT_DIRTY);
	}
}

static void
ptbm_stop_tracking(void)
{
	if (ptbm_uffd >= 0)
	{
		(void) kmem_uffd_wp_stop(ptbm_uffd, ptbm_region.base, ptbm_region.size);
		ptbm_uffd = -1;
	}
	ptbm_ledger_set_tracking(PTBM_TRACK_NONE);
}

/*
 * How a process tracks writes to the region: "uffd-wp", "soft-dirty", or
 * NULL when it does not.  Each backend records it in its ledger slot when
 * it starts or stops, so no /proc file needs reading to know.
 */
const char *
ptbm_tracking_of(int pid)
{
	switch (ptbm_ledger_tracking(ptbm_backend_id(pid)))
	{
		case PTBM_TRACK_UFFD:
			return "uffd-wp";
		case PTBM_TRACK_SOFT_DIRTY:
			return "soft-dirty";
	}
	return NULL;
}

/* ---- ptbm_track_writes() ---------------------------------------------- */

#define PTBM_TRACK_COLS 5

Datum
ptbm_track_writes(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[PTBM_TRACK_COLS];
	bool		nulls[PTBM_TRACK_COLS] = {0};
	bool		enable;
	uint64		pte_before = 0,
				pte_after = 0;
	instr_time	start,
				elapsed;
	const char *mech;

	ptbm_require_region();
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	enable = PG_GETARG_BOOL(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	(void) kmem_status_kb(0, "VmPTE", &pte_before);
	INSTR_TIME_SET_CURRENT(start);
	if (enable)
		ptbm_start_tracking();
	else
		ptbm_stop_tracking();
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	(void) kmem_status_kb(0, "VmPTE", &pte_after);

	mech = ptbm_tracking_of(MyProcPid);
	values[0] = BoolGetDatum(mech != NULL);
	if (mech)
		values[1] = CStringGetTextDatum(mech);
	else
		nulls[1] = true;
	/* write-protecting builds page tables for the whole range */
	values[2] = Int64GetDatum((int64) pte_before * 1024);
	values[3] = Int64GetDatum((int64) pte_after * 1024);
	values[4] = Float8GetDatum(INSTR_TIME_GET_MILLISEC(elapsed));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- ptbm_written() -------------------------------------------------------- */

#define PTBM_WRITTEN_COLS 2

static void
ptbm_put_run(ReturnSetInfo *rsinfo, int64 first, int64 n)
{
	Datum		values[PTBM_WRITTEN_COLS];
	bool		nulls[PTBM_WRITTEN_COLS] = {0};

	values[0] = Int64GetDatum(first);
	values[1] = Int64GetDatum(n);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * ptbm_written(pid, reset) and ptbm_written_reset(pid): the same walk.
 * Resetting another backend's set changes its page table, so ptbm_written
 * allows it to superusers only, and ptbm_written_reset to whoever may
 * execute it: superusers, and roles a superuser granted it to.
 */
static Datum
ptbm_written_walk(FunctionCallInfo fcinfo, int pid, bool reset, bool check_superuser)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *mech;
	int			fd;
	uint64		start = ptbm_page_addr(0);
	uint64		end = ptbm_page_addr(ptbm_region.pages);

	ptbm_check_pid(pid);
	if (check_superuser && reset && pid != MyProcPid && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may reset the write tracking of another backend"),
				 errhint("A superuser may grant EXECUTE on ptbm_written_reset(integer), which does the same.")));

	mech = ptbm_tracking_of(pid);
	if (mech == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("process %d does not track writes to the ptbm region", pid),
				 errhint("Call ptbm_track_writes() in that backend, or set ptbm.track_writes.")));

	fd = ptbm_open_pagemap(pid);
	if (fd < 0)
		return (Datum) 0;

	if (strcmp(mech, "uffd-wp") == 0)
	{
		kmem_scan	s;
		struct page_region *vec = palloc(PTBM_WRITTEN_VEC * sizeof(struct page_region));
		ssize_t		n;

		/* pages that may be write-protected and have been written since */
		kmem_scan_init(&s, fd, start, end, PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN, 0, 0,
					   PAGE_IS_WRITTEN);
		/* and protect them again in the same walk: an atomic read-and-reset */
		if (reset)
			kmem_scan_set_flags(&s, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC);
		while ((n = kmem_scan_step(&s, vec, PTBM_WRITTEN_VEC)) > 0)
		{
			CHECK_FOR_INTERRUPTS();
			for (ssize_t k = 0; k < n; k++)
				ptbm_put_run(rsinfo, (vec[k].start - start) / ptbm_region.page_size,
							 (vec[k].end - vec[k].start) / ptbm_region.page_size);
		}
		if (n < 0 && errno != ESRCH)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not scan the page table of process %d: %m", pid)));
	}
	else
	{
		/* soft-dirty: runs of present pages with bit 55 */
		uint64	   *ents = palloc(8192 * sizeof(uint64));
		int64		run_first = -1;

		for (int64 page = 0; page < ptbm_region.pages;)
		{
			int64		n = Min(8192, ptbm_region.pages - page);
			ssize_t		got;

			CHECK_FOR_INTERRUPTS();
			got = kmem_pagemap_read_stride(fd, ptbm_page_addr(page), n,
										   ptbm_region.base_per_page, ents);
			if (got < n)
				break;
			for (int64 k = 0; k < n; k++)
			{
				bool		w = (ents[k] & PM_PRESENT) && (ents[k] & PM_SOFT_DIRTY);

				if (w && run_first < 0)
					run_first = page + k;
				else if (!w && run_first >= 0)
				{
					ptbm_put_run(rsinfo, run_first, page + k - run_first);
					run_first = -1;
				}
			}
			page += n;
		}
		if (run_first >= 0)
			ptbm_put_run(rsinfo, run_first, ptbm_region.pages - run_first);
		if (reset)
			ptbm_clear_soft_dirty(pid);
	}
	CloseTransientFile(fd);
	return (Datum) 0;
}

Datum
ptbm_written(PG_FUNCTION_ARGS)
{
	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	return ptbm_written_walk(fcinfo, PG_GETARG_INT32(0), PG_GETARG_BOOL(1), true);
}

Datum
ptbm_written_reset(PG_FUNCTION_ARGS)
{
	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	return ptbm_written_walk(fcinfo, PG_GETARG_INT32(0), true, false);
}
