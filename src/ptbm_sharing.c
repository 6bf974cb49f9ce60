/*-------------------------------------------------------------------------
 *
 * ptbm_sharing.c
 *	  How the region's pages are shared across the processes of the
 *	  cluster: per-process summaries, per-page sharing, a density map, and
 *	  eviction.
 *
 * Every process of the cluster is inspected through /proc/PID/pagemap
 * (PAGEMAP_SCAN where the kernel has it) and, for the smaps columns,
 * /proc/PID/smaps and status.  Summaries are computed while scanning; no
 * per-page row is materialised for them.  A process that exits during a
 * call is skipped.  Like every ptbm report, the answer is a sequence of
 * snapshots, one process and one page run at a time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>

#include "catalog/pg_authid_d.h"
#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "kmem.h"
#include "ptbm.h"

#define PTBM_WALK_VEC		1024	/* ranges per PAGEMAP_SCAN call */
#define PTBM_WALK_ENTS		65536	/* pagemap entries per pread */
#define PTBM_SHARING_CHUNK	4096	/* pages per step of ptbm_sharing */
#define PTBM_MAP_MAX_WIDTH	10000

PG_FUNCTION_INFO_V1(ptbm_backends);
PG_FUNCTION_INFO_V1(ptbm_sharing);
PG_FUNCTION_INFO_V1(ptbm_map);
PG_FUNCTION_INFO_V1(ptbm_evict);

/* ---- the processes of the cluster --------------------------------------- */

/* pg_stat_activity's name for a backend state */
static const char *
ptbm_state_name(BackendState state)
{
	switch (state)
	{
		case STATE_IDLE:
			return "idle";
		case STATE_RUNNING:
			return "active";
		case STATE_IDLEINTRANSACTION:
			return "idle in transaction";
		case STATE_FASTPATH:
			return "fastpath function call";
		case STATE_IDLEINTRANSACTION_ABORTED:
			return "idle in transaction (aborted)";
		case STATE_DISABLED:
			return "disabled";
		case STATE_UNDEFINED:
			break;
	}
	return NULL;
}

/*
 * The postmaster, then every process pg_stat_activity lists (client
 * backends, background workers, auxiliary processes), from this
 * transaction's snapshot of backend status.  State and application name
 * are shown as pg_stat_activity shows them: to members of
 * pg_read_all_stats and of the process's role.
 */
PtbmProc *
ptbm_cluster_procs(int *nprocs)
{
	int			nb = pgstat_fetch_stat_numbackends();
	PtbmProc   *procs = palloc0((nb + 1) * sizeof(PtbmProc));
	bool		all_stats = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
	int			n = 0;

	procs[n].pid = PostmasterPid;
	procs[n].backend_type = "postmaster";
	n++;
	for (int i = 1; i <= nb; i++)
	{
		LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;

		if (l == NULL)
			continue;
		be = &l->backendStatus;
		/* the status snapshot lasts the transaction: check it is still so */
		if (be->st_procpid <= 0 || !ptbm_is_cluster_pid(be->st_procpid))
			continue;
		procs[n].pid = be->st_procpid;
		procs[n].backend_type = GetBackendTypeDesc(be->st_backendType);
		if (be->st_backendType == B_BG_WORKER)
		{
			/* as pg_stat_activity shows it */
			const char *bgw_type = GetBackgroundWorkerTypeByPid(be->st_procpid);

			if (bgw_type)
				procs[n].backend_type = pstrdup(bgw_type);
		}
		if (all_stats || (OidIsValid(be->st_userid) &&
						  has_privs_of_role(GetUserId(), be->st_userid)))
		{
			procs[n].state = ptbm_state_name(be->st_state);
			if (be->st_appname && be->st_appname[0] != '\0')
				procs[n].appname = pstrdup(be->st_appname);
		}
		n++;
	}
	*nprocs = n;
	return procs;
}

/*
 * Whether a listed process is still a process of the cluster, checked again
 * right before any /proc file of it is opened: a pid freed meanwhile could
 * be another process's.
 */
bool
ptbm_proc_alive(const PtbmProc *proc)
{
	return ptbm_is_cluster_pid(proc->pid);
}

static int
ptbm_tick(void *arg)
{
	CHECK_FOR_INTERRUPTS();
	return 0;
}

/*
 * Whether a PTE of the region can hold a swap entry: only in a private
 * mapping, and only with swap configured (shmem and file pages never leave
 * one in a page table).
 */
bool
ptbm_region_swap_possible(void)
{
	uint64		swap_kb = 0;

	return !ptbm_kind_is_shared(ptbm_region.kind) &&
		(kmem_meminfo("SwapTotal", &swap_kb) != 1 || swap_kb > 0);
}

/* Scratch space for kmem_walk of the region, with interrupt checks between batches. */
void
ptbm_init_work(kmem_work *w, bool use_scan)
{
	memset(w, 0, sizeof(*w));
	w->vec = palloc(PTBM_WALK_VEC * sizeof(struct page_region));
	w->vec_len = PTBM_WALK_VEC;
	w->ents = palloc(PTBM_WALK_ENTS * sizeof(uint64));
	w->ents_len = PTBM_WALK_ENTS;
	w->tick = ptbm_tick;
	w->use_scan = use_scan;
	w->swap_possible = ptbm_region_swap_possible();
}

/*
 * Walks the whole region in one process's page table.  Returns false if
 * the process has gone (then it is to be skipped).
 */
static bool
ptbm_walk_proc(int pid, kmem_work *w, kmem_counts *c, kmem_run_cb cb, void *arg)
{
	int			fd;
	int			r;

	memset(c, 0, sizeof(*c));
	fd = ptbm_open_pagemap(pid);
	if (fd < 0)
		return false;
	r = kmem_walk(fd, ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages), w, c, cb, arg);
	return ptbm_close_pagemap(fd, pid, r, errno);
}

/* ---- ptbm_backends() ------------------------------------------------------ */

#define PTBM_BACKENDS_COLS 15

Datum
ptbm_backends(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PtbmProc   *procs;
	int			nprocs;
	double		kb_per_page = ptbm_region.page_size / 1024.0;
	kmem_work	w;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	procs = ptbm_cluster_procs(&nprocs);
	ptbm_init_work(&w, true);

	for (int p = 0; p < nprocs; p++)
	{
		Datum		values[PTBM_BACKENDS_COLS];
		bool		nulls[PTBM_BACKENDS_COLS] = {0};
		kmem_vma	vma;
		uint64		pte_kb = 0;
		uint64	   *kb = vma.kb;
		uint64		present_kb,
					private_kb,
					swap_kb;
		int			i = 0;

		CHECK_FOR_INTERRUPTS();
		if (!ptbm_proc_alive(&procs[p]))
			continue;

		/*
		 * Every column comes from one read of smaps (and VmPTE from status):
		 * smaps walks the region's page table once and gives what a
		 * pagemap walk would (present pages are Rss, pages mapped by this
		 * process only are Private_*, swapped pages are Swap) plus what only
		 * it has (Pss, the clean/dirty split).  Measured on a 64 GB region
		 * 1% touched, that one read costs a third of a PAGEMAP_SCAN walk
		 * plus pagemap reads plus smaps (bench/RESULTS.md).  The region has
		 * a VMA of its own (guard pages), so the sums are the region's.  For
		 * a shared kind, Swap is the backing object's swapped pages in the
		 * range (no PTE points to a swapped shmem page).  One smaps read
		 * cannot be interrupted: a cancel waits for the current process.
		 */
		if (kmem_smaps_range(procs[p].pid, ptbm_page_addr(0),
							 ptbm_page_addr(ptbm_region.pages), &vma) <= 0 ||
			kmem_status_kb(procs[p].pid, "VmPTE", &pte_kb) <= 0 ||
			!ptbm_proc_alive(&procs[p]))
			continue;			/* gone, or exiting */
		present_kb = kb[KSM_RSS];
		private_kb = kb[KSM_PRIVATE_CLEAN] + kb[KSM_PRIVATE_DIRTY];
		swap_kb = kb[KSM_SWAP];
		if (ptbm_region.huge == PTBM_HUGE_HUGETLB ||
			!ptbm_kind_is_shared(ptbm_region.kind))
		{
			/*
			 * Two cases where smaps and the page table disagree, and the
			 * page table is what ptbm reports: a private page that was only
			 * read maps the shared zero page (a PTE, but no Rss), and smaps
			 * calls a hugetlb page private while its mapcount is 1, which
			 * stays true when processes share it through a shared page
			 * table.  Walk the page table for those.
			 */
			kmem_counts c;

			if (!ptbm_walk_proc(procs[p].pid, &w, &c, NULL, NULL))
				continue;
			present_kb = c.present * kmem_page_size() / 1024;
			private_kb = c.exclusive * kmem_page_size() / 1024;
			/* swap stays smaps': it counts swap entries only, never a marker */
		}

		values[i++] = Int32GetDatum(procs[p].pid);
		values[i++] = CStringGetTextDatum(procs[p].backend_type);
		if (procs[p].appname)
			values[i] = CStringGetTextDatum(procs[p].appname);
		else
			nulls[i] = true;
		i++;
		/* in region pages */
		values[i++] = Int64GetDatum((int64) (present_kb / kb_per_page));
		values[i++] = Int64GetDatum((int64) (private_kb / kb_per_page));
		values[i++] = Int64GetDatum((int64) ((present_kb - private_kb) / kb_per_page));
		values[i++] = Int64GetDatum((int64) (swap_kb / kb_per_page));
		values[i++] = Int64GetDatum((int64) kb[KSM_RSS] * 1024);
		values[i++] = Int64GetDatum((int64) kb[KSM_PSS] * 1024);
		values[i++] = Int64GetDatum((int64) kb[KSM_SHARED_CLEAN] * 1024);
		values[i++] = Int64GetDatum((int64) kb[KSM_SHARED_DIRTY] * 1024);
		values[i++] = Int64GetDatum((int64) kb[KSM_PRIVATE_CLEAN] * 1024);
		values[i++] = Int64GetDatum((int64) kb[KSM_PRIVATE_DIRTY] * 1024);
		/* huge mappings: THP (PMD-mapped) and hugetlb */
		values[i++] = Int64GetDatum((int64) (kb[KSM_SHMEM_PMD] + kb[KSM_FILE_PMD] +
											 kb[KSM_ANON_HUGE] + kb[KSM_SHARED_HUGETLB] +
											 kb[KSM_PRIVATE_HUGETLB]) * 1024);
		values[i++] = Int64GetDatum((int64) pte_kb * 1024);
		Assert(i == PTBM_BACKENDS_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---- ptbm_map() ------------------------------------------------------------ */

/* density of a slice: none, then eighths up to full */
static const char ptbm_map_scale[] = ".:-=+*#%@";

typedef struct PtbmMapAcc
{
	uint64	   *cells;
	int64		slice_pages;
} PtbmMapAcc;

static void
ptbm_map_run(void *arg, uint64_t addr, size_t npages, const uint64_t *ents)
{
	PtbmMapAcc *acc = arg;
	uint64		off = addr - ptbm_page_addr(0);
	size_t		ps = kmem_page_size();

	/* counts base pages: a hugetlb page adds base_per_page */
	for (size_t k = 0; k < npages; k++)
		if (ents[k] & PM_PRESENT)
			acc->cells[(off + k * ps) / ptbm_region.page_size / acc->slice_pages]++;
}

#define PTBM_MAP_COLS 5

Datum
ptbm_map(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			width;
	int			ncells;
	PtbmProc   *procs;
	int			nprocs;
	kmem_work	w;
	PtbmMapAcc	acc;
	char	   *strip;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	width = PG_GETARG_INT32(0);
	if (width < 1 || width > PTBM_MAP_MAX_WIDTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("map width must be between 1 and %d", PTBM_MAP_MAX_WIDTH)));

	acc.slice_pages = (ptbm_region.pages + width - 1) / width;
	ncells = (int) ((ptbm_region.pages + acc.slice_pages - 1) / acc.slice_pages);
	acc.cells = palloc(ncells * sizeof(uint64));
	strip = palloc(ncells + 1);
	procs = ptbm_cluster_procs(&nprocs);
	ptbm_init_work(&w, true);

	for (int p = 0; p < nprocs; p++)
	{
		Datum		values[PTBM_MAP_COLS];
		bool		nulls[PTBM_MAP_COLS] = {0};
		kmem_counts c;

		CHECK_FOR_INTERRUPTS();
		memset(acc.cells, 0, ncells * sizeof(uint64));
		if (!ptbm_walk_proc(procs[p].pid, &w, &c, ptbm_map_run, &acc))
			continue;
		for (int k = 0; k < ncells; k++)
		{
			int64		slice = Min(acc.slice_pages,
									ptbm_region.pages - (int64) k * acc.slice_pages) *
				ptbm_region.base_per_page;
			uint64		n = acc.cells[k];

			/* ceil(8 * n / slice): any present page shows, only full is '@' */
			strip[k] = ptbm_map_scale[n == 0 ? 0 : (int) ((8 * n + slice - 1) / slice)];
		}
		strip[ncells] = '\0';

		values[0] = Int32GetDatum(procs[p].pid);
		values[1] = CStringGetTextDatum(procs[p].backend_type);
		values[2] = Int64GetDatum((int64) c.present / ptbm_region.base_per_page);
		values[3] = Int64GetDatum(acc.slice_pages);
		values[4] = CStringGetTextDatum(strip);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---- ptbm_sharing() -------------------------------------------------------- */

/* pagemaps kept open for a whole call at most; beyond, opened per chunk */
#define PTBM_SHARING_KEEP_FDS	16
#define PTBM_FD_LATER			(-2)

#define PTBM_SHARING_COLS 6

Datum
ptbm_sharing(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		first;
	int64		count;
	PtbmProc   *procs;
	int			nprocs;
	int		   *fds;
	uint64	  **ents;
	bool		frames;
	int			kcount_fd = -1;
	uint64	   *pfn1 = NULL;
	uint64	   *mapcounts = NULL;
	unsigned char *incore;
	struct page_region *vec;
	Datum	   *pids;
	MemoryContext rowctx;
	MemoryContext oldctx;
	bool		keep_open;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	count = ptbm_range_args(fcinfo, 0, &first);

	frames = ptbm_frames_for_caller();
	procs = ptbm_cluster_procs(&nprocs);
	fds = palloc(nprocs * sizeof(int));
	ents = palloc(nprocs * sizeof(uint64 *));

	/*
	 * With few processes, their pagemaps stay open for the whole call; with
	 * many, each is opened for one chunk at a time, so that the call never
	 * needs more than a few of the backend's file descriptors.
	 */
	keep_open = nprocs <= PTBM_SHARING_KEEP_FDS;
	for (int p = 0; p < nprocs; p++)
	{
		fds[p] = keep_open ? ptbm_open_pagemap(procs[p].pid) : PTBM_FD_LATER;
		ents[p] = palloc(PTBM_SHARING_CHUNK * sizeof(uint64));
	}
	if (frames)
	{
		kcount_fd = ptbm_open_kpage("kpagecount", "mapcount");
		pfn1 = palloc(PTBM_SHARING_CHUNK * sizeof(uint64));
		mapcounts = palloc(PTBM_SHARING_CHUNK * sizeof(uint64));
	}
	/* mincore reports per base page */
	incore = palloc((Size) PTBM_SHARING_CHUNK * ptbm_region.base_per_page);
	vec = palloc(PTBM_WALK_VEC * sizeof(struct page_region));
	pids = palloc(nprocs * sizeof(Datum));
	/* row values live per chunk: memory stays bounded over any range */
	rowctx = AllocSetContextCreate(CurrentMemoryContext, "ptbm_sharing rows",
								   ALLOCSET_DEFAULT_SIZES);

	for (int64 done = 0; done < count;)
	{
		int64		n = Min(count - done, PTBM_SHARING_CHUNK);
		uint64		addr = ptbm_page_addr(first + done);
		bool		have_incore;

		CHECK_FOR_INTERRUPTS();

		/* each process's entries for this chunk */
		for (int p = 0; p < nprocs; p++)
		{
			kmem_scan	s;
			ssize_t		got;

			int			fd = fds[p];

			memset(ents[p], 0, n * sizeof(uint64));
			if (fd == PTBM_FD_LATER)
				fd = ptbm_open_pagemap(procs[p].pid);
			if (fd < 0)
			{
				fds[p] = fd;	/* gone: maps nothing from now on */
				continue;
			}
			got = n;
			if (kmem_get_caps()->pagemap_scan)
			{
				kmem_scan_init(&s, fd, addr, addr + n * ptbm_region.page_size,
							   0, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, 0, PAGE_IS_PRESENT);
				if (kmem_scan_step(&s, vec, 1) == 0)
					got = -2;	/* nothing mapped here */
			}
			if (got != -2)
				got = kmem_pagemap_read_stride(fd, addr, n, ptbm_region.base_per_page, ents[p]);
			if (got >= 0 && got < n)
			{
				/* the process exited: it maps nothing from now on */
				memset(ents[p], 0, n * sizeof(uint64));
				CloseTransientFile(fd);
				fds[p] = -1;
			}
			else if (!keep_open)
				CloseTransientFile(fd);
		}

		/* does the page exist in the backing object (page cache)? */
		have_incore = mincore(ptbm_region.base + (first + done) * ptbm_region.page_size,
							  n * ptbm_region.page_size, incore) == 0;

		if (frames && kcount_fd >= 0)
		{
			/* the kernel's mapcount, read for the first frame found */
			for (int64 k = 0; k < n; k++)
			{
				pfn1[k] = 0;
				for (int p = 0; p < nprocs && pfn1[k] == 0; p++)
					pfn1[k] = kmem_pfn(ents[p][k]);
			}
			if (kmem_kpage_read(kcount_fd, pfn1, n, mapcounts) < 0)
				memset(mapcounts, 0, n * sizeof(uint64));
		}

		oldctx = MemoryContextSwitchTo(rowctx);
		for (int64 k = 0; k < n; k++)
		{
			Datum		values[PTBM_SHARING_COLS];
			bool		nulls[PTBM_SHARING_COLS] = {0};
			int			np = 0;
			uint64		pfn = 0;
			bool		same = true;

			for (int p = 0; p < nprocs; p++)
			{
				uint64		e = ents[p][k];

				if (!(e & PM_PRESENT))
					continue;
				pids[np++] = Int32GetDatum(procs[p].pid);
				if (pfn == 0)
					pfn = kmem_pfn(e);
				else if (kmem_pfn(e) != pfn)
					same = false;
			}
			values[0] = Int64GetDatum(first + done + k);
			values[1] = Int32GetDatum(np);
			values[2] = PointerGetDatum(construct_array(pids, np, INT4OID, 4, true, TYPALIGN_INT));
			if (frames && np > 0)
				values[3] = BoolGetDatum(same);
			else
				nulls[3] = true;
			if (frames && kcount_fd >= 0 && np > 0)
				values[4] = Int64GetDatum((int64) mapcounts[k]);
			else
				nulls[4] = true;
			if (have_incore)
				values[5] = BoolGetDatum((incore[k * ptbm_region.base_per_page] & 1) != 0);
			else
				nulls[5] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		MemoryContextSwitchTo(oldctx);
		MemoryContextReset(rowctx);
		done += n;
	}

	for (int p = 0; p < nprocs; p++)
		if (keep_open && fds[p] >= 0)
			CloseTransientFile(fds[p]);
	if (kcount_fd >= 0)
		CloseTransientFile(kcount_fd);
	return (Datum) 0;
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
	count = ptbm_range_args(fcinfo, 0, &first);
	method = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (strcmp(method, "dontneed") == 0)
		advice = MADV_DONTNEED;
	else if (strcmp(method, "remove") == 0)
		advice = MADV_REMOVE;
	else if (strcmp(method, "pageout") == 0)
		advice = MADV_PAGEOUT;
	else if (strcmp(method, "cold") == 0)
		advice = MADV_COLD;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown eviction method \"%s\"", method),
				 errhint("Valid methods are \"dontneed\", \"remove\", \"pageout\" and \"cold\".")));

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

		errno = save;
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
