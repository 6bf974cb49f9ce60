/*-------------------------------------------------------------------------
 *
 * ptbm_region.c
 *	  The buffer-table region: the mapping the postmaster makes before any
 *	  child exists, its backing object, its reset before every generation of
 *	  children, and access to its pages that can neither crash the server
 *	  nor exhaust its memory.
 *
 * Who writes what:
 *	  - ptbm_region (the descriptor) is written only by the postmaster, while
 *	    it has no children (at start, and in ptbm_region_reset before each
 *	    generation is forked); every other process reads its inherited copy.
 *	  - The region's contents are shared memory with no lock of ptbm's.
 *	  - The backing file of the file kinds is created anew at every start
 *	    (never reused: a hard link or a symbolic link at its name would make
 *	    the postmaster truncate someone else's file), its blocks allocated
 *	    at start so that a full disk is a FATAL then and not a SIGBUS later,
 *	    and given its size back at every reset.
 *
 * Rules that keep an access from killing a backend:
 *	  - a private kind with hugetlb is refused at start: the children's
 *	    copy-on-write huge pages are not reserved, and a fault that finds
 *	    the pool empty is a SIGBUS;
 *	  - a shared memfd is sealed against shrinking;
 *	  - before an access, ptbm_region_check_access checks that the backing
 *	    file still holds the pages, and that faulting them in stays within
 *	    the memory limit in force (a read fault on a shared kind allocates a
 *	    page in its shmem file or page cache, which outlives the backend);
 *	  - the access itself runs under a SIGBUS guard (ptbm_region_access),
 *	    for a file truncated between the check and the access.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_region.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "kmem.h"
#include "ptbm_region.h"

/* under pg_dynshmem, whose contents base backups and pg_rewind skip */
#define PTBM_REGION_DIR		"pg_dynshmem"
#define PTBM_REGION_NAME	"ptbm_region"

/* pages per mincore or pagemap read when counting what an access allocates */
#define PTBM_COUNT_CHUNK	65536

const struct config_enum_entry ptbm_kind_options[] = {
	{"shared_anon", PTBM_SHARED_ANON, false},
	{"private_anon", PTBM_PRIVATE_ANON, false},
	{"shared_memfd", PTBM_SHARED_MEMFD, false},
	{"shared_file", PTBM_SHARED_FILE, false},
	{"private_file", PTBM_PRIVATE_FILE, false},
	{NULL, 0, false}
};

const struct config_enum_entry ptbm_huge_options[] = {
	{"off", PTBM_HUGE_OFF, false},
	{"thp", PTBM_HUGE_THP, false},
	{"hugetlb", PTBM_HUGE_HUGETLB, false},
	{NULL, 0, false}
};

PtbmRegion	ptbm_region = {.base = NULL, .fd = -1};

/* mmap flags and alignment of the region, kept for the hugetlb remap */
static int	ptbm_map_flags;
static Size ptbm_map_align;

/* ---- names -------------------------------------------------------------- */

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

static bool
ptbm_kind_is_file(PtbmKind kind)
{
	return kind == PTBM_SHARED_FILE || kind == PTBM_PRIVATE_FILE;
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

int64
ptbm_region_range(int64 first, int64 count, bool count_is_null)
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

int64
ptbm_region_range_args(FunctionCallInfo fcinfo, int argno, int64 *first)
{
	*first = PG_GETARG_INT64(argno);
	return ptbm_region_range(*first,
							 PG_ARGISNULL(argno + 1) ? 0 : PG_GETARG_INT64(argno + 1),
							 PG_ARGISNULL(argno + 1));
}

/*
 * Only in a private mapping, and only with swap configured: shmem and file
 * pages never leave a swap entry in a page table.
 */
bool
ptbm_region_swap_possible(void)
{
	uint64		swap_kb = 0;

	return !ptbm_kind_is_shared(ptbm_region.kind) &&
		(kmem_meminfo("SwapTotal", &swap_kb) != 1 || swap_kb > 0);
}

char *
ptbm_addr_text(uint64 addr)
{
	return psprintf("0x%llx", (unsigned long long) addr);
}

/* ---- the backing file ------------------------------------------------------ */

/*
 * Creates the region file, new at every start: pg_dynshmem is opened
 * without following a symbolic link, and whatever is at the file's name is
 * removed first (the region starts empty anyway), so that the file can be
 * neither someone else's file through a hard link nor reached through a
 * symbolic link.  What was found there, if suspicious, is logged.
 */
static int
ptbm_region_file_create(void)
{
	int			dirfd;
	int			fd;
	struct stat st;

	/* the postmaster runs in the data directory */
	snprintf(ptbm_region.file, MAXPGPATH, "%s/%s/%s",
			 DataDir, PTBM_REGION_DIR, PTBM_REGION_NAME);
	dirfd = open(PTBM_REGION_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s/%s\" for the ptbm region file: %m",
						DataDir, PTBM_REGION_DIR),
				 errhint("It must be a directory of the data directory, not a symbolic link.")));

	if (fstatat(dirfd, PTBM_REGION_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0)
	{
		if (S_ISDIR(st.st_mode))
		{
			close(dirfd);
			errno = EISDIR;
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not create the ptbm region file \"%s\": %m",
							ptbm_region.file),
					 errhint("Remove what is at that path; ptbm creates the file itself.")));
		}
		if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid())
			ereport(LOG,
					(errmsg("replacing \"%s\": it was %s", ptbm_region.file,
							S_ISLNK(st.st_mode) ? "a symbolic link" :
							!S_ISREG(st.st_mode) ? "not a regular file" :
							st.st_nlink != 1 ? "a file with more than one link" :
							"a file of another user"),
					 errdetail("ptbm never reuses such a file: the region file is created anew at every start; what the old name pointed to is left untouched.")));
		if (unlinkat(dirfd, PTBM_REGION_NAME, 0) != 0)
		{
			int			save = errno;

			close(dirfd);
			errno = save;
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not remove the old ptbm region file \"%s\": %m",
							ptbm_region.file)));
		}
	}

	fd = openat(dirfd, PTBM_REGION_NAME,
				O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd < 0)
	{
		int			save = errno;

		close(dirfd);
		errno = save;
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create the ptbm region file \"%s\": %m",
						ptbm_region.file),
				 errhint("The file kinds keep the region in a regular file of the data directory; check that path, its permissions and free space.")));
	}
	close(dirfd);
	return fd;
}

/*
 * Gives the file the region's size and allocates its blocks, so that no
 * write fault can later find the file system full (a SIGBUS).  elevel is
 * FATAL at start and after a crash.
 */
static void
ptbm_region_file_size(int fd, Size size)
{
	int			rc;

	if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t) size) != 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not size the ptbm region file \"%s\" to %zu bytes: %m",
						ptbm_region.file, size),
				 errhint("Lower ptbm.region_size or choose another ptbm.region_kind.")));
	rc = posix_fallocate(fd, 0, (off_t) size);
	if (rc != 0)
	{
		/* give back what part of it was allocated */
		if (ftruncate(fd, 0) != 0)
			rc = errno == ENOSPC ? rc : errno;
		errno = rc;
		ereport(FATAL,
				(errcode(rc == ENOSPC ? ERRCODE_DISK_FULL : ERRCODE_IO_ERROR),
				 errmsg("could not allocate the ptbm region file \"%s\" of %zu bytes: %m",
						ptbm_region.file, size),
				 errdetail("The file kinds allocate every block of the region at start, so that a write can never find the disk full."),
				 errhint("Free space on the file system of the data directory, lower ptbm.region_size, or use ptbm.region_kind = shared_anon.")));
	}
}

/* ---- mapping ----------------------------------------------------------------- */

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

/* FATAL for a mapping of huge pages that failed: what is missing, and how */
static void
ptbm_hugetlb_fatal(Size size, Size page_size)
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

/*
 * The page size, mmap flags and alignment that a kind and a page setting
 * need; refuses the combinations whose memory cannot be guaranteed.
 */
static Size
ptbm_region_layout(PtbmKind kind, PtbmHuge huge, Size size, int *flags, Size *align)
{
	Size		page_size = kmem_page_size();
	bool		shared = ptbm_kind_is_shared(kind);

	*flags = 0;
	*align = 0;
	if (huge == PTBM_HUGE_HUGETLB)
	{
		uint64		hp_kb = 0;

		if (!shared || ptbm_kind_is_file(kind))
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ptbm.huge_pages = hugetlb does not work with ptbm.region_kind = %s",
							ptbm_kind_name(kind)),
					 ptbm_kind_is_file(kind) ?
					 errdetail("hugetlb pages come from hugetlbfs, not from a file in the data directory.") :
					 errdetail("The huge pages that the children's copy-on-write faults need are not reserved: a fault that finds the pool empty would kill the backend."),
					 errhint("Use ptbm.region_kind = shared_anon or shared_memfd with hugetlb.")));
		if (kmem_meminfo("Hugepagesize", &hp_kb) != 1 || hp_kb == 0)
			ereport(FATAL,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("this kernel has no huge pages for ptbm.huge_pages = hugetlb")));
		page_size = (Size) hp_kb * 1024;
		/* page tables are shared only for whole, aligned PUD ranges */
		size = TYPEALIGN(page_size, size);
		*align = size >= PTBM_PT_SHARE_SIZE ? PTBM_PT_SHARE_SIZE : page_size;
		/* no MAP_NORESERVE: a missing huge page would be a SIGBUS later */
		*flags |= MAP_HUGETLB;
	}
	else
	{
		*flags |= MAP_NORESERVE;
		if (huge == PTBM_HUGE_THP)
			*align = 2 * 1024 * 1024;	/* a PMD: lets every 2 MB be huge */
	}
	*flags |= shared ? MAP_SHARED : MAP_PRIVATE;
	if (kind == PTBM_SHARED_ANON || kind == PTBM_PRIVATE_ANON)
		*flags |= MAP_ANONYMOUS;
	else
		*flags &= ~MAP_HUGETLB; /* a hugetlb memfd is huge by itself */
	return page_size;
}

/*
 * Maps the region in the postmaster.  Any failure stops the server: the
 * postmaster has no children yet, and nothing is left behind but an unused
 * file for the file kinds.
 */
void
ptbm_region_map(Size size, PtbmKind kind, PtbmHuge huge)
{
	int			flags;
	Size		align;
	Size		page_size = ptbm_region_layout(kind, huge, size, &flags, &align);
	int			fd = -1;
	void	   *base;

	size = TYPEALIGN(page_size, size);
	if (kind == PTBM_SHARED_MEMFD)
	{
		fd = memfd_create("ptbm_region", MFD_CLOEXEC | MFD_ALLOW_SEALING |
						  (huge == PTBM_HUGE_HUGETLB ? MFD_HUGETLB : 0));
		if (fd < 0)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not create the ptbm region with memfd_create: %m")));
		if (ftruncate(fd, (off_t) size) < 0)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not size the ptbm region to %zu bytes: %m", size),
					 errhint("Lower ptbm.region_size or choose another ptbm.region_kind.")));
		/* nobody may shrink it (through /proc/PID/fd) under the mappings */
		if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not seal the ptbm region's memfd: %m")));
	}
	else if (ptbm_kind_is_file(kind))
	{
		ptbm_region.file[0] = '\0';
		fd = ptbm_region_file_create();
		ptbm_region_file_size(fd, size);
	}

	base = ptbm_mmap_aligned(size, align, PROT_READ | PROT_WRITE, flags, fd);
	if (base == MAP_FAILED && huge == PTBM_HUGE_HUGETLB)
		ptbm_hugetlb_fatal(size, page_size);
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

	ptbm_map_flags = flags;
	ptbm_map_align = align;
	ptbm_region.base = base;
	ptbm_region.size = size;
	ptbm_region.page_size = page_size;
	ptbm_region.pages = size / page_size;
	ptbm_region.kind = kind;
	ptbm_region.fd = fd;
	ptbm_region.generation = 0;
	ptbm_region.huge = huge;
	ptbm_region.base_per_page = (int) (page_size / kmem_page_size());
	ptbm_region.pt_sharing = huge == PTBM_HUGE_HUGETLB &&
		ptbm_kind_is_shared(kind) && size >= PTBM_PT_SHARE_SIZE &&
		((uintptr_t) base % PTBM_PT_SHARE_SIZE) == 0;
}

/*
 * Runs in the postmaster at start and after every crash, once all children
 * have exited and before the next ones are forked.  A backend that died
 * while writing the region may have left it half-written, so every cycle
 * after the first starts from an empty region, as PostgreSQL's own shared
 * memory does.  No backend exists at this point (only the logger may
 * survive a crash, and it never looks at the region).  The mapping stays
 * where it is, so nothing accumulates.
 */
void
ptbm_region_reset(void)
{
	if (ptbm_region.generation++ == 0)
		return;

	if (ptbm_kind_is_file(ptbm_region.kind))
	{
		/* empty, its size and blocks back, whatever was done to it */
		ptbm_region_file_size(ptbm_region.fd, ptbm_region.size);
		if (ptbm_region.kind == PTBM_PRIVATE_FILE &&
			madvise(ptbm_region.base, ptbm_region.size, MADV_DONTNEED) != 0)
			ereport(FATAL,
					(errmsg("could not reset the ptbm region after a crash: %m")));
	}
	else if (ptbm_kind_is_shared(ptbm_region.kind))
	{
		/* frees the shared pages and every PTE to them: reads give 0 */
		if (madvise(ptbm_region.base, ptbm_region.size, MADV_REMOVE) != 0)
			ereport(FATAL,
					(errmsg("could not reset the ptbm region after a crash: %m")));

		/*
		 * Freeing hugetlb pages gives up their reservation as well; mapping
		 * the region again at the same address reserves them again, so no
		 * fault of the next generation can find the pool empty.
		 */
		if (ptbm_region.huge == PTBM_HUGE_HUGETLB &&
			mmap(ptbm_region.base, ptbm_region.size, PROT_READ | PROT_WRITE,
				 ptbm_map_flags | MAP_FIXED, ptbm_region.fd, 0) != ptbm_region.base)
			ptbm_hugetlb_fatal(ptbm_region.size, ptbm_region.page_size);
	}
	/* private anonymous: the children's copies died with them; drop ours */
	else if (madvise(ptbm_region.base, ptbm_region.size, MADV_DONTNEED) != 0)
		ereport(FATAL,
				(errmsg("could not reset the ptbm region after a crash: %m")));

	ereport(LOG,
			(errmsg("ptbm region reset after a crash (generation %d)",
					ptbm_region.generation)));
}

/* ---- checks before an access ------------------------------------------------- */

/*
 * Bytes that faulting in count pages from first would allocate: pages the
 * backing object does not hold yet (for a write to a private kind, pages
 * that are not already this process's own copies).  When even every page
 * of the range fits within limit, that bound is returned without counting.
 */
static uint64
ptbm_region_alloc_bytes(int64 first, int64 count, bool write, uint64 limit)
{
	size_t		ps = kmem_page_size();
	bool		shared = ptbm_kind_is_shared(ptbm_region.kind);
	uint64		need = 0;
	int64		base_first = first * ptbm_region.base_per_page;
	int64		base_count = count * ptbm_region.base_per_page;
	unsigned char *vec = NULL;
	uint64	   *ents = NULL;
	int			pm = -1;

	/* hugetlb pages were reserved when the region was mapped */
	if (ptbm_region.huge == PTBM_HUGE_HUGETLB)
		return 0;
	/* private anonymous reads map the shared zero page */
	if (ptbm_region.kind == PTBM_PRIVATE_ANON && !write)
		return 0;
	/* the count cannot be more than every page of the range */
	if ((uint64) base_count * ps * (shared || !write ? 1 : 2) <= limit)
		return (uint64) base_count * ps;

	if (ptbm_region.kind != PTBM_PRIVATE_ANON)
		vec = palloc(PTBM_COUNT_CHUNK);
	if (!shared && write)
	{
		ents = palloc(PTBM_COUNT_CHUNK * sizeof(uint64));
		pm = kmem_pagemap_open(0);
		if (pm < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open /proc/self/pagemap: %m")));
	}
	for (int64 done = 0; done < base_count; done += PTBM_COUNT_CHUNK)
	{
		int64		n = Min(base_count - done, PTBM_COUNT_CHUNK);
		char	   *addr = ptbm_region.base + (base_first + done) * ps;

		CHECK_FOR_INTERRUPTS();
		/* pages the file (page cache, shmem) does not hold: a fault allocates */
		if (vec)
		{
			int64		resident = kmem_resident_pages(addr, n, vec, PTBM_COUNT_CHUNK);

			if (resident < 0)
				elog(ERROR, "mincore failed on the ptbm region: %m");
			need += (uint64) (n - resident) * ps;
		}
		/* a private write copies every page that is not this process's own */
		if (ents)
		{
			ssize_t		got = kmem_pagemap_read(pm, (uint64) (uintptr_t) addr, n, ents);

			if (got != n)
			{
				close(pm);
				elog(ERROR, "could not read /proc/self/pagemap: %m");
			}
			for (int64 k = 0; k < n; k++)
				if (!((ents[k] & PM_PRESENT) && (ents[k] & PM_MMAP_EXCLUSIVE) &&
					  !(ents[k] & PM_FILE)))
					need += ps;
		}
	}
	if (pm >= 0)
		close(pm);
	if (ptbm_region.huge == PTBM_HUGE_THP)
		need = TYPEALIGN(2 * 1024 * 1024, need);
	return need;
}

/*
 * Checks, before a call faults in count region pages from first, that the
 * backing object still holds them and that the faults stay within the
 * memory limit in force.  caller names the SQL function in the messages.
 */
void
ptbm_region_check_access(const char *caller, int64 first, int64 count, bool write)
{
	kmem_headroom room;
	uint64		need;

	if (count <= 0)
		return;
	if (ptbm_kind_is_file(ptbm_region.kind))
	{
		struct stat st;
		off_t		end = (off_t) (first + count) * ptbm_region.page_size;

		if (fstat(ptbm_region.fd, &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat the ptbm region file \"%s\": %m",
							ptbm_region.file)));
		if (st.st_size < end)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the ptbm region file was truncated to %lld bytes behind the server's back",
							(long long) st.st_size),
					 errdetail("%s needs the file to hold %lld bytes; touching a page past its end would raise SIGBUS.",
							   caller, (long long) end),
					 errhint("A crash-restart or a restart of the server gives the file its size back.")));
	}

	if (kmem_mem_headroom(&room) != 0)
		return;					/* nothing to compare with: the kernel decides */
	need = ptbm_region_alloc_bytes(first, count, write, room.bytes);
	if (need > room.bytes)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("%s would allocate %llu MB, more than the %llu MB that %s leaves",
						caller, (unsigned long long) (need >> 20),
						(unsigned long long) (room.bytes >> 20), room.what),
				 ptbm_kind_is_shared(ptbm_region.kind) ?
				 errdetail("A read or a write of a %s region allocates each page that does not exist yet in its backing object, where it stays after the backend exits.",
						   ptbm_kind_name(ptbm_region.kind)) :
				 errdetail("A write to a %s region allocates a private copy of each page.",
						   ptbm_kind_name(ptbm_region.kind)),
				 errhint("Touch fewer pages, free some with ptbm_evict(..., 'remove'), or raise the memory limit.")));
}

/* ---- the SIGBUS guard ------------------------------------------------------------ */

static sigjmp_buf *ptbm_bus_jmp = NULL;	/* set while an access is guarded */
static void *ptbm_bus_addr;
static bool ptbm_bus_installed = false;
static struct sigaction ptbm_bus_prev;

static void
ptbm_sigbus(int signo, siginfo_t *info, void *context)
{
	char	   *addr = info->si_addr;

	if (ptbm_bus_jmp != NULL && addr >= ptbm_region.base &&
		addr < ptbm_region.base + ptbm_region.size)
	{
		ptbm_bus_addr = addr;
		siglongjmp(*ptbm_bus_jmp, 1);
	}

	/*
	 * Not ptbm's: give the signal to whoever had it before.  For a fault,
	 * returning re-executes the access, which then meets that disposition.
	 */
	sigaction(SIGBUS, &ptbm_bus_prev, NULL);
	if (ptbm_bus_prev.sa_flags & SA_SIGINFO)
	{
		if (ptbm_bus_prev.sa_sigaction)
			ptbm_bus_prev.sa_sigaction(signo, info, context);
	}
	else if (ptbm_bus_prev.sa_handler != SIG_DFL && ptbm_bus_prev.sa_handler != SIG_IGN)
		ptbm_bus_prev.sa_handler(signo);
}

void
ptbm_region_access(void (*fn) (void *arg), void *arg)
{
	sigjmp_buf	jmp;

	if (!ptbm_bus_installed)
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = ptbm_sigbus;
		/*
		 * SA_NODEFER: the handler leaves by siglongjmp without restoring a
		 * signal mask (sigsetjmp(..., 0) saves none, and costs no system
		 * call), so SIGBUS must not be blocked on entry.
		 */
		sa.sa_flags = SA_SIGINFO | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &ptbm_bus_prev) != 0)
			elog(ERROR, "could not install a SIGBUS handler: %m");
		ptbm_bus_installed = true;
	}

	if (sigsetjmp(jmp, 0) == 0)
	{
		ptbm_bus_jmp = &jmp;
		fn(arg);
		ptbm_bus_jmp = NULL;
		return;
	}
	ptbm_bus_jmp = NULL;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("page %lld of the ptbm region is gone from its backing object",
					(long long) (((char *) ptbm_bus_addr - ptbm_region.base) / ptbm_region.page_size)),
			 errdetail("The access at %p raised SIGBUS: the region file was truncated behind the server's back, or no huge page was left for it.",
					   ptbm_bus_addr),
			 errhint("A crash-restart or a restart of the server gives the file its size back.")));
}
