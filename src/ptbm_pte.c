/*-------------------------------------------------------------------------
 *
 * ptbm_pte.c
 *	  SQL functions: the region, and one process's page-table entries for
 *	  it, page by page (ptbm_region, ptbm_pte).
 *
 * Reporting functions read /proc and never touch the region, so what they
 * report is what the inspected process itself did; the NUMA node of a
 * present page comes from move_pages on the inspected process, which reads
 * its page table and faults nothing in.  Each answer is a
 * snapshot taken chunk by chunk, not an atomic picture: another process
 * may fault or evict pages while a scan goes on.  No lock is taken.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_pte.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "kmem.h"
#include "ptbm_ledger.h"
#include "ptbm_proc.h"
#include "ptbm_region.h"
#include "ptbm_writes.h"

/* pages per chunk of ptbm_pte, between interrupt checks */
#define PTBM_PTE_CHUNK	8192

PG_FUNCTION_INFO_V1(ptbm_region_info);
PG_FUNCTION_INFO_V1(ptbm_pte);

/* ---- ptbm_region() -------------------------------------------------------- */

#define PTBM_REGION_COLS 19

/* VmFlags ("rd wr sh ...") as a text array */
static Datum
ptbm_vmflags_array(const char *vmflags)
{
	ArrayBuildState *astate = NULL;
	char	   *flags = pstrdup(vmflags);
	char	   *save;

	for (char *tok = strtok_r(flags, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		astate = accumArrayResult(astate, CStringGetTextDatum(tok), false,
								  TEXTOID, CurrentMemoryContext);
	if (astate == NULL)
		return PointerGetDatum(construct_empty_array(TEXTOID));
	return makeArrayResult(astate, CurrentMemoryContext);
}

/*
 * ptbm_region() returns the region, its backing object as this process maps
 * it (smaps), and what this kernel lets ptbm see.
 */
Datum
ptbm_region_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[PTBM_REGION_COLS];
	bool		nulls[PTBM_REGION_COLS] = {0};
	kmem_vma	vma;
	const kmem_caps *caps = kmem_get_caps();
	PtbmTracking tracking = ptbm_tracking_available();
	int			nvmas;
	int			i = 0;

	ptbm_require_region();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	nvmas = kmem_smaps_range(0, ptbm_page_addr(0), ptbm_page_addr(ptbm_region.pages), &vma);
	if (nvmas < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read /proc/self/smaps: %m")));

	values[i++] = CStringGetTextDatum(ptbm_addr_text(ptbm_page_addr(0)));
	values[i++] = Int64GetDatum((int64) ptbm_region.size);
	values[i++] = Int32GetDatum((int32) ptbm_region.page_size);
	values[i++] = Int64GetDatum(ptbm_region.pages);
	values[i++] = CStringGetTextDatum(ptbm_kind_name(ptbm_region.kind));
	/* the backing object, as the kernel names it in maps */
	if (nvmas > 0 && vma.path[0] != '\0')
		values[i] = CStringGetTextDatum(vma.path);
	else
		nulls[i] = true;
	i++;
	if (nvmas > 0 && vma.inode != 0)
		values[i] = Int64GetDatum((int64) vma.inode);
	else
		nulls[i] = true;
	i++;
	if (nvmas > 0)
		values[i] = ptbm_vmflags_array(vma.vmflags);
	else
		nulls[i] = true;
	i++;
	values[i++] = Int32GetDatum(nvmas);
	values[i++] = Int32GetDatum(ptbm_region.generation);
	values[i++] = BoolGetDatum(caps->pagemap_scan);
	values[i++] = BoolGetDatum(caps->soft_dirty);
	values[i++] = BoolGetDatum(caps->frames_visible);
	values[i++] = CStringGetTextDatum(ptbm_huge_name(ptbm_region.huge));
	/* what the kernel did: its page size for the VMA, and huge mappings */
	values[i] = Int32GetDatum((int32) vma.kb[KSM_KERNEL_PAGE_SIZE] * 1024);
	nulls[i++] = nvmas == 0;
	values[i] = Int64GetDatum((int64) (vma.kb[KSM_SHMEM_PMD] + vma.kb[KSM_FILE_PMD] +
									   vma.kb[KSM_ANON_HUGE] + vma.kb[KSM_SHARED_HUGETLB] +
									   vma.kb[KSM_PRIVATE_HUGETLB]) * 1024);
	nulls[i++] = nvmas == 0;
	values[i++] = BoolGetDatum(ptbm_region.pt_sharing);
	values[i++] = Int64GetDatum(ptbm_ledger_granule);
	if (tracking != PTBM_TRACK_NONE)
		values[i] = CStringGetTextDatum(ptbm_tracking_name(tracking));
	else
		nulls[i] = true;
	i++;
	Assert(i == PTBM_REGION_COLS);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- ptbm_pte() ------------------------------------------------------------ */

/* ptbm_pte's columns */
enum
{
	PTE_PAGE, PTE_ADDRESS, PTE_PRESENT, PTE_SWAPPED, PTE_SHARED, PTE_EXCLUSIVE,
	PTE_SOFT_DIRTY, PTE_ZERO_PAGE, PTE_HUGE, PTE_PFN, PTE_MAPCOUNT, PTE_FLAGS,
	PTE_TOUCHED, PTE_VIA, PTE_WRITTEN,
	PTE_NUMA_NODE,				/* since 1.5: a database still on 1.4 lacks it */
	PTBM_PTE_COLS
};

/* how a present page came into the page table (ptbm_via) */
typedef enum PtbmVia
{
	VIA_OWN, VIA_SHARED_PT, VIA_HUGE, VIA_FAULT_AROUND, VIA_OTHER,
	PTBM_VIA_NAMES
} PtbmVia;

static const char *const ptbm_via_names[PTBM_VIA_NAMES] = {
	"own access", "shared page table", "huge mapping", "fault-around", "other"
};

/* What the rows of one ptbm_pte call need, and the frames' buffers. */
typedef struct PteRows
{
	ReturnSetInfo *rsinfo;
	PtbmProc	proc;
	bool		frames;			/* the caller may see frame numbers */
	int			kcount_fd;		/* /proc/kpagecount, or -1 */
	int			kflags_fd;		/* /proc/kpageflags, or -1 */
	uint64	   *pfns;
	uint64	   *mapcounts;
	uint64	   *kflags;
	bool		soft_dirty;		/* the kernel tracks soft-dirty */
	bool		swap_possible;
	const uint8 *ledger;		/* pages it touched itself (one page a bit), or NULL */
	bool		numa;			/* the column exists and the kernel has nodes */
	uint64	   *addrs;			/* the present pages of a chunk, */
	int		   *nodes;			/* their nodes, */
	int		   *node_of;		/* and per page of the chunk (KMEM_NODE_NONE) */
	Datum		via[PTBM_VIA_NAMES];
	MemoryContext rowctx;		/* reset after every chunk */
} PteRows;

/*
 * Said once: a non-present, write-protected entry of a private region on a
 * machine with swap is a swap entry or a uffd-wp marker, and only the swap
 * type, which the kernel hides with frame numbers, tells which.
 */
static void
ptbm_swap_hidden_notice(void)
{
	static bool said = false;

	if (!said)
		ereport(NOTICE,
				(errmsg("swapped is NULL for pages that are swapped out or only write-protected"),
				 errdetail("The kernel shows the swap type that tells them apart only to processes with CAP_SYS_ADMIN.")));
	said = true;
}

static bool
ptbm_soft_dirty_supported(void)
{
	static bool said = false;

	if (kmem_get_caps()->soft_dirty)
		return true;
	if (!said)
		ereport(NOTICE,
				(errmsg("this kernel does not track soft-dirty pages"),
				 errdetail("soft_dirty is NULL: the kernel was built without CONFIG_MEM_SOFT_DIRTY.")));
	said = true;
	return false;
}

/*
 * The "via" values as datums of the column's type: the enum ptbm_via since
 * version 1.1, text in 1.0, which a database keeps until ALTER EXTENSION
 * ptbm UPDATE.
 */
static void
ptbm_via_datums(Oid type, Datum *via)
{
	for (int k = 0; k < PTBM_VIA_NAMES; k++)
	{
		if (type == TEXTOID)
			via[k] = CStringGetTextDatum(ptbm_via_names[k]);
		else
			via[k] = DirectFunctionCall2(enum_in, CStringGetDatum(ptbm_via_names[k]),
										 ObjectIdGetDatum(type));
	}
}

/* The kernel's page flags as a text array. */
static Datum
ptbm_kpf_array(uint64 flags)
{
	const char *names[64];
	Datum		d[64];
	int			n = kmem_kpf_decode(flags, names, 64);

	for (int j = 0; j < n; j++)
		d[j] = CStringGetTextDatum(names[j]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* How a present page came into its table, as far as ptbm can tell. */
static PtbmVia
ptbm_via_of(bool touched, uint16 cats, uint64 ent)
{
	if (touched)
		return VIA_OWN;
	if (ptbm_region.pt_sharing)
		return VIA_SHARED_PT;
	if (cats & PAGE_IS_HUGE)
		return VIA_HUGE;
	if (ent & PM_FILE)
		return VIA_FAULT_AROUND;
	return VIA_OTHER;
}

/* One row per page of a chunk (a sink of kmem_walk). */
static int
ptbm_pte_rows(void *arg, const kmem_chunk *c)
{
	PteRows    *r = arg;
	int64		first = (c->addr - ptbm_page_addr(0)) / ptbm_region.page_size;
	MemoryContext oldctx;

	if (r->frames && c->mapped)
	{
		for (size_t k = 0; k < c->npages; k++)
			r->pfns[k] = kmem_pfn(c->ents[k]);
		if (r->kcount_fd >= 0)
			(void) kmem_kpage_read(r->kcount_fd, r->pfns, c->npages, r->mapcounts);
		if (r->kflags_fd >= 0)
			(void) kmem_kpage_read(r->kflags_fd, r->pfns, c->npages, r->kflags);
	}
	if (r->numa)
	{
		size_t		n = 0;

		for (size_t k = 0; k < c->npages; k++)
		{
			r->node_of[k] = KMEM_NODE_NONE;
			if (c->mapped && (c->ents[k] & PM_PRESENT))
				r->addrs[n++] = c->addr + k * c->page_size;
		}
		if (n > 0 && ptbm_proc_nodes(&r->proc, r->addrs, n, r->nodes))
		{
			n = 0;
			for (size_t k = 0; k < c->npages; k++)
				if (c->ents[k] & PM_PRESENT)
					r->node_of[k] = r->nodes[n++];
		}
	}

	oldctx = MemoryContextSwitchTo(r->rowctx);
	for (size_t k = 0; k < c->npages; k++)
	{
		Datum		values[PTBM_PTE_COLS];
		bool		nulls[PTBM_PTE_COLS] = {0};
		int64		page = first + k;
		uint64		e = c->ents[k];
		uint16		cats = c->cats ? c->cats[k] : 0;
		bool		present = (e & PM_PRESENT) != 0;
		kmem_ent_kind kind = kmem_ent_decode(e, r->swap_possible);
		bool		frame = r->frames && present && kmem_pfn(e) != 0;

		values[PTE_PAGE] = Int64GetDatum(page);
		values[PTE_ADDRESS] = CStringGetTextDatum(ptbm_addr_text(c->addr + k * c->page_size));
		values[PTE_PRESENT] = BoolGetDatum(present);
		/* a PTE marker is not a swapped page; kmem decides */
		values[PTE_SWAPPED] = BoolGetDatum(kind == KMEM_ENT_SWAPPED);
		nulls[PTE_SWAPPED] = kind == KMEM_ENT_SWAP_OR_MARKER;
		if (kind == KMEM_ENT_SWAP_OR_MARKER)
			ptbm_swap_hidden_notice();
		values[PTE_SHARED] = BoolGetDatum((e & PM_FILE) != 0);
		values[PTE_EXCLUSIVE] = BoolGetDatum((e & PM_MMAP_EXCLUSIVE) != 0);
		values[PTE_SOFT_DIRTY] = BoolGetDatum((e & PM_SOFT_DIRTY) != 0);
		nulls[PTE_SOFT_DIRTY] = !r->soft_dirty;
		/* from PAGEMAP_SCAN only */
		values[PTE_ZERO_PAGE] = BoolGetDatum((cats & PAGE_IS_PFNZERO) != 0);
		nulls[PTE_ZERO_PAGE] = c->cats == NULL;
		values[PTE_HUGE] = BoolGetDatum((cats & PAGE_IS_HUGE) != 0);
		nulls[PTE_HUGE] = c->cats == NULL;
		/* frame, its mapcount and flags: present pages, frames visible */
		values[PTE_PFN] = Int64GetDatum((int64) kmem_pfn(e));
		nulls[PTE_PFN] = !frame;
		values[PTE_MAPCOUNT] = Int64GetDatum(frame ? (int64) r->mapcounts[k] : 0);
		nulls[PTE_MAPCOUNT] = !frame || r->kcount_fd < 0;
		nulls[PTE_FLAGS] = !frame || r->kflags_fd < 0;
		values[PTE_FLAGS] = nulls[PTE_FLAGS] ? (Datum) 0 : ptbm_kpf_array(r->kflags[k]);
		/* did this process access the page itself (through ptbm)? */
		nulls[PTE_TOUCHED] = r->ledger == NULL;
		values[PTE_TOUCHED] = BoolGetDatum(r->ledger &&
										   ((r->ledger[page >> 3] >> (page & 7)) & 1));
		nulls[PTE_VIA] = !present || r->ledger == NULL;
		values[PTE_VIA] = nulls[PTE_VIA] ? (Datum) 0 :
			r->via[ptbm_via_of(DatumGetBool(values[PTE_TOUCHED]), cats, e)];
		/* written since tracking started or was reset: tracked processes */
		nulls[PTE_WRITTEN] = r->proc.tracking == PTBM_TRACK_NONE;
		values[PTE_WRITTEN] = BoolGetDatum(ptbm_entry_written(r->proc.tracking, e));
		/* where the frame is: present pages whose node the kernel tells */
		values[PTE_NUMA_NODE] = Int32GetDatum(r->numa ? r->node_of[k] : 0);
		nulls[PTE_NUMA_NODE] = !r->numa || r->node_of[k] < 0;
		tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(oldctx);
	MemoryContextReset(r->rowctx);
	return 0;
}

/*
 * ptbm_pte(pid integer, first_page bigint, page_count bigint) returns one
 * row per page of the range as the page table of process pid holds it.
 * Rows are built a chunk at a time; the tuplestore keeps its own copies
 * (and spills to disk past work_mem), so memory stays bounded over any
 * range.
 */
Datum
ptbm_pte(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PteRows		r = {0};
	kmem_work	w;
	int64		first;
	int64		count;
	int			rc;

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);

	/* NULL pid or first page: no rows; NULL count: to the end */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	count = ptbm_region_range_args(fcinfo, 1, &first);
	ptbm_proc_resolve(PG_GETARG_INT32(0), &r.proc);

	r.rsinfo = rsinfo;
	r.frames = ptbm_frames_for_caller();
	r.soft_dirty = ptbm_soft_dirty_supported();
	r.swap_possible = ptbm_region_swap_possible();
	/* the pages it touched itself: known per page only at one page a bit */
	r.ledger = ptbm_ledger_granule == 1 ? ptbm_ledger_bits(r.proc.backend_id) : NULL;
	r.kcount_fd = r.kflags_fd = -1;
	ptbm_via_datums(TupleDescAttr(rsinfo->setDesc, PTE_VIA)->atttypid, r.via);
	r.rowctx = AllocSetContextCreate(CurrentMemoryContext, "ptbm_pte rows",
									 ALLOCSET_DEFAULT_SIZES);

	if (!ptbm_proc_open(&r.proc))
		return (Datum) 0;		/* exited since the check: nothing to show */
	if (r.frames)
	{
		r.kcount_fd = ptbm_open_kpage("kpagecount", "mapcount");
		r.kflags_fd = ptbm_open_kpage("kpageflags", "flags");
		r.pfns = palloc(PTBM_PTE_CHUNK * sizeof(uint64));
		r.mapcounts = palloc0(PTBM_PTE_CHUNK * sizeof(uint64));
		r.kflags = palloc0(PTBM_PTE_CHUNK * sizeof(uint64));
	}
	/* numa_node: in the declaration since 1.5 */
	r.numa = rsinfo->setDesc->natts > PTE_NUMA_NODE;
	if (r.numa)
	{
		r.addrs = palloc(PTBM_PTE_CHUNK * sizeof(uint64));
		r.nodes = palloc(PTBM_PTE_CHUNK * sizeof(int));
		r.node_of = palloc(PTBM_PTE_CHUNK * sizeof(int));
	}
	ptbm_walk_work(&w, PTBM_PTE_CHUNK, true);
	w.swap_possible = r.swap_possible;

	/* every page of the range, with its entry and categories */
	rc = kmem_walk(r.proc.pagemap, ptbm_page_addr(first), ptbm_page_addr(first + count),
				   ptbm_region.base_per_page, KMEM_EVERY_PAGE | KMEM_ENTRIES | KMEM_CATEGORIES,
				   &w, ptbm_pte_rows, &r);
	/* a process that exited shows the rows up to where its entries ended */
	(void) ptbm_proc_close(&r.proc, rc, errno);

	if (r.kcount_fd >= 0)
		CloseTransientFile(r.kcount_fd);
	if (r.kflags_fd >= 0)
		CloseTransientFile(r.kflags_fd);
	return (Datum) 0;
}
