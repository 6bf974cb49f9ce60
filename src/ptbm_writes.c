/*-------------------------------------------------------------------------
 *
 * ptbm_writes.c
 *	  Per-backend write tracking: the dirty bit that is not shared.
 *
 * The hardware dirty bit lives in each process's own PTE and the kernel
 * does not expose it; the frame's DIRTY flag is global and sticky.  A
 * backend can instead ask the kernel to track its own writes:
 *   - userfaultfd asynchronous write-protect (Linux 6.7): write-protected
 *     pages become writable at their first write, in the fault handler,
 *     with no signal and no thread, and PAGEMAP_SCAN's PAGE_IS_WRITTEN
 *     lists them; read and reset (protect again) in one walk, also from
 *     another process.  Not inherited by fork: each backend registers
 *     itself.  With the asynchronous mode the kernel allows any memory,
 *     files of ordinary file systems included.
 *   - soft-dirty, where the kernel has it (not on this project's machines):
 *     /proc/PID/clear_refs resets it for the whole process.
 * The mechanism is chosen at run time; ptbm_region() says which.
 *
 * What tracking costs.  Write-protecting a range builds its page tables,
 * a marker in every untouched PTE: 2 MB per GB in each tracking backend,
 * whatever it maps.  So the region is registered whole (a flag on the VMA)
 * but write-protected a chunk at a time, only where this backend maps
 * pages: at start, the chunks of what it maps already; then, before each
 * access ptbm makes (ptbm_tracking_prepare), the chunks it is about to
 * touch.  A chunk is what one page-table page maps (2 MB of base pages),
 * aligned, so that stopping can give its page-table page back (MADV_DONTNEED
 * frees an empty one).  The kernel maps no page that the backend did not
 * fault itself into a uffd-wp VMA (it turns fault-around off there), so
 * every page this backend maps lies in a protected chunk, and "written"
 * is exactly "present and not write-protected".
 *
 * State: this backend's userfaultfd and its bitmap of protected chunks are
 * its own; the ledger's state byte tells the others how it tracks.
 * Starting is undone if it fails or is cancelled, and so is a reset of the
 * backend's own set; a reset of another backend's set cannot be undone
 * (its userfaultfd is not ours), so a cancel leaves it partly reset.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_writes.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/backendid.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "kmem.h"
#include "ptbm_ledger.h"
#include "ptbm_proc.h"
#include "ptbm_region.h"
#include "ptbm_writes.h"

PG_FUNCTION_INFO_V1(ptbm_track_writes);
PG_FUNCTION_INFO_V1(ptbm_written);
PG_FUNCTION_INFO_V1(ptbm_written_reset);

/* pagemap entries per read of a walk */
#define PTBM_WRITES_CHUNK	8192

/* chunks write-protected between interrupt checks */
#define PTBM_WP_TICK		64

/* ---- this backend's tracking -------------------------------------------------- */

static int	ptbm_uffd = -1;		/* while it tracks with uffd-wp */
bool		ptbm_tracking_active = false;	/* ptbm_uffd >= 0 */
static uint8 *ptbm_wp_bits = NULL;	/* one bit per chunk: write-protected */
static uint64 ptbm_wp_origin;	/* address of chunk 0 */
static Size ptbm_wp_chunk;		/* bytes per chunk */
static int64 ptbm_wp_nchunks;

PtbmTracking
ptbm_tracking_available(void)
{
	const kmem_caps *caps = kmem_get_caps();

	if (caps->uffd_wp_async)
		return PTBM_TRACK_UFFD;
	if (caps->soft_dirty)
		return PTBM_TRACK_SOFT_DIRTY;
	return PTBM_TRACK_NONE;
}

const char *
ptbm_tracking_name(PtbmTracking t)
{
	switch (t)
	{
		case PTBM_TRACK_UFFD:
			return "uffd-wp";
		case PTBM_TRACK_SOFT_DIRTY:
			return "soft-dirty";
		case PTBM_TRACK_NONE:
			break;
	}
	return NULL;
}

bool
ptbm_entry_written(PtbmTracking t, uint64 ent)
{
	if (!(ent & PM_PRESENT))
		return false;
	if (t == PTBM_TRACK_UFFD)
		return !(ent & PM_UFFD_WP);
	return t == PTBM_TRACK_SOFT_DIRTY && (ent & PM_SOFT_DIRTY);
}

/* Clears soft-dirty bits of a process (all its memory: the kernel's unit). */
static void
ptbm_clear_soft_dirty(const PtbmProc *p)
{
	int			fd = ptbm_proc_open_file(p, "clear_refs", O_WRONLY);

	if (fd < 0 && ptbm_proc_gone(p, errno))
		return;
	if (fd < 0 || write(fd, "4", 1) != 1)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not reset soft-dirty bits of process %d: %m", p->pid)));
	CloseTransientFile(fd);
}

/* the calling backend, resolved */
static PtbmProc *
ptbm_self(void)
{
	static PtbmProc self;

	ptbm_proc_resolve(MyProcPid, &self);
	return &self;
}

/* ---- chunks ----------------------------------------------------------------------- */

static void
ptbm_wp_chunks_init(void)
{
	Size		ps = kmem_page_size();
	uint64		base = ptbm_page_addr(0);

	/* what one page-table page maps, or one huge page if larger */
	ptbm_wp_chunk = Max(ps * (ps / sizeof(uint64)), ptbm_region.page_size);
	ptbm_wp_origin = base - base % ptbm_wp_chunk;
	ptbm_wp_nchunks = (ptbm_page_addr(ptbm_region.pages) - ptbm_wp_origin +
					   ptbm_wp_chunk - 1) / ptbm_wp_chunk;
	ptbm_wp_bits = MemoryContextAllocZero(TopMemoryContext, (ptbm_wp_nchunks + 7) / 8);
}

/* The part of chunk c inside the region. */
static void
ptbm_wp_chunk_range(int64 c, uint64 *start, uint64 *end)
{
	*start = Max(ptbm_wp_origin + c * ptbm_wp_chunk, ptbm_page_addr(0));
	*end = Min(ptbm_wp_origin + (c + 1) * ptbm_wp_chunk, ptbm_page_addr(ptbm_region.pages));
}

/* Write-protects the chunks of [start, end) not protected yet. */
static void
ptbm_wp_protect(uint64 start, uint64 end)
{
	int			done = 0;

	for (int64 c = (start - ptbm_wp_origin) / ptbm_wp_chunk;
		 c <= (int64) ((end - 1 - ptbm_wp_origin) / ptbm_wp_chunk); c++)
	{
		uint64		a,
					b;

		if (ptbm_wp_bits[c >> 3] & (1 << (c & 7)))
			continue;
		ptbm_wp_chunk_range(c, &a, &b);
		if (kmem_uffd_wp_protect(ptbm_uffd, (void *) (uintptr_t) a, b - a) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not write-protect the ptbm region: %m")));
		ptbm_wp_bits[c >> 3] |= (uint8) (1 << (c & 7));
		if (++done % PTBM_WP_TICK == 0)
			CHECK_FOR_INTERRUPTS();
	}
}

void
ptbm_tracking_prepare(int64 first, int64 count)
{
	if (ptbm_uffd < 0 || count <= 0)
		return;
	ptbm_wp_protect(ptbm_page_addr(first), ptbm_page_addr(first + count));
}

/* a sink: protect the chunks of a run of pages this backend maps */
static int
ptbm_wp_protect_run(void *arg, const kmem_chunk *c)
{
	ptbm_wp_protect(c->addr, c->addr + c->npages * c->page_size);
	return 0;
}

/*
 * Stops tracking, and gives back the page-table pages that protecting
 * built where this backend maps nothing (unregistering clears the markers
 * but keeps the tables; MADV_DONTNEED of a whole, empty table's range frees
 * it, and drops nothing there is).  Never raises an ERROR: it also cleans
 * up after one.
 */
static void
ptbm_tracking_stop(void)
{
	if (ptbm_uffd >= 0)
	{
		int			fd;

		(void) kmem_uffd_wp_stop(ptbm_uffd, ptbm_region.base, ptbm_region.size);
		ptbm_uffd = -1;
		ptbm_tracking_active = false;
		fd = kmem_get_caps()->pagemap_scan ? kmem_pagemap_open(0) : -1;
		for (int64 c = 0; c < ptbm_wp_nchunks; c++)
		{
			uint64		a,
						b;

			if (!(ptbm_wp_bits[c >> 3] & (1 << (c & 7))))
				continue;
			ptbm_wp_bits[c >> 3] &= (uint8) ~(1 << (c & 7));
			ptbm_wp_chunk_range(c, &a, &b);
			if (fd >= 0 && kmem_any_mapped(fd, a, b) == 0)
				(void) madvise((void *) (uintptr_t) a, b - a, MADV_DONTNEED);
		}
		if (fd >= 0)
			close(fd);
	}
	ptbm_ledger_set_tracking(PTBM_TRACK_NONE);
}

/*
 * Starts tracking in this backend (which does not track yet).  Errors out
 * where the kernel cannot; a failure or a cancel on the way leaves the
 * backend as it was.
 */
static void
ptbm_tracking_start(void)
{
	PtbmTracking t = ptbm_tracking_available();
	kmem_work	w;
	int			fd;

	if (t == PTBM_TRACK_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("this kernel cannot track writes per process"),
				 errdetail("ptbm needs userfaultfd asynchronous write-protect (Linux 6.7) or soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY)."),
				 errhint("Check vm.unprivileged_userfaultfd and the kernel version.")));
	if (t == PTBM_TRACK_SOFT_DIRTY)
	{
		ptbm_clear_soft_dirty(ptbm_self());
		ptbm_ledger_set_tracking(PTBM_TRACK_SOFT_DIRTY);
		return;
	}

	if (ptbm_wp_bits == NULL)
		ptbm_wp_chunks_init();
	ptbm_uffd = kmem_uffd_wp_register(ptbm_region.base, ptbm_region.size);
	ptbm_tracking_active = ptbm_uffd >= 0;
	if (ptbm_uffd < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("could not register the %s region for write-protect: %m",
						ptbm_kind_name(ptbm_region.kind))));
	/* the chunks of what it maps already (fork copies PTEs of private kinds) */
	fd = kmem_pagemap_open(0);
	PG_TRY();
	{
		int			r;

		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open /proc/self/pagemap: %m")));
		/* runs of pages with a PTE: PAGEMAP_SCAN alone finds them */
		ptbm_walk_work(&w, PTBM_WRITES_CHUNK, false);
		r = kmem_walk(fd, ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages), 1, 0,
					  &w, ptbm_wp_protect_run, NULL);
		if (r < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read /proc/self/pagemap: %m")));
	}
	PG_CATCH();
	{
		if (fd >= 0)
			close(fd);
		ptbm_tracking_stop();
		PG_RE_THROW();
	}
	PG_END_TRY();
	close(fd);
	ptbm_ledger_set_tracking(PTBM_TRACK_UFFD);
}

/* ---- the written set ------------------------------------------------------------ */

typedef void (*PtbmRunEmit) (void *arg, uint64 addr, size_t pages);

/*
 * The ranges a reset of the calling backend's own set protected so far,
 * which a failure or a cancel unprotects again (making those pages written
 * again).
 */
typedef struct PtbmUndo
{
	struct page_region *ranges;
	int			n;
	int			cap;
} PtbmUndo;

/* A written-set walk: where its runs go, and the undo of an own reset. */
typedef struct WrittenWalk
{
	PtbmRunEmit emit;
	void	   *arg;
	PtbmUndo   *undo;			/* NULL: nothing to undo */
} WrittenWalk;

/* a sink of a KMEM_WRITTEN walk: each run, recorded for the undo first */
static int
ptbm_written_run(void *arg, const kmem_chunk *c)
{
	WrittenWalk *ww = arg;

	if (ww->undo)
	{
		PtbmUndo   *u = ww->undo;

		if (u->n == u->cap)
		{
			u->cap *= 2;
			u->ranges = repalloc_huge(u->ranges, u->cap * sizeof(struct page_region));
		}
		u->ranges[u->n].start = c->addr;
		u->ranges[u->n].end = c->addr + c->npages * c->page_size;
		u->n++;
	}
	ww->emit(ww->arg, c->addr, c->npages);
	return 0;
}

/*
 * The written set of a process that tracks with uffd-wp, read through its
 * pagemap; with reset, the same walk write-protects it again.  For the
 * calling backend's own set (undoable), a failure or a cancel protects
 * nothing in the end: what was protected is unprotected again.
 */
static void
ptbm_written_uffd(PtbmProc *p, bool reset, bool undoable, PtbmRunEmit emit, void *arg)
{
	PtbmUndo	undo = {palloc(16 * sizeof(struct page_region)), 0, 16};
	WrittenWalk ww = {emit, arg, undoable && reset ? &undo : NULL};
	kmem_work	w;

	ptbm_walk_work(&w, 1, false);
	PG_TRY();
	{
		int			r;

		r = kmem_walk(p->pagemap, ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages),
					  ptbm_region.base_per_page, KMEM_WRITTEN | (reset ? KMEM_RESET : 0),
					  &w, ptbm_written_run, &ww);
		if (r < 0 && !ptbm_proc_gone(p, errno))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not scan the page table of process %d: %m", p->pid)));
	}
	PG_CATCH();
	{
		for (int i = 0; ww.undo && i < undo.n; i++)
			(void) kmem_uffd_wp_unprotect(ptbm_uffd, (void *) (uintptr_t) undo.ranges[i].start,
										  undo.ranges[i].end - undo.ranges[i].start);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* the soft-dirty rule, as kmem_runs picks pages */
static bool
ptbm_pick_soft_dirty(void *arg, uint64_t ent)
{
	return ptbm_entry_written(PTBM_TRACK_SOFT_DIRTY, ent);
}

/*
 * The same for soft-dirty: runs of present pages with bit 55.  A process
 * that exits during the walk ends it where its entries end; a read error
 * that is not an exit is an error.
 */
static void
ptbm_written_soft_dirty(PtbmProc *p, PtbmRunEmit emit, void *arg)
{
	kmem_runs	runs = {.pick = ptbm_pick_soft_dirty, .emit = emit, .arg = arg};
	kmem_work	w;
	int			r;

	ptbm_walk_work(&w, PTBM_WRITES_CHUNK, false);
	r = kmem_walk(p->pagemap, ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages),
				  ptbm_region.base_per_page, KMEM_PRESENT | KMEM_ENTRIES, &w,
				  kmem_runs_sink, &runs);
	kmem_runs_end(&runs);
	if (r < 0 && !ptbm_proc_gone(p, errno))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the page table of process %d: %m", p->pid)));
}

/* ---- the login path, and a session that starts again ---------------------------- */

/*
 * ptbm.track_writes changed: in the postmaster (at start and on reload),
 * say once that this kernel cannot do it.  Every backend then starts
 * without tracking, quietly.
 */
void
ptbm_track_writes_assign(bool newval, void *extra)
{
	static bool was_on = false;

	if (newval && !was_on && !IsUnderPostmaster &&
		ptbm_tracking_available() == PTBM_TRACK_NONE)
		ereport(WARNING,
				(errmsg("ptbm.track_writes is on, but this kernel cannot track writes per process"),
				 errdetail("ptbm needs userfaultfd asynchronous write-protect (Linux 6.7) or soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY); backends start without tracking."),
				 errhint("Check vm.unprivileged_userfaultfd and the kernel version, or set ptbm.track_writes = off.")));
	was_on = newval;
}

/*
 * (Re)starts tracking for a session that starts (or starts again) with
 * ptbm.track_writes = track.  Never raises an ERROR: a failure is reported
 * at elevel (LOG in the login path, where nothing may reach the client
 * before authentication completes; WARNING after DISCARD ALL).
 */
static void
ptbm_tracking_restart(bool track, int elevel)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (ptbm_region.base == NULL)
		return;
	ptbm_tracking_stop();
	if (!track || ptbm_tracking_available() == PTBM_TRACK_NONE)
		return;					/* said once, by the postmaster */
	PG_TRY();
	{
		ptbm_tracking_start();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(elevel,
				(errmsg("ptbm.track_writes is on, but this backend does not track its writes"),
				 errdetail_internal("%s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

void
ptbm_tracking_login(bool track)
{
	ptbm_tracking_restart(track, LOG);
}

/* DISCARD ALL and RESET ALL: the next user of a pooled connection starts clean. */
void
ptbm_tracking_session_reset(bool track)
{
	ptbm_tracking_restart(track, WARNING);
}

/* ---- ptbm_track_writes() ---------------------------------------------- */

#define PTBM_TRACK_COLS 5

static void
ptbm_emit_nothing(void *arg, uint64 addr, size_t pages)
{
}

/*
 * ptbm_track_writes(enable boolean) returns (tracking, mechanism,
 * page_table_before, page_table_after, elapsed_ms)
 *
 * Starts tracking in the calling backend, resets its set if it tracks
 * already, or stops.
 */
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
	PtbmTracking t;

	ptbm_require_region();
	/* STRICT since 1.2; an older installed version calls with NULL too */
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	enable = PG_GETARG_BOOL(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	(void) kmem_status_kb(0, "VmPTE", &pte_before);
	INSTR_TIME_SET_CURRENT(start);
	t = ptbm_ledger_tracking(MyBackendId);
	if (!enable)
		ptbm_tracking_stop();
	else if (t == PTBM_TRACK_NONE)
		ptbm_tracking_start();
	else if (t == PTBM_TRACK_SOFT_DIRTY)
		ptbm_clear_soft_dirty(ptbm_self());
	else
	{
		PtbmProc   *self = ptbm_self();

		if (ptbm_proc_open(self))
		{
			ptbm_written_uffd(self, true, true, ptbm_emit_nothing, NULL);
			(void) ptbm_proc_close(self, 0, 0);
		}
	}
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	(void) kmem_status_kb(0, "VmPTE", &pte_after);

	t = ptbm_ledger_tracking(MyBackendId);
	values[0] = BoolGetDatum(t != PTBM_TRACK_NONE);
	if (t != PTBM_TRACK_NONE)
		values[1] = CStringGetTextDatum(ptbm_tracking_name(t));
	else
		nulls[1] = true;
	values[2] = Int64GetDatum((int64) pte_before * 1024);
	values[3] = Int64GetDatum((int64) pte_after * 1024);
	values[4] = Float8GetDatum(INSTR_TIME_GET_MILLISEC(elapsed));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- ptbm_written() -------------------------------------------------------- */

#define PTBM_WRITTEN_COLS 2

static void
ptbm_put_run(void *arg, uint64 addr, size_t pages)
{
	ReturnSetInfo *rsinfo = arg;
	Datum		values[PTBM_WRITTEN_COLS];
	bool		nulls[PTBM_WRITTEN_COLS] = {0};

	values[0] = Int64GetDatum((int64) ((addr - ptbm_page_addr(0)) / ptbm_region.page_size));
	values[1] = Int64GetDatum((int64) pages);
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
	PtbmProc	p;

	ptbm_proc_resolve(pid, &p);
	if (check_superuser && reset && pid != MyProcPid && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may reset the write tracking of another backend"),
				 errhint("A superuser may grant EXECUTE on ptbm_written_reset(integer), which does the same.")));
	if (p.tracking == PTBM_TRACK_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("process %d does not track writes to the ptbm region", pid),
				 errhint("Call ptbm_track_writes() in that backend, or set ptbm.track_writes.")));

	if (!ptbm_proc_open(&p))
		return (Datum) 0;
	if (p.tracking == PTBM_TRACK_UFFD)
		/* only the calling backend's own reset can be undone */
		ptbm_written_uffd(&p, reset, pid == MyProcPid, ptbm_put_run, rsinfo);
	else
	{
		ptbm_written_soft_dirty(&p, ptbm_put_run, rsinfo);
		if (reset)
			ptbm_clear_soft_dirty(&p);
	}
	(void) ptbm_proc_close(&p, 0, 0);
	return (Datum) 0;
}

/* ptbm_written(pid integer, reset boolean) returns setof (first_page, pages) */
Datum
ptbm_written(PG_FUNCTION_ARGS)
{
	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;		/* STRICT since 1.2 */
	return ptbm_written_walk(fcinfo, PG_GETARG_INT32(0), PG_GETARG_BOOL(1), true);
}

/* ptbm_written_reset(pid integer) returns setof (first_page, pages) */
Datum
ptbm_written_reset(PG_FUNCTION_ARGS)
{
	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;		/* STRICT since 1.2 */
	return ptbm_written_walk(fcinfo, PG_GETARG_INT32(0), true, false);
}
