/*-------------------------------------------------------------------------
 *
 * ptbm_numa.c
 *	  SQL function ptbm_numa_nodes(): for every process of the cluster, on
 *	  which NUMA nodes the pages its page table maps are, for the region and
 *	  for PostgreSQL's main shared memory segment.
 *
 * The nodes come from move_pages without target nodes (kmem_page_nodes),
 * which reads them from the process's page table and faults nothing in:
 * asking changes no process's memory.  One call per page of the mapping's
 * own size (a huge page once, not per base page), over the runs of present
 * pages that PAGEMAP_SCAN gives, KMEM_NODES_CHUNK pages a call.  A present
 * page the kernel gives no node for (the zero page) counts under a NULL
 * node, so a process's rows sum to what ptbm_backends (region) and
 * ptbm_shmem_backends (segment) report present.  A process that exits
 * during the call is skipped; nothing is locked.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_numa.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "kmem.h"
#include "ptbm_proc.h"
#include "ptbm_region.h"
#include "ptbm_shmem.h"

/* nodes counted one by one; a higher one (there are none) counts as NULL */
#define PTBM_NUMA_MAX_NODES	1024
#define PTBM_NUMA_WALK_CHUNK 65536	/* pagemap entries per read (no PAGEMAP_SCAN) */

PG_FUNCTION_INFO_V1(ptbm_numa_nodes);

/* What one walk of one process over one area counts. */
typedef struct NumaAcc
{
	const PtbmProc *proc;
	uint64		huge_step;		/* bytes of a huge page of the area */
	uint64	   *pages;			/* per node: base pages; [MAX_NODES]: no node */
	bool		gone;			/* the process went away */
	int			pending;
	uint64		addr[KMEM_NODES_CHUNK];
	uint64		count[KMEM_NODES_CHUNK];	/* base pages at each address */
} NumaAcc;

static void
numa_flush(NumaAcc *a)
{
	int			nodes[KMEM_NODES_CHUNK];

	if (a->pending == 0)
		return;
	if (!ptbm_proc_nodes(a->proc, a->addr, a->pending, nodes) && !ptbm_proc_alive(a->proc))
		a->gone = true;
	for (int i = 0; i < a->pending; i++)
	{
		int			n = nodes[i];

		a->pages[n >= 0 && n < PTBM_NUMA_MAX_NODES ? n : PTBM_NUMA_MAX_NODES] += a->count[i];
	}
	a->pending = 0;
}

/* A sink: a run of present base pages, asked a page of the mapping at a time. */
static int
numa_run(void *arg, const kmem_chunk *c)
{
	NumaAcc    *a = arg;
	uint64		base = kmem_page_size();
	uint64		step = c->ents == NULL && (c->run_cats & PAGE_IS_HUGE) ? a->huge_step : base;
	uint64		addr = c->addr;
	uint64		end = c->addr + c->npages * c->page_size;

	while (addr < end)
	{
		uint64		next = Min((addr / step + 1) * step, end);

		a->addr[a->pending] = addr;
		a->count[a->pending] = (next - addr) / base;
		if (++a->pending == KMEM_NODES_CHUNK)
			numa_flush(a);
		addr = next;
	}
	return a->gone;
}

/* Counts p's present pages of [start, end) per node; false if it has gone. */
static bool
numa_walk(PtbmProc *p, uint64 start, uint64 end, uint64 huge_step, kmem_work *w, uint64 *pages)
{
	NumaAcc    *a = palloc0(sizeof(NumaAcc));
	int			r;
	bool		alive;

	a->proc = p;
	a->huge_step = Max(huge_step, (uint64) 2 * 1024 * 1024);
	a->pages = pages;
	if (!ptbm_proc_open(p))
		return false;
	r = kmem_walk(p->pagemap, start, end, 1, KMEM_PRESENT, w, numa_run, a);
	alive = ptbm_proc_close(p, r, errno);
	if (alive && !a->gone)
		numa_flush(a);
	alive = alive && !a->gone;
	pfree(a);
	return alive;
}

#define PTBM_NUMA_COLS 6

static void
numa_rows(ReturnSetInfo *rsinfo, const PtbmProc *p, const char *area, const uint64 *pages)
{
	for (int n = 0; n <= PTBM_NUMA_MAX_NODES; n++)
	{
		Datum		values[PTBM_NUMA_COLS];
		bool		nulls[PTBM_NUMA_COLS] = {0};

		if (pages[n] == 0)
			continue;
		values[0] = Int32GetDatum(p->pid);
		values[1] = CStringGetTextDatum(p->backend_type ? p->backend_type : "unknown");
		values[2] = CStringGetTextDatum(area);
		values[3] = Int32GetDatum(n);
		nulls[3] = n == PTBM_NUMA_MAX_NODES;
		values[4] = Int64GetDatum((int64) pages[n]);
		values[5] = Int64GetDatum((int64) (pages[n] * kmem_page_size()));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * ptbm_numa_nodes() returns (pid, backend_type, area, node, pages, bytes):
 * one row per process, area ('region', 'segment') and node that has
 * present pages there; pages in base pages.
 */
Datum
ptbm_numa_nodes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PtbmProc   *procs;
	int			nprocs;
	kmem_work	w;
	PtbmSegment seg;
	kmem_vma	vma;
	uint64		seg_page = kmem_page_size();
	uint64	   *region = palloc((PTBM_NUMA_MAX_NODES + 1) * sizeof(uint64));
	uint64	   *segment = palloc((PTBM_NUMA_MAX_NODES + 1) * sizeof(uint64));

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	ptbm_shmem_locate(&seg);
	if (kmem_smaps_range(0, seg.start, seg.end, &vma) > 0 && vma.kb[KSM_KERNEL_PAGE_SIZE] > 0)
		seg_page = vma.kb[KSM_KERNEL_PAGE_SIZE] * 1024;
	procs = ptbm_procs(&nprocs);
	ptbm_walk_work(&w, PTBM_NUMA_WALK_CHUNK, false);

	for (int p = 0; p < nprocs; p++)
	{
		CHECK_FOR_INTERRUPTS();
		memset(region, 0, (PTBM_NUMA_MAX_NODES + 1) * sizeof(uint64));
		memset(segment, 0, (PTBM_NUMA_MAX_NODES + 1) * sizeof(uint64));
		if (!numa_walk(&procs[p], ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages),
					   ptbm_region.page_size, &w, region) ||
			!numa_walk(&procs[p], seg.start, seg.end, seg_page, &w, segment))
			continue;			/* exited meanwhile */
		numa_rows(rsinfo, &procs[p], "region", region);
		numa_rows(rsinfo, &procs[p], "segment", segment);
	}
	return (Datum) 0;
}
