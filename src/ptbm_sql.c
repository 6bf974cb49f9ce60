/*-------------------------------------------------------------------------
 *
 * ptbm_sql.c
 *	  SQL functions of ptbm: the region, one process's page-table entries
 *	  for it, and touching, reading and writing its pages.
 *
 * Reporting functions read /proc and never touch the region, so what they
 * report is what the inspected process itself did.  Each answer is a
 * snapshot taken page run by page run, not an atomic picture: another
 * process may fault or evict pages while a scan goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>
#include <time.h>

#include "catalog/pg_authid_d.h"
#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "portability/instr_time.h"
#include "storage/backendid.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "kmem.h"
#include "ptbm.h"
#include "ptbm_rows.h"

/* pages per pagemap read and per interrupt check in row-producing scans */
#define PTBM_CHUNK_PAGES	8192
/* ranges per PAGEMAP_SCAN call */
#define PTBM_SCAN_VEC		512

PG_FUNCTION_INFO_V1(ptbm_region_info);
PG_FUNCTION_INFO_V1(ptbm_pte);
PG_FUNCTION_INFO_V1(ptbm_touch);
PG_FUNCTION_INFO_V1(ptbm_write);
PG_FUNCTION_INFO_V1(ptbm_read);

/* ---- argument checks ---------------------------------------------------- */

/*
 * Checks [first, first + count) against the region; a NULL count means "to
 * the end of the region".  Returns the count.
 */
int64
ptbm_check_range(int64 first, int64 count, bool count_is_null)
{
	if (first < 0 || first >= ptbm_region.pages)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page %lld is outside the ptbm region", (long long) first),
				 errdetail("The region has %lld pages, numbered from 0 to %lld.",
						   (long long) ptbm_region.pages,
						   (long long) ptbm_region.pages - 1)));
	if (count_is_null)
		return ptbm_region.pages - first;
	if (count < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page count must not be negative")));
	/* written so that it cannot overflow: first < pages here */
	if (count > ptbm_region.pages - first)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pages %lld to %lld reach past the end of the ptbm region",
						(long long) first,
						(count > PG_INT64_MAX - first) ? PG_INT64_MAX : (long long) (first + count - 1)),
				 errdetail("The region has %lld pages, numbered from 0 to %lld.",
						   (long long) ptbm_region.pages,
						   (long long) ptbm_region.pages - 1),
				 errhint("Pass a NULL page count to go to the end of the region.")));
	return count;
}

/*
 * Reads a (first_page, page_count) argument pair starting at argument argno,
 * the first not NULL, and checks it; returns the count.
 */
int64
ptbm_range_args(FunctionCallInfo fcinfo, int argno, int64 *first)
{
	*first = PG_GETARG_INT64(argno);
	return ptbm_check_range(*first,
							PG_ARGISNULL(argno + 1) ? 0 : PG_GETARG_INT64(argno + 1),
							PG_ARGISNULL(argno + 1));
}

/* Checks that [offset, offset + len) lies within one page. */
static void
ptbm_check_in_page(int64 page, int64 offset, int64 len)
{
	(void) ptbm_check_range(page, 1, false);
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

/*
 * Only processes of this cluster may be inspected: the postmaster and every
 * process with a PGPROC (backends, background workers, auxiliary processes).
 * Checked before any /proc file of the pid is opened.
 */
bool
ptbm_is_cluster_pid(int pid)
{
	if (pid == PostmasterPid || pid == MyProcPid)
		return true;
	return pid > 0 && (BackendPidGetProc(pid) != NULL || AuxiliaryPidGetProc(pid) != NULL);
}

void
ptbm_check_pid(int pid)
{
	if (ptbm_is_cluster_pid(pid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("process %d is not a process of this cluster", pid),
			 errhint("Use the pid of the postmaster, a backend or an auxiliary process, as listed in pg_stat_activity.")));
}

/*
 * Whether a failed /proc access means the process has gone (or is exiting:
 * the kernel then makes its /proc files root's and its status has no
 * memory lines).  A process that is gone is skipped, not an error.
 */
bool
ptbm_proc_gone(int pid, int err)
{
	uint64		kb;

	if (err == ENOENT || err == ESRCH)
		return true;
	return err == EACCES && kmem_status_kb(pid, "VmPTE", &kb) <= 0;
}

/* The BackendId of a process of the cluster; InvalidBackendId if none. */
int
ptbm_backend_id(int pid)
{
	PGPROC	   *proc;

	if (pid == MyProcPid)
		return MyBackendId;
	proc = BackendPidGetProc(pid);
	return proc ? proc->backendId : InvalidBackendId;
}

/* ---- what the caller may see ------------------------------------------ */

/*
 * Frame numbers and kernel page flags help physical-memory attacks; they
 * are shown only to superusers and members of pg_read_server_files, and
 * only if the kernel shows them to the server at all (CAP_SYS_ADMIN).
 */
bool
ptbm_frames_for_caller(void)
{
	static bool said_kernel = false;
	static bool said_role = false;

	if (!kmem_get_caps()->frames_visible)
	{
		if (!said_kernel)
			ereport(NOTICE,
					(errmsg("frame numbers are hidden from the server"),
					 errdetail("The kernel shows frame numbers only to processes with CAP_SYS_ADMIN; pfn, mapcount and flags are NULL.")));
		said_kernel = true;
		return false;
	}
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
	{
		if (!said_role)
			ereport(NOTICE,
					(errmsg("frame numbers are shown only to superusers and members of pg_read_server_files"),
					 errdetail("pfn, mapcount and flags are NULL.")));
		said_role = true;
		return false;
	}
	return true;
}

/*
 * Opens /proc/kpagecount or /proc/kpageflags for a caller who may see
 * frames.  They are root's files (mode 0400): a server that sees frame
 * numbers through CAP_SYS_ADMIN alone cannot open them.  Then -1, and a
 * notice once per backend saying which column stays NULL.
 */
int
ptbm_open_kpage(const char *file, const char *column)
{
	static bool said_count = false;
	static bool said_flags = false;
	bool	   *said = strcmp(file, "kpagecount") == 0 ? &said_count : &said_flags;
	char		path[32];
	int			fd;

	snprintf(path, sizeof(path), "/proc/%s", file);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0 && !*said)
	{
		ereport(NOTICE,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path),
				 errdetail("Column %s is NULL.", column),
				 errhint("The file is readable by root only: a server that sees frame numbers through CAP_SYS_ADMIN also needs CAP_DAC_READ_SEARCH to read it.")));
		*said = true;
	}
	return fd;
}

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

/* "0x..." of an address into buf (18 bytes or more); returns its length */
static inline int
ptbm_addr_format(uint64 addr, char *buf)
{
	int			digits = addr ? (pg_leftmost_one_pos64(addr) >> 2) + 1 : 1;

	buf[0] = '0';
	buf[1] = 'x';
	for (int k = digits + 1; k >= 2; k--)
	{
		buf[k] = "0123456789abcdef"[addr & 0xf];
		addr >>= 4;
	}
	return digits + 2;
}

/*
 * The same for addr when buf holds the text of prev, len bytes (the row
 * before's; len 0: nothing yet): only the digits that differ are written
 * again, one or two from one page to the next.
 */
static inline int
ptbm_addr_format_next(uint64 addr, uint64 prev, char *buf, int len)
{
	int			low;

	if (len > 0 && addr == prev)
		return len;
	if (addr == 0 || (pg_leftmost_one_pos64(addr) >> 2) + 3 != len)
		return ptbm_addr_format(addr, buf);
	low = (pg_leftmost_one_pos64(addr ^ prev) >> 2) + 1;
	for (int k = len - 1; k >= len - low; k--)
	{
		buf[k] = "0123456789abcdef"[addr & 0xf];
		addr >>= 4;
	}
	return len;
}

char *
ptbm_addr_text(uint64 addr)
{
	return psprintf("0x%llx", (unsigned long long) addr);
}

/* Opens a /proc file as a transient file (closed on error); -1 on failure. */
int
ptbm_open_proc(int pid, const char *what)
{
	char		path[64];

	/*
	 * The pids of a report come from this transaction's snapshot of backend
	 * status, which may be old: a pid that has left the cluster (and may
	 * belong to another process by now) is gone for ptbm.
	 */
	if (!ptbm_is_cluster_pid(pid))
	{
		errno = ESRCH;
		return -1;
	}

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	return OpenTransientFile(path, O_RDONLY | PG_BINARY);
}

/*
 * Opens the page table (pagemap) of a process of the cluster.  Returns -1
 * if the process has gone or is exiting (it is then skipped); any other
 * failure is an error.
 */
int
ptbm_open_pagemap(int pid)
{
	int			fd = ptbm_open_proc(pid, "pagemap");

	if (fd < 0 && !ptbm_proc_gone(pid, errno))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open the page table of process %d: %m", pid)));
	return fd < 0 ? -1 : fd;
}

/*
 * Closes a pagemap after a walk that returned r (errno err).  Returns false
 * if the walk failed because the process went away; any other failure is
 * an error.
 */
bool
ptbm_close_pagemap(int fd, int pid, int r, int err)
{
	CloseTransientFile(fd);
	if (r >= 0)
		return true;
	if (ptbm_proc_gone(pid, err) || kill(pid, 0) != 0)
		return false;
	errno = err;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not read the page table of process %d: %m", pid)));
	return false;
}

/* ---- ptbm_region() -------------------------------------------------------- */

#define PTBM_REGION_COLS 19

Datum
ptbm_region_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[PTBM_REGION_COLS];
	bool		nulls[PTBM_REGION_COLS] = {0};
	kmem_vma	vma;
	const kmem_caps *caps = kmem_get_caps();
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
	/* backing object, as the kernel names it in maps */
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
	{
		/* VmFlags: two-letter codes separated by spaces */
		ArrayBuildState *astate = NULL;
		char	   *flags = pstrdup(vma.vmflags);
		char	   *tok;
		char	   *save;

		for (tok = strtok_r(flags, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
			astate = accumArrayResult(astate, CStringGetTextDatum(tok), false,
									  TEXTOID, CurrentMemoryContext);
		if (astate)
			values[i] = makeArrayResult(astate, CurrentMemoryContext);
		else
			values[i] = PointerGetDatum(construct_empty_array(TEXTOID));
	}
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
	nulls[i++] = nvmas <= 0;
	values[i] = Int64GetDatum((int64) (vma.kb[KSM_SHMEM_PMD] + vma.kb[KSM_FILE_PMD] +
									   vma.kb[KSM_ANON_HUGE] + vma.kb[KSM_SHARED_HUGETLB] +
									   vma.kb[KSM_PRIVATE_HUGETLB]) * 1024);
	nulls[i++] = nvmas <= 0;
	values[i++] = BoolGetDatum(ptbm_region.pt_sharing);
	values[i++] = Int64GetDatum(ptbm_ledger_granule);
	if (ptbm_tracking_available() != PTBM_TRACK_NONE)
		values[i] = CStringGetTextDatum(ptbm_tracking_name(ptbm_tracking_available()));
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
	PTBM_PTE_COLS
};

/* Per-page PAGEMAP_SCAN categories of one chunk; false if nothing mapped. */
static bool
ptbm_chunk_categories(int fd, uint64 addr, int64 n, uint16 *cats,
					  struct page_region *vec)
{
	kmem_scan	s;
	ssize_t		r;
	bool		any = false;

	memset(cats, 0, n * sizeof(uint16));
	kmem_scan_init(&s, fd, addr, addr + n * ptbm_region.page_size, 0,
				   PAGE_IS_PRESENT | PAGE_IS_SWAPPED, 0,
				   PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO | PAGE_IS_HUGE);
	while ((r = kmem_scan_step(&s, vec, PTBM_SCAN_VEC)) > 0)
	{
		for (ssize_t k = 0; k < r; k++)
		{
			int64		from = (vec[k].start - addr) / ptbm_region.page_size;
			int64		to = (vec[k].end - addr) / ptbm_region.page_size;

			for (int64 p = from; p < to && p < n; p++)
				cats[p] = (uint16) vec[k].categories;
			any = true;
		}
	}
	if (r < 0)
		return true;			/* let the pagemap read decide */
	return any;
}

/*
 * Whether zero_page and huge need PAGEMAP_SCAN's categories, a second walk
 * of the page table besides the pagemap read.  The kernel maps the zero
 * page only into private mappings, so a shared region of base pages can
 * hold a huge mapping only if some shmem or file page of the system is
 * mapped by a PMD right now; /proc/meminfo counts those.  Asked again for
 * every chunk, so a huge mapping made during a scan is not missed.
 */
static bool
ptbm_pte_needs_categories(void)
{
	static const char *const keys[] = {"ShmemPmdMapped", "FilePmdMapped"};
	uint64		kb[2];

	if (!ptbm_kind_is_shared(ptbm_region.kind) || ptbm_region.huge != PTBM_HUGE_OFF)
		return true;
	return kmem_meminfo_keys(keys, kb, 2) < 0 || kb[0] > 0 || kb[1] > 0;
}

/* shapes of ptbm_pte rows: one per "via" value, one for a NULL via */
#define PTBM_VIA_NAMES	5
#define PTBM_PTE_SHAPES	(PTBM_VIA_NAMES + 1)

static const char *const ptbm_via_names[PTBM_VIA_NAMES] = {
	"own access", "shared page table", "huge mapping", "fault-around", "other"
};

/*
 * The "via" values as datums of the column's type: the enum ptbm_via since
 * version 1.1 (four bytes a row), text in 1.0, which a database keeps until
 * ALTER EXTENSION ptbm UPDATE.
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

Datum
ptbm_pte(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			pid;
	int64		first;
	int64		count;
	int			fd;
	int			kcount_fd = -1;
	int			kflags_fd = -1;
	bool		frames;
	bool		soft_dirty;
	bool		scan;
	uint64	   *ents;
	uint16	   *cats;
	uint64	   *pfns = NULL;
	uint64	   *mapcounts = NULL;
	uint64	   *kflags = NULL;
	struct page_region *vec;
	int			backend_id;
	const uint8 *ledger;
	PtbmTracking tracking;
	bool		swap_possible;
	Datum		via[PTBM_VIA_NAMES];
	PtbmRowWriter *rows;
	MemoryContext rowctx;
	MemoryContext oldctx;
	Datum		values[PTBM_PTE_COLS];
	bool		nulls[PTBM_PTE_COLS];
	union
	{
		int32		align;		/* a varlena's header must be aligned */
		char		data[VARHDRSZ + 2 + 16];
	}			addr_text;
	uint64		prev_addr = 0;	/* the address addr_text holds */
	int			addr_len = 0;	/* its length; 0: none yet */

	ptbm_require_region();
	InitMaterializedSRF(fcinfo, 0);

	/* NULL pid or first page: no rows; NULL count: to the end */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	pid = PG_GETARG_INT32(0);
	count = ptbm_range_args(fcinfo, 1, &first);
	ptbm_check_pid(pid);

	frames = ptbm_frames_for_caller();
	soft_dirty = ptbm_soft_dirty_supported();
	scan = kmem_get_caps()->pagemap_scan;
	swap_possible = ptbm_region_swap_possible();
	backend_id = ptbm_backend_id(pid);
	/* the pages it touched itself: known per page only at one page a bit */
	ledger = ptbm_ledger_granule == 1 ? ptbm_ledger_bits(backend_id) : NULL;
	tracking = ptbm_tracking_of(backend_id);

	fd = ptbm_open_pagemap(pid);
	if (fd < 0)
		return (Datum) 0;		/* exited since the check: nothing to show */
	if (frames)
	{
		kcount_fd = ptbm_open_kpage("kpagecount", "mapcount");
		kflags_fd = ptbm_open_kpage("kpageflags", "flags");
		pfns = palloc(PTBM_CHUNK_PAGES * sizeof(uint64));
		mapcounts = palloc0(PTBM_CHUNK_PAGES * sizeof(uint64));
		kflags = palloc0(PTBM_CHUNK_PAGES * sizeof(uint64));
	}
	ents = palloc(PTBM_CHUNK_PAGES * sizeof(uint64));
	cats = palloc(PTBM_CHUNK_PAGES * sizeof(uint16));
	vec = palloc(PTBM_SCAN_VEC * sizeof(struct page_region));
	ptbm_via_datums(TupleDescAttr(rsinfo->setDesc, PTE_VIA)->atttypid, via);

	/*
	 * Rows are formed once per shape and patched (ptbm_rows.c); a row with
	 * frame flags is formed in full, as its array differs from page to page.
	 * Values built per row (those arrays) live in a context reset after
	 * every chunk: the tuplestore keeps its own copies (and spills to disk
	 * past work_mem), so memory stays bounded whatever the range.
	 */
	rows = ptbm_rows_begin(rsinfo, PTBM_PTE_SHAPES, PTE_ADDRESS);

	/* what is the same for every row */
	memset(nulls, 0, sizeof(nulls));
	nulls[PTE_PFN] = nulls[PTE_MAPCOUNT] = nulls[PTE_FLAGS] = true;
	values[PTE_ADDRESS] = PointerGetDatum(&addr_text);
	nulls[PTE_SOFT_DIRTY] = !soft_dirty;
	nulls[PTE_ZERO_PAGE] = nulls[PTE_HUGE] = !scan;
	nulls[PTE_TOUCHED] = ledger == NULL;
	nulls[PTE_WRITTEN] = tracking == PTBM_TRACK_NONE;
	rowctx = AllocSetContextCreate(CurrentMemoryContext, "ptbm_pte rows",
								   ALLOCSET_DEFAULT_SIZES);

	for (int64 done = 0; done < count;)
	{
		int64		n = Min(count - done, PTBM_CHUNK_PAGES);
		uint64		addr = ptbm_page_addr(first + done);
		uint64		chunk_end = addr + n * ptbm_region.page_size;
		bool		mapped;
		ssize_t		got;

		CHECK_FOR_INTERRUPTS();

		/* whether to read at all, and the categories if they can matter */
		if (!scan)
			mapped = true;
		else if (kmem_any_mapped(fd, addr, chunk_end) == 0)
			mapped = false;
		else if (ptbm_pte_needs_categories())
			mapped = ptbm_chunk_categories(fd, addr, n, cats, vec);
		else
		{
			memset(cats, 0, n * sizeof(uint16));
			mapped = true;
		}

		if (!mapped)
		{
			/* nothing mapped in this chunk: no need to read its entries */
			memset(ents, 0, n * sizeof(uint64));
			got = n;
		}
		else
		{
			got = kmem_pagemap_read_stride(fd, addr, n, ptbm_region.base_per_page, ents);
			if (got < 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read the page table of process %d: %m", pid)));
			if (got < n)
				break;			/* the process exited: stop where it ended */
		}

		if (frames)
		{
			for (int64 k = 0; k < n; k++)
				pfns[k] = kmem_pfn(ents[k]);
			if (kcount_fd >= 0)
				(void) kmem_kpage_read(kcount_fd, pfns, n, mapcounts);
			if (kflags_fd >= 0)
				(void) kmem_kpage_read(kflags_fd, pfns, n, kflags);
		}

		oldctx = MemoryContextSwitchTo(rowctx);
		for (int64 k = 0; k < n; k++)
		{
			int64		page = first + done + k;
			uint64		page_addr = addr + k * ptbm_region.page_size;
			uint64		e = ents[k];
			bool		present = (e & PM_PRESENT) != 0;
			int			touched;
			bool		via_null;
			kmem_ent_kind kind;
			int			shape = frames ? -1 : PTBM_VIA_NAMES;

			values[PTE_PAGE] = Int64GetDatum(page);
			addr_len = ptbm_addr_format_next(page_addr, prev_addr, VARDATA(&addr_text), addr_len);
			prev_addr = page_addr;
			SET_VARSIZE(&addr_text, VARHDRSZ + addr_len);
			values[PTE_PRESENT] = BoolGetDatum(present);
			/* a PTE marker is not a swapped page: kmem decides */
			kind = kmem_ent_decode(e, swap_possible);
			values[PTE_SWAPPED] = BoolGetDatum(kind == KMEM_ENT_SWAPPED);
			if (nulls[PTE_SWAPPED] != (kind == KMEM_ENT_SWAP_OR_MARKER))
				nulls[PTE_SWAPPED] = kind == KMEM_ENT_SWAP_OR_MARKER;
			if (kind == KMEM_ENT_SWAP_OR_MARKER)
				ptbm_swap_hidden_notice();
			values[PTE_SHARED] = BoolGetDatum((e & PM_FILE) != 0);
			values[PTE_EXCLUSIVE] = BoolGetDatum((e & PM_MMAP_EXCLUSIVE) != 0);
			values[PTE_SOFT_DIRTY] = BoolGetDatum((e & PM_SOFT_DIRTY) != 0);
			values[PTE_ZERO_PAGE] = BoolGetDatum((cats[k] & PAGE_IS_PFNZERO) != 0);
			values[PTE_HUGE] = BoolGetDatum((cats[k] & PAGE_IS_HUGE) != 0);
			/*
			 * Frame, its mapcount and flags: present pages, frames visible.
			 * NULLs are stored only when they may change: ptbm_rows_put
			 * reads them eight at a time, and a wide load just after narrow
			 * stores to the same bytes waits for the stores (perf saw it).
			 */
			if (frames)
				nulls[PTE_PFN] = nulls[PTE_MAPCOUNT] = nulls[PTE_FLAGS] = true;
			if (frames && present && pfns[k] != 0)
			{
				values[PTE_PFN] = Int64GetDatum((int64) pfns[k]);
				nulls[PTE_PFN] = false;
				values[PTE_MAPCOUNT] = Int64GetDatum((int64) mapcounts[k]);
				nulls[PTE_MAPCOUNT] = kcount_fd < 0;
				if (kflags_fd >= 0)
				{
					const char *names[64];
					Datum		d[64];
					int			nn = kmem_kpf_decode(kflags[k], names, 64);

					for (int j = 0; j < nn; j++)
						d[j] = CStringGetTextDatum(names[j]);
					values[PTE_FLAGS] = PointerGetDatum(construct_array(d, nn, TEXTOID, -1, false, TYPALIGN_INT));
					nulls[PTE_FLAGS] = false;
				}
			}
			/* did this process access the page itself (through ptbm)? */
			touched = ledger ? (ledger[page >> 3] >> (page & 7)) & 1 : -1;
			values[PTE_TOUCHED] = BoolGetDatum(touched == 1);
			via_null = !(present && touched >= 0);
			if (nulls[PTE_VIA] != via_null)
				nulls[PTE_VIA] = via_null;
			if (!via_null)
			{
				int			v = touched ? 0 :
					ptbm_region.pt_sharing ? 1 :
					(cats[k] & PAGE_IS_HUGE) ? 2 :
					(e & PM_FILE) ? 3 : 4;

				values[PTE_VIA] = via[v];
				if (shape >= 0)
					shape = v;
			}
			/* written since tracking started or was reset: tracked processes */
			values[PTE_WRITTEN] = BoolGetDatum(ptbm_entry_written(tracking, e));
			ptbm_rows_put(rows, shape, values, nulls);
		}
		MemoryContextSwitchTo(oldctx);
		MemoryContextReset(rowctx);
		done += n;
	}

	ptbm_rows_end(rows);
	if (kcount_fd >= 0)
		CloseTransientFile(kcount_fd);
	if (kflags_fd >= 0)
		CloseTransientFile(kflags_fd);
	CloseTransientFile(fd);
	return (Datum) 0;
}

/* ---- ptbm_touch(), ptbm_write(), ptbm_read() ----------------------------- */

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
	char	   *mode;
	PtbmTouch	t = {0};
	struct rusage before,
				after;
	instr_time	start,
				elapsed;

	ptbm_require_region();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	count = ptbm_range_args(fcinfo, 0, &first);
	mode = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(mode, "read") == 0)
		t.write = false;
	else if (strcmp(mode, "write") == 0)
		t.write = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown touch mode \"%s\"", mode),
				 errhint("Valid modes are \"read\" and \"write\".")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	ptbm_region_check_access("ptbm_touch", first, count, t.write);
	ptbm_tracking_prepare(first, count);
	ptbm_ledger_mark(first, count);
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

Datum
ptbm_write(PG_FUNCTION_ARGS)
{
	int64		page;
	bytea	   *data;
	int32		offset;
	int32		len;
	PtbmCopy	c;

	ptbm_require_region();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	page = PG_GETARG_INT64(0);
	data = PG_GETARG_BYTEA_PP(1);
	offset = PG_GETARG_INT32(2);
	len = VARSIZE_ANY_EXHDR(data);
	ptbm_check_in_page(page, offset, len);

	ptbm_region_check_access("ptbm_write", page, 1, true);
	ptbm_tracking_prepare(page, 1);
	ptbm_ledger_mark(page, 1);
	c.to = ptbm_region.base + page * ptbm_region.page_size + offset;
	c.from = VARDATA_ANY(data);
	c.len = len;
	ptbm_region_access(ptbm_copy, &c);
	PG_RETURN_INT32(len);
}

Datum
ptbm_read(PG_FUNCTION_ARGS)
{
	int64		page;
	int32		len;
	int32		offset;
	bytea	   *result;
	PtbmCopy	c;

	ptbm_require_region();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	page = PG_GETARG_INT64(0);
	len = PG_GETARG_INT32(1);
	offset = PG_GETARG_INT32(2);
	ptbm_check_in_page(page, offset, len);

	ptbm_region_check_access("ptbm_read", page, 1, false);
	ptbm_tracking_prepare(page, 1);
	ptbm_ledger_mark(page, 1);
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	c.to = VARDATA(result);
	c.from = ptbm_region.base + page * ptbm_region.page_size + offset;
	c.len = len;
	ptbm_region_access(ptbm_copy, &c);
	PG_RETURN_BYTEA_P(result);
}
