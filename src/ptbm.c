/*-------------------------------------------------------------------------
 *
 * ptbm.c
 *	  ptbm: what the page tables of PostgreSQL backends hold.
 *
 * This file owns the buffer-table region: its settings, the mapping made
 * in the postmaster before any child is forked (huge pages included), its
 * reset on every crash-restart cycle, the touch ledger in shared memory,
 * and write tracking from backend start.  The SQL functions live in
 * ptbm_sql.c (region, page-table entries, touch/read/write),
 * ptbm_sharing.c (across processes), ptbm_writes.c (write tracking) and
 * ptbm_shmem.c (PostgreSQL's own segment); the kernel interface in kmem.c.
 *
 * Concurrency: the region's contents are shared memory with no lock of
 * ptbm's; SQL functions that write it are plain stores, as the experiments
 * want.  The PtbmRegion descriptor is written only by the postmaster while
 * it has no children, and read-only everywhere else.  A ledger slot is
 * written only by its own backend (and cleared when it exits); readers
 * take it as it is, a snapshot like every other report.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "kmem.h"
#include "ptbm.h"
#include "ptbm_rows.h"

/*
 * From libpq/auth.h, which needs the GSSAPI headers that a PGXS build does
 * not otherwise require.
 */
struct Port;
typedef void (*ClientAuthentication_hook_type) (struct Port *, int);
extern PGDLLIMPORT ClientAuthentication_hook_type ClientAuthentication_hook;

PG_MODULE_MAGIC;

/* ---- GUC variables ---------------------------------------------------- */

static int	ptbm_region_size_kb = 128 * 1024;
static int	ptbm_region_kind = PTBM_SHARED_ANON;

static const struct config_enum_entry ptbm_kind_options[] = {
	{"shared_anon", PTBM_SHARED_ANON, false},
	{"private_anon", PTBM_PRIVATE_ANON, false},
	{"shared_memfd", PTBM_SHARED_MEMFD, false},
	{"shared_file", PTBM_SHARED_FILE, false},
	{"private_file", PTBM_PRIVATE_FILE, false},
	{NULL, 0, false}
};

static int	ptbm_huge_pages = PTBM_HUGE_OFF;
static bool ptbm_track_writes_guc = false;

static const struct config_enum_entry ptbm_huge_options[] = {
	{"off", PTBM_HUGE_OFF, false},
	{"thp", PTBM_HUGE_THP, false},
	{"hugetlb", PTBM_HUGE_HUGETLB, false},
	{NULL, 0, false}
};

/* under pg_dynshmem, whose contents base backups and pg_rewind skip */
#define PTBM_REGION_FILE	"pg_dynshmem/ptbm_region"

/* at most this many ledger bytes per backend slot */
#define PTBM_LEDGER_MAX_BYTES	(64 * 1024)

/* ---- state ------------------------------------------------------------ */

PtbmRegion	ptbm_region = {.base = NULL, .fd = -1};

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

int64		ptbm_ledger_granule = 1;
static Size ptbm_ledger_bytes;	/* per slot */
static uint8 *ptbm_ledger;		/* (MaxBackends + 1) slots */
static bool ptbm_ledger_exit_registered = false;

void		_PG_init(void);
static void ptbm_check_settings(void);
static void ptbm_map_region(void);
static void ptbm_shmem_startup(void);
static void ptbm_shmem_request(void);
static void ptbm_client_auth(struct Port *port, int status);
static bool ptbm_check_enum(const char *name, const struct config_enum_entry *opts,
							const char *hint);

/* ---- helpers exported to ptbm_sql.c ----------------------------------- */

const char *
ptbm_kind_name(PtbmKind kind)
{
	for (const struct config_enum_entry *e = ptbm_kind_options; e->name; e++)
		if (e->val == (int) kind)
			return e->name;
	return "unknown";
}

const char *
ptbm_huge_name(PtbmHuge huge)
{
	for (const struct config_enum_entry *e = ptbm_huge_options; e->name; e++)
		if (e->val == (int) huge)
			return e->name;
	return "unknown";
}

bool
ptbm_kind_is_shared(PtbmKind kind)
{
	return kind == PTBM_SHARED_ANON || kind == PTBM_SHARED_MEMFD ||
		kind == PTBM_SHARED_FILE;
}

void
ptbm_require_region(void)
{
	if (ptbm_region.base == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ptbm must be loaded via shared_preload_libraries"),
				 errhint("Add ptbm to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* ---- module load -------------------------------------------------------- */

void
_PG_init(void)
{
	/*
	 * The region must exist before the first fork; outside the preload
	 * phase ptbm only makes its functions callable, and they report that
	 * the region is missing.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	/*
	 * A custom variable's bad value in postgresql.conf only draws a WARNING
	 * when the variable is defined, and the default is used silently.  An
	 * experiment run on the wrong region is worse than no start: check the
	 * raw values first and refuse to start.
	 */
	ptbm_check_settings();

	DefineCustomIntVariable("ptbm.region_size",
							"Size of the buffer-table region.",
							"Rounded up to the page size; mapped with MAP_NORESERVE, "
							"so untouched pages cost nothing.",
							&ptbm_region_size_kb,
							128 * 1024, 0, INT_MAX,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("ptbm.region_kind",
							 "How the buffer-table region is mapped.",
							 "shared_anon is MAP_SHARED|MAP_ANONYMOUS; the file kinds "
							 "use the file " PTBM_REGION_FILE " in the data directory.",
							 &ptbm_region_kind,
							 PTBM_SHARED_ANON,
							 ptbm_kind_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("ptbm.huge_pages",
							 "Page size of the buffer-table region.",
							 "thp asks for transparent huge pages (MADV_HUGEPAGE); "
							 "hugetlb maps huge pages from the vm.nr_hugepages pool, "
							 "aligned so that page tables can be shared.",
							 &ptbm_huge_pages,
							 PTBM_HUGE_OFF,
							 ptbm_huge_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("ptbm.track_writes",
							 "Every client backend tracks its writes to the region from its start.",
							 "Each backend registers the region for userfaultfd write-protect "
							 "itself after fork (registration is not inherited).",
							 &ptbm_track_writes_guc,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("ptbm.row_templates",
							 "Forms each shape of ptbm_pte row once and patches copies of it.",
							 "A developer option: off forms every row in full, "
							 "which the tests compare with.",
							 &ptbm_row_templates,
							 true,
							 PGC_USERSET,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("ptbm");

	ptbm_map_region();

	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = ptbm_client_auth;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ptbm_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ptbm_shmem_startup;
}

/*
 * Validates the raw settings before they are defined; see _PG_init.
 */
static void
ptbm_check_settings(void)
{
	const char *raw;

	raw = GetConfigOption("ptbm.region_size", true, false);
	if (raw != NULL)
	{
		int			kb;
		const char *hint = NULL;

		if (!parse_int(raw, &kb, GUC_UNIT_KB, &hint) || kb < 0)
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for parameter \"%s\": \"%s\"",
							"ptbm.region_size", raw),
					 hint ? errdetail("%s", hint) : 0,
					 errhint("Use a size from 4kB to 2047GB, such as \"128MB\" or \"1TB\".")));
		if (kb == 0)
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ptbm.region_size must be at least one page"),
					 errhint("Use a size from 4kB to 2047GB, such as \"128MB\" or \"1TB\".")));
	}

	(void) ptbm_check_enum("ptbm.region_kind", ptbm_kind_options,
						   "Valid kinds are shared_anon, private_anon, shared_memfd, shared_file and private_file.");
	(void) ptbm_check_enum("ptbm.huge_pages", ptbm_huge_options,
						   "Valid values are off, thp and hugetlb.");
}

/* FATAL unless the raw value of an enum setting is one of its options. */
static bool
ptbm_check_enum(const char *name, const struct config_enum_entry *opts,
				const char *hint)
{
	const char *raw = GetConfigOption(name, true, false);

	if (raw == NULL)
		return true;
	for (const struct config_enum_entry *e = opts; e->name; e++)
		if (pg_strcasecmp(raw, e->name) == 0)
			return true;
	ereport(FATAL,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for parameter \"%s\": \"%s\"", name, raw),
			 errhint("%s", hint)));
	return false;
}

/*
 * Maps size bytes at an address aligned to align (0: the page size), with
 * one PROT_NONE guard page on each side, so that the region is always a
 * VMA of its own: the kernel could otherwise merge a private anonymous
 * region with a neighbour of the same flags, and smaps would then count
 * memory that is not the region's.  Reserves the address space first and
 * maps over it with MAP_FIXED; what is left of the reservation is returned.
 */
static void *
ptbm_mmap_aligned(Size size, Size align, int prot, int flags, int fd)
{
	Size		guard = kmem_page_size();
	Size		total;
	char	   *reserve;
	char	   *aligned;
	void	   *p;

	if (align < guard)
		align = guard;
	total = size + align + 2 * guard;
	reserve = mmap(NULL, total, PROT_NONE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (reserve == MAP_FAILED)
		return MAP_FAILED;
	aligned = (char *) TYPEALIGN(align, reserve + guard);
	p = mmap(aligned, size, prot, flags | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
	{
		int			save = errno;

		munmap(reserve, total);
		errno = save;
		return MAP_FAILED;
	}
	/* keep one guard page on each side, give back the rest */
	if (aligned - guard > reserve)
		munmap(reserve, aligned - guard - reserve);
	if (reserve + total > aligned + size + guard)
		munmap(aligned + size + guard, reserve + total - (aligned + size + guard));
	return p;
}

/*
 * Maps the region in the postmaster.  Any failure stops the server: the
 * postmaster has no children yet, and nothing is left behind but an unused
 * file for the file kinds.
 */
static void
ptbm_map_region(void)
{
	Size		page_size = kmem_page_size();
	Size		size = (Size) ptbm_region_size_kb * 1024;
	PtbmKind	kind = (PtbmKind) ptbm_region_kind;
	PtbmHuge	huge = (PtbmHuge) ptbm_huge_pages;
	bool		shared = ptbm_kind_is_shared(kind);
	int			fd = -1;
	int			flags = 0;
	Size		align = 0;
	void	   *base;

	if (huge == PTBM_HUGE_HUGETLB)
	{
		uint64		hp_kb = 0;

		if (kind == PTBM_SHARED_FILE || kind == PTBM_PRIVATE_FILE)
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ptbm.huge_pages = hugetlb does not work with ptbm.region_kind = %s",
							ptbm_kind_name(kind)),
					 errhint("hugetlb pages come from hugetlbfs, not from a file in the data directory: use shared_anon, private_anon or shared_memfd.")));
		if (kmem_meminfo("Hugepagesize", &hp_kb) != 1 || hp_kb == 0)
			ereport(FATAL,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("this kernel has no huge pages for ptbm.huge_pages = hugetlb")));
		page_size = (Size) hp_kb * 1024;
		/* page tables are shared only for whole, aligned PUD ranges */
		align = shared && size >= PTBM_PT_SHARE_SIZE ? PTBM_PT_SHARE_SIZE : page_size;
		/* no MAP_NORESERVE: a missing huge page would be a SIGBUS later */
		flags |= MAP_HUGETLB;
	}
	else
	{
		flags |= MAP_NORESERVE;
		if (huge == PTBM_HUGE_THP)
			align = 2 * 1024 * 1024;	/* a PMD: lets every 2 MB be huge */
	}
	size = TYPEALIGN(page_size, size);

	switch (kind)
	{
		case PTBM_SHARED_ANON:
			flags |= MAP_SHARED | MAP_ANONYMOUS;
			break;
		case PTBM_PRIVATE_ANON:
			flags |= MAP_PRIVATE | MAP_ANONYMOUS;
			break;
		case PTBM_SHARED_MEMFD:
			fd = memfd_create("ptbm_region",
							  MFD_CLOEXEC | (huge == PTBM_HUGE_HUGETLB ? MFD_HUGETLB : 0));
			if (fd < 0)
				ereport(FATAL,
						(errcode_for_file_access(),
						 errmsg("could not create the ptbm region with memfd_create: %m")));
			flags = (flags & ~MAP_HUGETLB) | MAP_SHARED;
			break;
		case PTBM_SHARED_FILE:
		case PTBM_PRIVATE_FILE:
			/* the postmaster runs in the data directory */
			snprintf(ptbm_region.file, MAXPGPATH, "%s/%s", DataDir, PTBM_REGION_FILE);
			/* never through a symbolic link: it is truncated below */
			fd = open(ptbm_region.file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
					  S_IRUSR | S_IWUSR);
			if (fd >= 0)
			{
				struct stat st;

				if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
				{
					close(fd);
					fd = -1;
					errno = EEXIST;
				}
			}
			if (fd < 0)
				ereport(FATAL,
						(errcode_for_file_access(),
						 errmsg("could not create the ptbm region file \"%s\": %m",
								ptbm_region.file),
						 errhint("The file kinds keep the region in a regular file of the data directory; check that path, its permissions and free space.")));
			/* start from zeros, as the anonymous kinds do */
			if (ftruncate(fd, 0) < 0)
				ereport(FATAL,
						(errcode_for_file_access(),
						 errmsg("could not truncate the ptbm region file \"%s\": %m",
								ptbm_region.file)));
			flags |= (kind == PTBM_SHARED_FILE) ? MAP_SHARED : MAP_PRIVATE;
			break;
	}

	if (fd >= 0 && ftruncate(fd, (off_t) size) < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not size the ptbm region to %zu bytes: %m", size),
				 errhint("Lower ptbm.region_size or choose another ptbm.region_kind.")));

	base = ptbm_mmap_aligned(size, align, PROT_READ | PROT_WRITE, flags, fd);
	if (base == MAP_FAILED && huge == PTBM_HUGE_HUGETLB)
	{
		uint64		free_pages = 0;
		uint64		reserved = 0;

		/* free pages that no mapping has reserved yet are what is available */
		(void) kmem_meminfo("HugePages_Free", &free_pages);
		(void) kmem_meminfo("HugePages_Rsvd", &reserved);
		free_pages = free_pages > reserved ? free_pages - reserved : 0;
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not map the ptbm region of %zu bytes in huge pages: %m", size),
				 errdetail("The region needs %zu huge pages of %zu kB; %llu are free and unreserved.",
						   size / page_size, page_size / 1024,
						   (unsigned long long) free_pages),
				 errhint("Raise vm.nr_hugepages by at least %zu (sysctl -w vm.nr_hugepages=N), lower ptbm.region_size, or set ptbm.huge_pages = off.",
						 size / page_size > free_pages ? (size_t) (size / page_size - free_pages) : (size_t) 1)));
	}
	if (base == MAP_FAILED)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not map the ptbm region of %zu bytes (%s): %m",
						size, ptbm_kind_name(kind)),
				 errhint("Lower ptbm.region_size; the region needs that much free address space.")));

	/* THP is advice: whether the kernel follows it is reported, not assumed */
	if (huge == PTBM_HUGE_THP && madvise(base, size, MADV_HUGEPAGE) != 0)
		ereport(WARNING,
				(errmsg("madvise(MADV_HUGEPAGE) on the ptbm region failed: %m"),
				 errdetail("The region uses base pages.")));

	ptbm_region.base = base;
	ptbm_region.size = size;
	ptbm_region.page_size = page_size;
	ptbm_region.pages = size / page_size;
	ptbm_region.kind = kind;
	ptbm_region.fd = fd;
	ptbm_region.generation = 0;
	ptbm_region.huge = huge;
	ptbm_region.base_per_page = (int) (page_size / kmem_page_size());
	ptbm_region.pt_sharing = huge == PTBM_HUGE_HUGETLB && shared &&
		size >= PTBM_PT_SHARE_SIZE &&
		((uintptr_t) base % PTBM_PT_SHARE_SIZE) == 0;

	/* the touch ledger: one bit per granule, at most a fixed size a slot */
	ptbm_ledger_granule = (ptbm_region.pages + PTBM_LEDGER_MAX_BYTES * 8 - 1) /
		(PTBM_LEDGER_MAX_BYTES * 8);
	/* a slot: one state byte, then the bitmap */
	ptbm_ledger_bytes = 1 + ((ptbm_region.pages - 1) / ptbm_ledger_granule) / 8 + 1;
}

/* ---- write tracking from backend start ----------------------------------------- */

/*
 * Runs in each client backend after authentication: the earliest point at
 * which a backend of its own can register the region (fork does not
 * inherit userfaultfd registrations).  A kernel that cannot track is
 * reported once per backend as a WARNING, not a failed connection.
 */
static void
ptbm_client_auth(struct Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK || !ptbm_track_writes_guc || ptbm_region.base == NULL)
		return;
	PG_TRY();
	{
		ptbm_start_tracking();
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		ereport(WARNING,
				(errmsg("ptbm.track_writes is on but this backend does not track writes")));
	}
	PG_END_TRY();
}

/* ---- the touch ledger -------------------------------------------------------- */

static void
ptbm_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(mul_size(MaxBackends + 1, ptbm_ledger_bytes));
}

static void
ptbm_ledger_clear(int code, Datum arg)
{
	if (ptbm_ledger && MyBackendId != InvalidBackendId)
		memset(ptbm_ledger + MyBackendId * ptbm_ledger_bytes, 0, ptbm_ledger_bytes);
}

void
ptbm_ledger_mark(int64 first, int64 count)
{
	uint8	   *slot;

	if (ptbm_ledger == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId > MaxBackends || count <= 0)
		return;
	if (!ptbm_ledger_exit_registered)
	{
		/* the slot is clean on entry: every earlier owner cleared it */
		before_shmem_exit(ptbm_ledger_clear, (Datum) 0);
		ptbm_ledger_exit_registered = true;
	}
	slot = ptbm_ledger + MyBackendId * ptbm_ledger_bytes + 1;
	for (int64 g = first / ptbm_ledger_granule;
		 g <= (first + count - 1) / ptbm_ledger_granule; g++)
		slot[g >> 3] |= (uint8) (1 << (g & 7));
}

/*
 * The slot's state byte: how this backend tracks its writes (0: it does
 * not), so that other backends need not read its smaps to know.
 */
void
ptbm_ledger_set_tracking(int mechanism)
{
	if (ptbm_ledger == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId > MaxBackends)
		return;
	if (!ptbm_ledger_exit_registered)
	{
		before_shmem_exit(ptbm_ledger_clear, (Datum) 0);
		ptbm_ledger_exit_registered = true;
	}
	ptbm_ledger[MyBackendId * ptbm_ledger_bytes] = (uint8) mechanism;
}

int
ptbm_ledger_tracking(int backend_id)
{
	if (ptbm_ledger == NULL || backend_id == InvalidBackendId ||
		backend_id > MaxBackends)
		return 0;
	return ptbm_ledger[backend_id * ptbm_ledger_bytes];
}

const uint8 *
ptbm_ledger_bits(int backend_id)
{
	if (ptbm_ledger == NULL || backend_id == InvalidBackendId ||
		backend_id > MaxBackends)
		return NULL;
	return ptbm_ledger + backend_id * ptbm_ledger_bytes + 1;
}

/*
 * Runs in the postmaster at start and after every crash, once all children
 * have exited and before the next ones are forked.  A backend that died
 * while writing the region may have left it half-written, so every cycle
 * after the first starts from an empty region, as PostgreSQL's own shared
 * memory does.  No backend exists at this point (only the logger may
 * survive a crash, and it never looks at the region): no backend can
 * observe a half-reset region.  The mapping itself is kept, so nothing accumulates.
 */
static void
ptbm_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	if (ptbm_region.base == NULL)
		return;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ptbm_ledger = ShmemInitStruct("ptbm touch ledger",
								  mul_size(MaxBackends + 1, ptbm_ledger_bytes),
								  &found);
	if (!found)
		memset(ptbm_ledger, 0, mul_size(MaxBackends + 1, ptbm_ledger_bytes));
	LWLockRelease(AddinShmemInitLock);

	if (IsUnderPostmaster)
		return;

	if (ptbm_region.generation > 0)
	{
		int			rc;

		if (ptbm_kind_is_shared(ptbm_region.kind))
			/* frees the shared pages and every PTE to them: reads give 0 */
			rc = madvise(ptbm_region.base, ptbm_region.size, MADV_REMOVE);
		else
			/* children's private copies died with them; drop the parent's */
			rc = madvise(ptbm_region.base, ptbm_region.size, MADV_DONTNEED);
		if (rc != 0)
			ereport(FATAL,
					(errmsg("could not reset the ptbm region after a crash: %m")));
		ereport(LOG,
				(errmsg("ptbm region reset after a crash (generation %d)",
						ptbm_region.generation + 1)));
	}
	ptbm_region.generation++;
}
