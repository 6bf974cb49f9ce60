/*-------------------------------------------------------------------------
 *
 * ptbm_sharing.c
 *	  SQL functions: how the region's pages are shared across the processes
 *	  of the cluster (ptbm_backends, ptbm_map, ptbm_sharing).
 *
 * Every process of the cluster is inspected through its pagemap (sinks of
 * kmem_walk) and, for the summaries, /proc/PID/smaps and status.
 * Summaries are computed while scanning; no per-page row is materialised
 * for them.  A process that exits during a call is skipped.  Like every
 * ptbm report, the answer is a sequence of snapshots, one process and one
 * chunk at a time; no lock is taken.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_sharing.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>

#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "kmem.h"
#include "ptbm_proc.h"
#include "ptbm_region.h"

#define PTBM_WALK_CHUNK		65536	/* pagemap entries per read */
#define PTBM_SHARING_CHUNK	4096	/* pages per step of ptbm_sharing */
#define PTBM_MAP_MAX_WIDTH	10000

/* pagemaps kept open for a whole ptbm_sharing call at most; beyond, per chunk */
#define PTBM_SHARING_KEEP_FDS	16

PG_FUNCTION_INFO_V1(ptbm_backends);
PG_FUNCTION_INFO_V1(ptbm_sharing);
PG_FUNCTION_INFO_V1(ptbm_map);

/* ---- ptbm_backends() ------------------------------------------------------ */

/* What one process maps of the region, in kB (smaps units). */
typedef struct BackendUse
{
	kmem_vma	vma;			/* the region's smaps sums */
	uint64		pte_kb;			/* VmPTE */
	uint64		present_kb;
	uint64		private_kb;
} BackendUse;

/*
 * Collects p's use of the region; false if it has gone.  Every column comes
 * from one read of smaps (and VmPTE from status): smaps walks the region's
 * page table once and gives what a pagemap walk would (present pages are
 * Rss, pages mapped by this process only are Private_*, swapped pages are
 * Swap, never a PTE marker) plus what only it has (Pss, the clean/dirty
 * split).  Measured on a 64 GB region 1% touched, that one read costs a
 * third of a PAGEMAP_SCAN walk plus pagemap reads plus smaps
 * (bench/RESULTS.md).  The region has a VMA of its own (guard pages), so the
 * sums are the region's.  For a shared kind, Swap is the backing object's
 * swapped pages in the range.  One smaps read cannot be interrupted: a
 * cancel waits for the current process.
 */
static bool
ptbm_backend_use(PtbmProc *p, kmem_work *w, BackendUse *u)
{
	kmem_counts c = {0};
	int			r;

	if (!ptbm_proc_alive(p) ||
		kmem_smaps_range(p->pid, ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages), &u->vma) <= 0 ||
		kmem_status_kb(p->pid, "VmPTE", &u->pte_kb) <= 0 ||
		!ptbm_proc_alive(p))
		return false;			/* gone, or exiting */
	u->present_kb = u->vma.kb[KSM_RSS];
	u->private_kb = u->vma.kb[KSM_PRIVATE_CLEAN] + u->vma.kb[KSM_PRIVATE_DIRTY];
	if (ptbm_region.huge != PTBM_HUGE_HUGETLB && ptbm_kind_is_shared(ptbm_region.kind))
		return true;

	/*
	 * Two cases where smaps and the page table disagree, and the page table
	 * is what ptbm reports: a private page that was only read maps the
	 * shared zero page (a PTE, but no Rss), and smaps calls a hugetlb page
	 * private while its mapcount is 1, which stays true when processes
	 * share it through a shared page table.  Count the page table for those.
	 */
	if (!ptbm_proc_open(p))
		return false;
	r = kmem_count(p->pagemap, ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages), w, &c);
	if (!ptbm_proc_close(p, r, errno))
		return false;
	u->present_kb = c.present * kmem_page_size() / 1024;
	u->private_kb = c.exclusive * kmem_page_size() / 1024;
	return true;
}

#define PTBM_BACKENDS_COLS 15

/*
 * ptbm_backends() returns one row per process of the cluster: what its
 * page table holds for the region, and the kernel's accounting of it.
 */
Datum
ptbm_backends(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	double		kb_per_page = ptbm_region.page_size / 1024.0;
	PtbmProc   *procs;
	int			nprocs;
	kmem_work	w;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	procs = ptbm_procs(&nprocs);
	ptbm_walk_work(&w, PTBM_WALK_CHUNK, false);
	w.swap_possible = ptbm_region_swap_possible();

	for (int p = 0; p < nprocs; p++)
	{
		Datum		values[PTBM_BACKENDS_COLS];
		bool		nulls[PTBM_BACKENDS_COLS] = {0};
		BackendUse	u;
		const uint64 *kb = u.vma.kb;
		int			i = 0;

		CHECK_FOR_INTERRUPTS();
		if (!ptbm_backend_use(&procs[p], &w, &u))
			continue;

		values[i++] = Int32GetDatum(procs[p].pid);
		values[i++] = CStringGetTextDatum(procs[p].backend_type);
		if (procs[p].appname)
			values[i] = CStringGetTextDatum(procs[p].appname);
		else
			nulls[i] = true;
		i++;
		/* in region pages */
		values[i++] = Int64GetDatum((int64) (u.present_kb / kb_per_page));
		values[i++] = Int64GetDatum((int64) (u.private_kb / kb_per_page));
		values[i++] = Int64GetDatum((int64) ((u.present_kb - u.private_kb) / kb_per_page));
		values[i++] = Int64GetDatum((int64) (kb[KSM_SWAP] / kb_per_page));
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
		values[i++] = Int64GetDatum((int64) u.pte_kb * 1024);
		Assert(i == PTBM_BACKENDS_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---- ptbm_map() ------------------------------------------------------------ */

/* density of a slice: none, then eighths up to full */
static const char ptbm_map_scale[] = ".:-=+*#%@";

/* present base pages per cell of the strip */
typedef struct MapCells
{
	uint64	   *cells;
	int			ncells;
	int64		slice_pages;	/* region pages per cell */
} MapCells;

/* a sink: the runs of present base pages, added to the cells they cover */
static int
ptbm_map_run(void *arg, const kmem_chunk *c)
{
	MapCells   *m = arg;
	uint64		base = ptbm_page_addr(0);
	uint64		slice = (uint64) m->slice_pages * ptbm_region.page_size;
	uint64		a = c->addr;
	uint64		end = c->addr + c->npages * c->page_size;

	while (a < end)
	{
		uint64		cell = (a - base) / slice;
		uint64		cell_end = Min(base + (cell + 1) * slice, end);

		m->cells[cell] += (cell_end - a) / kmem_page_size();
		a = cell_end;
	}
	return 0;
}

/* The strip of one process: ceil(8 * present / slice), so any page shows. */
static char *
ptbm_map_strip(const MapCells *m)
{
	char	   *strip = palloc(m->ncells + 1);

	for (int k = 0; k < m->ncells; k++)
	{
		int64		slice = Min(m->slice_pages, ptbm_region.pages - (int64) k * m->slice_pages) *
			ptbm_region.base_per_page;
		uint64		n = m->cells[k];

		strip[k] = ptbm_map_scale[n == 0 ? 0 : (int) ((8 * n + slice - 1) / slice)];
	}
	strip[m->ncells] = '\0';
	return strip;
}

#define PTBM_MAP_COLS 5

/*
 * ptbm_map(width integer) returns one row per process: a strip of width
 * cells, each the density of present pages in its slice of the region.
 */
Datum
ptbm_map(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			width;
	PtbmProc   *procs;
	int			nprocs;
	kmem_work	w;
	MapCells	m;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;		/* STRICT since 1.2 */
	width = PG_GETARG_INT32(0);
	if (width < 1 || width > PTBM_MAP_MAX_WIDTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("map width must be between 1 and %d", PTBM_MAP_MAX_WIDTH)));

	m.slice_pages = (ptbm_region.pages + width - 1) / width;
	m.ncells = (int) ((ptbm_region.pages + m.slice_pages - 1) / m.slice_pages);
	m.cells = palloc(m.ncells * sizeof(uint64));
	procs = ptbm_procs(&nprocs);
	ptbm_walk_work(&w, PTBM_WALK_CHUNK, false);

	for (int p = 0; p < nprocs; p++)
	{
		Datum		values[PTBM_MAP_COLS];
		bool		nulls[PTBM_MAP_COLS] = {0};
		uint64		present = 0;
		int			r;

		CHECK_FOR_INTERRUPTS();
		memset(m.cells, 0, m.ncells * sizeof(uint64));
		if (!ptbm_proc_open(&procs[p]))
			continue;
		/* runs of present pages, counted in base pages */
		r = kmem_walk(procs[p].pagemap, ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages),
					  1, KMEM_PRESENT, &w, ptbm_map_run, &m);
		if (!ptbm_proc_close(&procs[p], r, errno))
			continue;
		for (int k = 0; k < m.ncells; k++)
			present += m.cells[k];

		values[0] = Int32GetDatum(procs[p].pid);
		values[1] = CStringGetTextDatum(procs[p].backend_type);
		values[2] = Int64GetDatum((int64) present / ptbm_region.base_per_page);
		values[3] = Int64GetDatum(m.slice_pages);
		values[4] = CStringGetTextDatum(ptbm_map_strip(&m));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---- ptbm_sharing() -------------------------------------------------------- */

/* The entries of every process for one chunk of pages, and what the page cache holds. */
typedef struct SharingChunk
{
	PtbmProc   *procs;
	int			nprocs;
	bool	   *gone;			/* per process: exited, maps nothing any more */
	bool		keep_open;		/* pagemaps open for the whole call */
	uint64	  **ents;			/* per process: its entries for the chunk */
	kmem_work	w;				/* its ents pointed at the process's array */
	bool		frames;
	int			kcount_fd;
	uint64	   *pfn1;			/* the first frame found for each page */
	uint64	   *mapcounts;
	unsigned char *incore;		/* mincore, per base page */
	bool		have_incore;
	Datum	   *pids;
} SharingChunk;

/* Fills s->ents[p] for pages [first, first + n); a process that went away maps nothing. */
static void
ptbm_sharing_collect(SharingChunk *s, int64 first, int64 n)
{
	uint64		addr = ptbm_page_addr(first);
	uint64		end = ptbm_page_addr(first + n);

	for (int p = 0; p < s->nprocs; p++)
	{
		PtbmProc   *proc = &s->procs[p];
		int			r;

		memset(s->ents[p], 0, n * sizeof(uint64));
		if (s->gone[p] || (proc->pagemap < 0 && !ptbm_proc_open(proc)))
		{
			s->gone[p] = true;
			continue;
		}
		/* the walker reads every page of the chunk into this process's array */
		s->w.ents = s->ents[p];
		s->w.ents_len = n;
		r = kmem_walk(proc->pagemap, addr, end, ptbm_region.base_per_page,
					  KMEM_EVERY_PAGE | KMEM_ENTRIES, &s->w, NULL, NULL);
		if (r < 0)
		{
			/* the process exited: it maps nothing from now on */
			memset(s->ents[p], 0, n * sizeof(uint64));
			(void) ptbm_proc_close(proc, r, errno);
			s->gone[p] = true;
		}
		else if (!s->keep_open)
			(void) ptbm_proc_close(proc, 0, 0);
	}

	/* does the page exist in the backing object (page cache)? */
	s->have_incore = mincore(ptbm_region.base + first * ptbm_region.page_size,
							 n * ptbm_region.page_size, s->incore) == 0;

	if (s->frames && s->kcount_fd >= 0)
	{
		/* the kernel's mapcount, read for the first frame found */
		for (int64 k = 0; k < n; k++)
		{
			s->pfn1[k] = 0;
			for (int p = 0; p < s->nprocs && s->pfn1[k] == 0; p++)
				s->pfn1[k] = kmem_pfn(s->ents[p][k]);
		}
		if (kmem_kpage_read(s->kcount_fd, s->pfn1, n, s->mapcounts) < 0)
			memset(s->mapcounts, 0, n * sizeof(uint64));
	}
}

#define PTBM_SHARING_COLS 6

/* One row per page of the chunk. */
static void
ptbm_sharing_rows(SharingChunk *s, ReturnSetInfo *rsinfo, int64 first, int64 n)
{
	for (int64 k = 0; k < n; k++)
	{
		Datum		values[PTBM_SHARING_COLS];
		bool		nulls[PTBM_SHARING_COLS] = {0};
		int			np = 0;
		uint64		pfn = 0;
		bool		same = true;

		for (int p = 0; p < s->nprocs; p++)
		{
			uint64		e = s->ents[p][k];

			if (!(e & PM_PRESENT))
				continue;
			s->pids[np++] = Int32GetDatum(s->procs[p].pid);
			if (pfn == 0)
				pfn = kmem_pfn(e);
			else if (kmem_pfn(e) != pfn)
				same = false;
		}
		values[0] = Int64GetDatum(first + k);
		values[1] = Int32GetDatum(np);
		values[2] = PointerGetDatum(construct_array(s->pids, np, INT4OID, 4, true, TYPALIGN_INT));
		values[3] = BoolGetDatum(same);
		nulls[3] = !s->frames || np == 0;
		values[4] = Int64GetDatum(s->frames && s->kcount_fd >= 0 ? (int64) s->mapcounts[k] : 0);
		nulls[4] = !s->frames || s->kcount_fd < 0 || np == 0;
		values[5] = BoolGetDatum(s->have_incore &&
								 (s->incore[k * ptbm_region.base_per_page] & 1) != 0);
		nulls[5] = !s->have_incore;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * ptbm_sharing(first_page bigint, page_count bigint) returns one row per
 * page: which processes map it, whether at the same frame, and whether it
 * exists in the backing object at all.
 */
Datum
ptbm_sharing(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SharingChunk s = {0};
	int64		first;
	int64		count;
	MemoryContext rowctx;
	MemoryContext oldctx;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	count = ptbm_region_range_args(fcinfo, 0, &first);

	s.frames = ptbm_frames_for_caller();
	s.procs = ptbm_procs(&s.nprocs);
	/*
	 * With few processes, their pagemaps stay open for the whole call; with
	 * many, each is opened for one chunk at a time, so that the call never
	 * needs more than a few of the backend's file descriptors.
	 */
	s.keep_open = s.nprocs <= PTBM_SHARING_KEEP_FDS;
	s.ents = palloc(s.nprocs * sizeof(uint64 *));
	s.gone = palloc0(s.nprocs * sizeof(bool));
	for (int p = 0; p < s.nprocs; p++)
	{
		s.ents[p] = palloc(PTBM_SHARING_CHUNK * sizeof(uint64));
		if (s.keep_open && !ptbm_proc_open(&s.procs[p]))
			s.gone[p] = true;
	}
	ptbm_walk_work(&s.w, 1, false);
	s.kcount_fd = s.frames ? ptbm_open_kpage("kpagecount", "mapcount") : -1;
	s.pfn1 = palloc(PTBM_SHARING_CHUNK * sizeof(uint64));
	s.mapcounts = palloc(PTBM_SHARING_CHUNK * sizeof(uint64));
	/* mincore reports per base page */
	s.incore = palloc((Size) PTBM_SHARING_CHUNK * ptbm_region.base_per_page);
	s.pids = palloc(s.nprocs * sizeof(Datum));
	/* row values live per chunk: memory stays bounded over any range */
	rowctx = AllocSetContextCreate(CurrentMemoryContext, "ptbm_sharing rows",
								   ALLOCSET_DEFAULT_SIZES);

	for (int64 done = 0; done < count;)
	{
		int64		n = Min(count - done, PTBM_SHARING_CHUNK);

		CHECK_FOR_INTERRUPTS();
		ptbm_sharing_collect(&s, first + done, n);
		oldctx = MemoryContextSwitchTo(rowctx);
		ptbm_sharing_rows(&s, rsinfo, first + done, n);
		MemoryContextSwitchTo(oldctx);
		MemoryContextReset(rowctx);
		done += n;
	}

	for (int p = 0; p < s.nprocs; p++)
		if (s.procs[p].pagemap >= 0)
			(void) ptbm_proc_close(&s.procs[p], 0, 0);
	if (s.kcount_fd >= 0)
		CloseTransientFile(s.kcount_fd);
	return (Datum) 0;
}
