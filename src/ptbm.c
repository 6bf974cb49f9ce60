/*-------------------------------------------------------------------------
 *
 * ptbm.c
 *	  ptbm: what the page tables of PostgreSQL backends hold.
 *
 * This file owns the buffer-table region: its settings, the mapping made
 * in the postmaster before any child is forked, and its reset on every
 * crash-restart cycle.  The SQL functions live in ptbm_sql.c, the kernel
 * interface in kmem.c.
 *
 * Concurrency: the region's contents are shared memory with no lock of
 * ptbm's; SQL functions that write it are plain stores, as the experiments
 * want.  The PtbmRegion descriptor is written only by the postmaster while
 * it has no children, and read-only everywhere else.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "kmem.h"
#include "ptbm.h"

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

#define PTBM_REGION_FILE	"ptbm_region"

/* ---- state ------------------------------------------------------------ */

PtbmRegion	ptbm_region = {.base = NULL, .fd = -1};

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);
static void ptbm_check_settings(void);
static void ptbm_map_region(void);
static void ptbm_shmem_startup(void);

/* ---- helpers exported to ptbm_sql.c ----------------------------------- */

const char *
ptbm_kind_name(PtbmKind kind)
{
	for (const struct config_enum_entry *e = ptbm_kind_options; e->name; e++)
		if (e->val == (int) kind)
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

	MarkGUCPrefixReserved("ptbm");

	ptbm_map_region();

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
					 hint ? errhint("%s", hint) :
					 errhint("Use a size from 4kB to 2TB, such as \"128MB\" or \"1TB\".")));
		if (kb == 0)
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ptbm.region_size must be at least one page"),
					 errhint("Use a size from 4kB to 2TB, such as \"128MB\" or \"1TB\".")));
	}

	raw = GetConfigOption("ptbm.region_kind", true, false);
	if (raw != NULL)
	{
		bool		ok = false;

		for (const struct config_enum_entry *e = ptbm_kind_options; e->name; e++)
			if (pg_strcasecmp(raw, e->name) == 0)
				ok = true;
		if (!ok)
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for parameter \"%s\": \"%s\"",
							"ptbm.region_kind", raw),
					 errhint("Valid kinds are shared_anon, private_anon, shared_memfd, shared_file and private_file.")));
	}
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
	int			fd = -1;
	int			flags = MAP_NORESERVE;
	void	   *base;

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
			fd = memfd_create("ptbm_region", MFD_CLOEXEC);
			if (fd < 0)
				ereport(FATAL,
						(errcode_for_file_access(),
						 errmsg("could not create the ptbm region with memfd_create: %m")));
			flags |= MAP_SHARED;
			break;
		case PTBM_SHARED_FILE:
		case PTBM_PRIVATE_FILE:
			/* the postmaster runs in the data directory */
			snprintf(ptbm_region.file, MAXPGPATH, "%s/%s", DataDir, PTBM_REGION_FILE);
			fd = open(ptbm_region.file, O_RDWR | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
			if (fd < 0)
				ereport(FATAL,
						(errcode_for_file_access(),
						 errmsg("could not create the ptbm region file \"%s\": %m",
								ptbm_region.file),
						 errhint("The file kinds keep the region in the data directory; check its permissions and free space.")));
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

	base = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (base == MAP_FAILED)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not map the ptbm region of %zu bytes (%s): %m",
						size, ptbm_kind_name(kind)),
				 errhint("Lower ptbm.region_size; the region needs that much free address space.")));

	ptbm_region.base = base;
	ptbm_region.size = size;
	ptbm_region.page_size = page_size;
	ptbm_region.pages = size / page_size;
	ptbm_region.kind = kind;
	ptbm_region.fd = fd;
	ptbm_region.generation = 0;
}

/*
 * Runs in the postmaster at start and after every crash, once all children
 * have exited and before the next ones are forked.  A backend that died
 * while writing the region may have left it half-written, so every cycle
 * after the first starts from an empty region, as PostgreSQL's own shared
 * memory does.  No child exists at this point: no backend can observe a
 * half-reset region.  The mapping itself is kept, so nothing accumulates.
 */
static void
ptbm_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	if (ptbm_region.base == NULL || IsUnderPostmaster)
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
