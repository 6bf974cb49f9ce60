/*-------------------------------------------------------------------------
 *
 * ptbm_shmem.c
 *	  PostgreSQL's own main shared memory segment, process by process: how
 *	  much of it, and of shared_buffers, each process of the cluster has in
 *	  its page table, and what those page tables cost.
 *
 * The main segment is a MAP_SHARED|MAP_ANONYMOUS mapping (MAP_HUGETLB when
 * huge_pages gets them) made by the postmaster before it forks, so every
 * process of the cluster has it at the same address, and each builds its
 * own page-table entries for the pages it touches.  ptbm finds it without
 * private symbols: it is the mapping of /proc/self/maps that contains
 * BufferBlocks, and shared_buffers occupy [BufferBlocks, BufferBlocks +
 * NBuffers * BLCKSZ) in it.
 *
 * Presence comes from /proc/PID/pagemap, through PAGEMAP_SCAN where the
 * kernel has it (ranges of present pages, never one entry per page), else
 * through large pagemap reads.  The pagemap is indexed by base page even
 * for hugetlb mappings: counts are in base pages, and also in pages of the
 * segment's own page size (smaps KernelPageSize).  A process that exits
 * during a call is skipped.  As in every ptbm report, the answer is a
 * sequence of snapshots, one process at a time; nothing here touches the
 * segment, and no lock is taken.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "kmem.h"
#include "ptbm_proc.h"
#include "ptbm_region.h"
#include "ptbm_shmem.h"

#define PTBM_SHMEM_ROWS_TICK 65536	/* rows between interrupt checks */
#define PTBM_SHMEM_CHUNK	65536	/* pagemap entries per read (no PAGEMAP_SCAN) */

PG_FUNCTION_INFO_V1(ptbm_shmem_segment);
PG_FUNCTION_INFO_V1(ptbm_shmem_backends);
PG_FUNCTION_INFO_V1(ptbm_buffer_ptes);

/* ---- the segment ---------------------------------------------------------- */

void
ptbm_shmem_locate(PtbmSegment *seg)
{
	uint64		ps = kmem_page_size();
	kmem_vma	vma;
	int			r;

	memset(seg, 0, sizeof(*seg));
	seg->buf_start = (uint64) (uintptr_t) BufferBlocks;
	seg->buf_end = seg->buf_start + (uint64) NBuffers * BLCKSZ;
	seg->bufpg_start = seg->buf_start / ps * ps;
	seg->bufpg_end = (seg->buf_end + ps - 1) / ps * ps;

	r = kmem_maps_lookup(0, seg->buf_start, &vma);
	if (r < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read /proc/self/maps: %m")));
	if (r == 0 || vma.end < seg->buf_end)
		elog(ERROR, "shared_buffers at %s are not inside one mapping of this process",
			 ptbm_addr_text(seg->buf_start));
	seg->start = vma.start;
	seg->end = vma.end;
	seg->inode = vma.inode;
	strlcpy(seg->path, vma.path, sizeof(seg->path));
}

/*
 * The segment as one process maps it, from its smaps.  Returns false when
 * the process has gone or does not map the segment at this address.
 */
static bool
ptbm_shmem_smaps(const PtbmProc *p, const PtbmSegment *seg, kmem_vma *vma)
{
	int			n = kmem_smaps_range(p->pid, seg->start, seg->end, vma);

	if (n < 0)
	{
		if (ptbm_proc_gone(p, errno))
			return false;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read /proc/%d/smaps: %m", p->pid)));
	}
	return n > 0 && vma->start == seg->start && vma->inode == seg->inode;
}

/* Bytes per page of the segment in a process's smaps (KernelPageSize). */
static uint64
ptbm_vma_page_size(const kmem_vma *vma)
{
	uint64		kb = vma->kb[KSM_KERNEL_PAGE_SIZE];

	return kb > 0 ? kb * 1024 : kmem_page_size();
}

/* ---- walking a process's page table over the segment ---------------------- */

/* A run of present pages [start, end); huge: mapped by one PMD or PUD entry. */
typedef void (*PtbmRangeCb) (void *arg, uint64 start, uint64 end, bool huge);

typedef struct ShmemRuns
{
	PtbmRangeCb cb;
	void	   *arg;
	bool		hugetlb;		/* without PAGEMAP_SCAN, what huge means */
} ShmemRuns;

/*
 * A sink: PAGEMAP_SCAN gives each run's categories; without it the runs
 * come from entries, which cannot tell a PMD-mapped page, and the
 * mapping's own page size says.
 */
static int
ptbm_shmem_run(void *arg, const kmem_chunk *c)
{
	ShmemRuns  *r = arg;
	bool		huge = c->ents ? r->hugetlb : (c->run_cats & PAGE_IS_HUGE) != 0;

	r->cb(r->arg, c->addr, c->addr + c->npages * c->page_size, huge);
	return 0;
}

/*
 * Calls cb for every run of pages of [start, end) present in p's page
 * table.  Returns false if the process has gone (then it is to be skipped).
 */
static bool
ptbm_shmem_walk(PtbmProc *p, uint64 start, uint64 end, bool hugetlb, kmem_work *w,
				PtbmRangeCb cb, void *arg)
{
	ShmemRuns	runs = {cb, arg, hugetlb};
	int			r;

	if (!ptbm_proc_open(p))
		return false;
	r = kmem_walk(p->pagemap, start, end, 1, KMEM_PRESENT, w, ptbm_shmem_run, &runs);
	return ptbm_proc_close(p, r, errno);
}

/*
 * How many spans of span bytes [start, end) reaches that no earlier range
 * reached; ranges come in address order, *next is the first span not yet
 * counted.
 */
static uint64
ptbm_new_spans(uint64 start, uint64 end, uint64 span, uint64 *next)
{
	uint64		first = start / span;
	uint64		last = (end - 1) / span;

	if (first < *next)
		first = *next;
	if (last < first)
		return 0;
	*next = last + 1;
	return last - first + 1;
}

/* ---- ptbm_shmem_segment() ----------------------------------------------------- */

#define PTBM_SEGMENT_COLS 10

Datum
ptbm_shmem_segment(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[PTBM_SEGMENT_COLS];
	bool		nulls[PTBM_SEGMENT_COLS] = {0};
	PtbmSegment seg;
	PtbmProc	self;
	kmem_vma	vma;
	uint64		ps = kmem_page_size();
	int			i = 0;

	ptbm_require_region();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	ptbm_shmem_locate(&seg);
	ptbm_proc_resolve(MyProcPid, &self);
	if (!ptbm_shmem_smaps(&self, &seg, &vma))
		elog(ERROR, "the main shared memory segment is missing from /proc/self/smaps");

	values[i++] = CStringGetTextDatum(ptbm_addr_text(seg.start));
	values[i++] = Int64GetDatum((int64) (seg.end - seg.start));
	if (seg.path[0] != '\0')
		values[i] = CStringGetTextDatum(seg.path);
	else
		nulls[i] = true;
	i++;
	values[i++] = Int64GetDatum((int64) ptbm_vma_page_size(&vma));
	values[i++] = Int32GetDatum((int32) ps);
	values[i++] = CStringGetTextDatum(ptbm_addr_text(seg.buf_start));
	values[i++] = Int64GetDatum((int64) (seg.buf_start - seg.start));
	values[i++] = Int64GetDatum((int64) (seg.buf_end - seg.buf_start));
	values[i++] = Int64GetDatum((int64) ((seg.bufpg_end - seg.bufpg_start) / ps));
	values[i++] = Int32GetDatum(NBuffers);
	Assert(i == PTBM_SEGMENT_COLS);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- ptbm_shmem_backends() ---------------------------------------------------- */

typedef struct PtbmShmemAcc
{
	const PtbmSegment *seg;
	uint64		unit;			/* the segment's page size, bytes */
	uint64		pte_span;		/* bytes one PTE table maps (2MB) */
	uint64		pmd_span;		/* bytes one PMD table maps (1GB) */
	uint64		present;		/* base pages */
	uint64		present_buffers;	/* of which overlap shared_buffers */
	uint64		units;			/* segment pages with a present base page */
	uint64		pte_tables;		/* PTE tables the non-huge pages need */
	uint64		pmd_tables;		/* PMD tables any present page needs */
	uint64		next_unit;
	uint64		next_pte;
	uint64		next_pmd;
} PtbmShmemAcc;

static void
ptbm_shmem_acc_range(void *arg, uint64 start, uint64 end, bool huge)
{
	PtbmShmemAcc *acc = arg;
	uint64		ps = kmem_page_size();
	uint64		a = Max(start, acc->seg->bufpg_start);
	uint64		b = Min(end, acc->seg->bufpg_end);

	acc->present += (end - start) / ps;
	if (a < b)
		acc->present_buffers += (b - a) / ps;
	acc->units += ptbm_new_spans(start, end, acc->unit, &acc->next_unit);
	if (!huge)
		acc->pte_tables += ptbm_new_spans(start, end, acc->pte_span, &acc->next_pte);
	/* a page as large as a PMD table's span is mapped from the level above */
	if (acc->unit < acc->pmd_span)
		acc->pmd_tables += ptbm_new_spans(start, end, acc->pmd_span, &acc->next_pmd);
}

static const char *
ptbm_page_kind(const kmem_vma *vma)
{
	if (ptbm_vma_page_size(vma) > kmem_page_size())
		return "hugetlb";
	if (vma->kb[KSM_SHMEM_PMD] > 0)
		return "thp";
	return "base";
}

#define PTBM_SHMEM_BACKENDS_COLS 15

Datum
ptbm_shmem_backends(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint64		ps = kmem_page_size();
	PtbmSegment seg;
	PtbmProc   *procs;
	int			nprocs;
	kmem_work	w;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	ptbm_shmem_locate(&seg);
	procs = ptbm_procs(&nprocs);
	ptbm_walk_work(&w, PTBM_SHMEM_CHUNK, false);

	for (int p = 0; p < nprocs; p++)
	{
		Datum		values[PTBM_SHMEM_BACKENDS_COLS];
		bool		nulls[PTBM_SHMEM_BACKENDS_COLS] = {0};
		PtbmShmemAcc acc;
		kmem_vma	vma;
		uint64		pte_kb = 0;
		int			i = 0;

		CHECK_FOR_INTERRUPTS();
		if (!ptbm_proc_alive(&procs[p]) || !ptbm_shmem_smaps(&procs[p], &seg, &vma))
			continue;			/* exited, or maps something else there */

		memset(&acc, 0, sizeof(acc));
		acc.seg = &seg;
		acc.unit = ptbm_vma_page_size(&vma);
		/* 64-bit page tables: a table page holds ps / 8 entries */
		acc.pte_span = ps * (ps / sizeof(uint64));
		acc.pmd_span = acc.pte_span * (ps / sizeof(uint64));
		if (!ptbm_shmem_walk(&procs[p], seg.start, seg.end, acc.unit > ps, &w,
							 ptbm_shmem_acc_range, &acc))
			continue;
		if (kmem_status_kb(procs[p].pid, "VmPTE", &pte_kb) <= 0)
			continue;			/* exited meanwhile */

		values[i++] = Int32GetDatum(procs[p].pid);
		values[i++] = CStringGetTextDatum(procs[p].backend_type);
		if (procs[p].state)
			values[i] = CStringGetTextDatum(procs[p].state);
		else
			nulls[i] = true;
		i++;
		if (procs[p].appname)
			values[i] = CStringGetTextDatum(procs[p].appname);
		else
			nulls[i] = true;
		i++;
		values[i++] = Int64GetDatum((int64) (seg.end - seg.start));
		values[i++] = Int64GetDatum((int64) acc.unit);
		values[i++] = CStringGetTextDatum(ptbm_page_kind(&vma));
		values[i++] = Int64GetDatum((int64) acc.present);
		values[i++] = Int64GetDatum((int64) acc.present_buffers);
		values[i++] = Int64GetDatum((int64) acc.units);
		values[i++] = Int64GetDatum((int64) vma.kb[KSM_RSS] * 1024);
		values[i++] = Int64GetDatum((int64) vma.kb[KSM_PSS] * 1024);
		values[i++] = Int64GetDatum((int64) (vma.kb[KSM_SHARED_HUGETLB] +
											 vma.kb[KSM_PRIVATE_HUGETLB]) * 1024);
		values[i++] = Int64GetDatum((int64) ((acc.pte_tables + acc.pmd_tables) * ps));
		values[i++] = Int64GetDatum((int64) pte_kb * 1024);
		Assert(i == PTBM_SHMEM_BACKENDS_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---- ptbm_buffer_ptes() ------------------------------------------------------- */

typedef struct PtbmBufAcc
{
	const PtbmSegment *seg;
	int32	   *present;		/* per buffer: present base pages */
	int32	   *processes;		/* per buffer: processes with one present */
	int64		last_marked;	/* last buffer counted for this process */
	/* numa_node (since 1.5): the node of a present page of each buffer */
	int16	   *node;			/* per buffer, or NULL; -1 until known */
	const PtbmProc *proc;		/* the process walked */
	int			pending;		/* buffers whose node is asked next */
	int64		pending_buf[KMEM_NODES_CHUNK];
	uint64		pending_addr[KMEM_NODES_CHUNK];
} PtbmBufAcc;

/* Asks the nodes of the pending buffers' pages in one call. */
static void
ptbm_buf_nodes_flush(PtbmBufAcc *acc)
{
	int			nodes[KMEM_NODES_CHUNK];

	if (acc->pending > 0 &&
		ptbm_proc_nodes(acc->proc, acc->pending_addr, acc->pending, nodes))
		for (int i = 0; i < acc->pending; i++)
			if (nodes[i] >= 0)
				acc->node[acc->pending_buf[i]] = (int16) nodes[i];
	acc->pending = 0;
}

/* first and end (exclusive) base page numbers of buffer b (0-based) */
static inline void
ptbm_buffer_pages(const PtbmSegment *seg, int64 b, uint64 *first, uint64 *end)
{
	uint64		ps = kmem_page_size();

	*first = (seg->buf_start + (uint64) b * BLCKSZ) / ps;
	*end = (seg->buf_start + (uint64) (b + 1) * BLCKSZ + ps - 1) / ps;
}

static void
ptbm_buf_acc_range(void *arg, uint64 start, uint64 end, bool huge)
{
	PtbmBufAcc *acc = arg;
	const PtbmSegment *seg = acc->seg;
	uint64		ps = kmem_page_size();
	uint64		a = Max(start, seg->bufpg_start);
	uint64		z = Min(end, seg->bufpg_end);
	uint64		p1,
				p2;
	int64		bfirst,
				blast;

	if (a >= z)
		return;
	p1 = a / ps;
	p2 = z / ps;
	/* the buffers whose bytes these pages hold */
	bfirst = a <= seg->buf_start ? 0 : (int64) ((a - seg->buf_start) / BLCKSZ);
	blast = z - 1 >= seg->buf_end ? NBuffers - 1 :
		(int64) ((z - 1 - seg->buf_start) / BLCKSZ);
	for (int64 b = bfirst; b <= blast; b++)
	{
		uint64		pb0,
					pb1;
		int64		overlap;

		ptbm_buffer_pages(seg, b, &pb0, &pb1);
		overlap = (int64) Min(pb1, p2) - (int64) Max(pb0, p1);
		if (overlap <= 0)
			continue;
		acc->present[b] += (int32) overlap;
		if (b > acc->last_marked)
		{
			acc->processes[b]++;
			acc->last_marked = b;
			/* the node of its first page present here, unless known */
			if (acc->node && acc->node[b] < 0)
			{
				acc->pending_buf[acc->pending] = b;
				acc->pending_addr[acc->pending] = Max(pb0, p1) * ps;
				if (++acc->pending == KMEM_NODES_CHUNK)
					ptbm_buf_nodes_flush(acc);
			}
		}
	}
}

#define PTBM_BUFFER_PTES_COLS 5	/* numa_node since 1.5 */

Datum
ptbm_buffer_ptes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PtbmSegment seg;
	PtbmProc   *procs;
	int			nprocs;
	bool		one = !PG_ARGISNULL(0);
	kmem_work	w;
	PtbmBufAcc	acc;
	bool		hugetlb;
	kmem_vma	vma;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);
	ptbm_shmem_locate(&seg);

	if (one)
	{
		procs = palloc0(sizeof(PtbmProc));
		ptbm_proc_resolve(PG_GETARG_INT32(0), &procs[0]);
		nprocs = 1;
	}
	else
		procs = ptbm_procs(&nprocs);

	{
		PtbmProc	self;

		ptbm_proc_resolve(MyProcPid, &self);
		if (!ptbm_shmem_smaps(&self, &seg, &vma))
			elog(ERROR, "the main shared memory segment is missing from /proc/self/smaps");
	}
	hugetlb = ptbm_vma_page_size(&vma) > kmem_page_size();

	ptbm_walk_work(&w, PTBM_SHMEM_CHUNK, false);
	acc.seg = &seg;
	acc.present = palloc_extended((Size) NBuffers * sizeof(int32),
								  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	acc.processes = palloc_extended((Size) NBuffers * sizeof(int32),
									MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	acc.node = NULL;
	acc.pending = 0;
	if (rsinfo->setDesc->natts >= PTBM_BUFFER_PTES_COLS)
	{
		acc.node = palloc_extended((Size) NBuffers * sizeof(int16), MCXT_ALLOC_HUGE);
		memset(acc.node, -1, (Size) NBuffers * sizeof(int16));
	}

	for (int p = 0; p < nprocs; p++)
	{
		CHECK_FOR_INTERRUPTS();
		acc.last_marked = -1;
		acc.proc = &procs[p];
		if (!ptbm_shmem_walk(&procs[p], seg.bufpg_start, seg.bufpg_end, hugetlb,
							 &w, ptbm_buf_acc_range, &acc))
		{
			acc.pending = 0;
			/* one process asked for, and it has gone: nothing to show */
			if (one)
				return (Datum) 0;
			continue;
		}
		if (acc.node)
			ptbm_buf_nodes_flush(&acc);
	}
	/* a process that exits during the walk leaves an empty page table */
	if (one && kill(procs[0].pid, 0) != 0 && errno == ESRCH)
		return (Datum) 0;

	for (int64 b = 0; b < NBuffers; b++)
	{
		Datum		values[PTBM_BUFFER_PTES_COLS];
		bool		nulls[PTBM_BUFFER_PTES_COLS] = {0};
		uint64		pb0,
					pb1;

		if ((b % PTBM_SHMEM_ROWS_TICK) == 0)
			CHECK_FOR_INTERRUPTS();
		ptbm_buffer_pages(&seg, b, &pb0, &pb1);
		values[0] = Int32GetDatum((int32) (b + 1));
		values[1] = Int32GetDatum((int32) (pb1 - pb0));
		values[2] = Int32GetDatum(acc.present[b]);
		values[3] = Int32GetDatum(acc.processes[b]);
		values[4] = Int32GetDatum(acc.node ? acc.node[b] : 0);
		nulls[4] = acc.node == NULL || acc.node[b] < 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
