/*-------------------------------------------------------------------------
 *
 * kmem.h
 *	  ptbm's kernel interface: what a process's page table holds, read from
 *	  /proc (pagemap, PAGEMAP_SCAN, kpageflags, kpagecount, maps, smaps,
 *	  status).
 *
 * Plain C with no PostgreSQL dependency, tested on its own by test/unit.
 * The page-table walkers never allocate: callers pass the buffers (so a
 * caller may leave a loop by longjmp between two calls, or from the tick
 * callback, without leaking).  The maps/smaps/status readers use stdio
 * inside one call and close it before returning.  Failure is -1 with errno
 * set.  Addresses are virtual addresses in the inspected
 * process; pagemap granularity is always the base page size (kmem_page_size).
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/kmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_KMEM_H
#define PTBM_KMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kabi.h"

/* What the running kernel offers this process; probed once (kmem_caps). */
typedef struct kmem_caps
{
	bool		pagemap_scan;	/* PAGEMAP_SCAN ioctl works */
	bool		soft_dirty;		/* kernel tracks soft-dirty */
	bool		frames_visible; /* pagemap shows this process real PFNs */
	bool		kpageflags;		/* /proc/kpageflags readable */
	bool		kpagecount;		/* /proc/kpagecount readable */
	bool		uffd_wp_async;	/* userfaultfd asynchronous write-protect */
	bool		numa;			/* move_pages reports nodes (CONFIG_NUMA) */
} kmem_caps;

extern const kmem_caps *kmem_get_caps(void);
extern size_t kmem_page_size(void);

/* ---- /proc paths ---------------------------------------------------- */

/* "/proc/PID/FILE" into buf (pid 0: "/proc/self/FILE"); every path is built here. */
extern void kmem_proc_path(char *buf, size_t len, pid_t pid, const char *file);

/* ---- pagemap -------------------------------------------------------- */

/* Opens /proc/PID/pagemap (pid 0: this process).  Returns fd or -1. */
extern int	kmem_pagemap_open(pid_t pid);

/*
 * Reads the entries of npages base pages starting at addr into out[].
 * Returns the number read: fewer than asked (0) when the process has gone,
 * -1 on error.
 */
extern ssize_t kmem_pagemap_read(int fd, uint64_t addr, size_t npages,
								 uint64_t *out);

/*
 * The same for n pages that are stride base pages apart (the first base
 * page of each huge page of a hugetlb mapping): one entry each.
 */
extern ssize_t kmem_pagemap_read_stride(int fd, uint64_t addr, size_t n,
										size_t stride, uint64_t *out);

/* Frame number of an entry, 0 when absent, swapped or hidden. */
static inline uint64_t
kmem_pfn(uint64_t ent)
{
	return (ent & PM_PRESENT) ? (ent & PM_PFN_MASK) : 0;
}

/*
 * What an entry says of its page.  The kernel reports every non-present,
 * non-empty PTE with bit 62 ("swapped"), swap entries and PTE markers
 * alike; userfaultfd write-protect leaves a marker on every untouched page
 * it protects, so that on a machine without swap a tracking backend would
 * seem to have its untouched pages swapped out.  A marker is the swap type
 * the kernel reserves for them (SWP_PTE_MARKER, the last of 32), but the
 * type is shown only to CAP_SYS_ADMIN, like frame numbers.  Without it:
 * a marker always carries bit 57 (uffd-wp); and where no swap entry can
 * exist (a shmem or file mapping never has one in its PTEs, and without
 * swap configured nothing does), bit 62 can only be a marker.  What stays
 * undecidable is said so (KMEM_ENT_SWAP_OR_MARKER), never guessed.  Every
 * reader of pagemap entries decides with kmem_ent_decode.
 */
#define KMEM_SWP_PTE_MARKER		31

typedef enum kmem_ent_kind
{
	KMEM_ENT_NONE,				/* no PTE */
	KMEM_ENT_PRESENT,
	KMEM_ENT_SWAPPED,			/* a swap entry: the page is in swap */
	KMEM_ENT_MARKER,			/* a PTE marker (uffd-wp): not mapped */
	KMEM_ENT_SWAP_OR_MARKER		/* one of the two; privilege hides which */
} kmem_ent_kind;

static inline kmem_ent_kind
kmem_ent_decode(uint64_t ent, bool swap_possible)
{
	if (ent & PM_PRESENT)
		return KMEM_ENT_PRESENT;
	if (!(ent & PM_SWAP))
		return KMEM_ENT_NONE;
	/* offset 0 is a swap area's header: a zero field means hidden */
	if (ent & PM_PFN_MASK)
		return PM_SWAP_TYPE(ent) == KMEM_SWP_PTE_MARKER ? KMEM_ENT_MARKER : KMEM_ENT_SWAPPED;
	if (!(ent & PM_UFFD_WP))
		return KMEM_ENT_SWAPPED;
	return swap_possible ? KMEM_ENT_SWAP_OR_MARKER : KMEM_ENT_MARKER;
}

/* a page the process maps (present), or may have in swap */
static inline bool
kmem_ent_mapped(uint64_t ent, bool swap_possible)
{
	kmem_ent_kind k = kmem_ent_decode(ent, swap_possible);

	return k == KMEM_ENT_PRESENT || k == KMEM_ENT_SWAPPED || k == KMEM_ENT_SWAP_OR_MARKER;
}

/* ---- PAGEMAP_SCAN ---------------------------------------------------- */

typedef struct kmem_scan
{
	int			fd;
	uint64_t	next;			/* where the next call starts */
	uint64_t	end;
	uint64_t	flags;			/* PM_SCAN_* */
	uint64_t	inverted;
	uint64_t	mask;
	uint64_t	anyof;
	uint64_t	retmask;
	bool		done;
} kmem_scan;

extern void kmem_scan_init(kmem_scan *s, int fd, uint64_t start, uint64_t end,
						   uint64_t mask, uint64_t anyof, uint64_t inverted,
						   uint64_t retmask);

/*
 * One PAGEMAP_SCAN call: fills vec with up to vec_len ranges of pages that
 * match, merged by (categories & retmask), in address order.  Returns the
 * number of ranges, 0 once the walk is over, -1 on error.  Stops after a
 * short batch, since walk_end is unreliable then.
 */
extern ssize_t kmem_scan_step(kmem_scan *s, struct page_region *vec,
							  size_t vec_len);

/*
 * Whether any page of [start, end) is present or swapped: 1, 0, or -1 with
 * errno.  PAGEMAP_SCAN stops at the first such page, so a populated range
 * costs one entry and an empty one a walk of its (mostly absent) tables.
 */
extern int	kmem_any_mapped(int fd, uint64_t start, uint64_t end);

/* Sets PM_SCAN_* flags (e.g. PM_SCAN_WP_MATCHING) for the next steps. */
static inline void
kmem_scan_set_flags(kmem_scan *s, uint64_t flags)
{
	s->flags = flags;
}

/* ---- write tracking: userfaultfd asynchronous write-protect ------------- */

/*
 * Registers [addr, addr + len) of this process for userfaultfd
 * write-protect in asynchronous mode: once a page is write-protected
 * (kmem_uffd_wp_protect), the first write to it unprotects it without any
 * signal or thread, and PAGEMAP_SCAN's PAGE_IS_WRITTEN lists the pages
 * written since.  Registering changes the VMA only; protecting builds the
 * page tables of the protected range (a marker on every untouched page).
 * Unprivileged (UFFD_USER_MODE_ONLY).  Returns the userfaultfd (to keep open
 * while tracking) or -1.
 */
extern int	kmem_uffd_wp_register(void *addr, size_t len);

/* Write-protects (again), or unprotects, a registered range; 0 or -1. */
extern int	kmem_uffd_wp_protect(int uffd, void *addr, size_t len);
extern int	kmem_uffd_wp_unprotect(int uffd, void *addr, size_t len);

/* Registers and write-protects the whole range: the fd, or -1. */
extern int	kmem_uffd_wp_start(void *addr, size_t len);

/* Stops tracking and closes the descriptor; 0 or -1. */
extern int	kmem_uffd_wp_stop(int uffd, void *addr, size_t len);

/* ---- the walker: one loop over a page table, a sink per chunk ------------- */

/*
 * A walk reads one process's page table over [start, end) through the
 * caller's pagemap fd and hands what it finds to a sink, a chunk at a time.
 * Every reader of page tables in ptbm is a sink of this one loop.  What a
 * walk delivers (wants):
 *   KMEM_EVERY_PAGE  every page of the range, absent ones too, in chunks of
 *                    ents_len pages, each with its entry (a chunk that maps
 *                    nothing is not read: mapped false, entries 0);
 *                    otherwise only runs of pages that have a PTE (present,
 *                    a swap entry or a marker: sinks decode them);
 *   KMEM_ENTRIES     the pagemap entry of each page of a run (otherwise the
 *                    runs come from PAGEMAP_SCAN alone, with their
 *                    categories, and entries are NULL);
 *   KMEM_CATEGORIES  with KMEM_EVERY_PAGE, the PAGEMAP_SCAN categories of
 *                    each page (zero page, huge); NULL without PAGEMAP_SCAN;
 *   KMEM_PRESENT     runs of present pages only (not swapped ones);
 *   KMEM_WRITTEN     runs of present pages written since they were
 *                    write-protected (userfaultfd asynchronous write-protect;
 *                    needs PAGEMAP_SCAN: -1 with EOPNOTSUPP without it);
 *   KMEM_RESET       with KMEM_WRITTEN, write-protect them again in the same
 *                    walk, so that no write falls between reading and
 *                    resetting (the range must be registered, asynchronous).
 * A page is stride base pages (a hugetlb page: its entry is that of its
 * first base page).  Absent pages are skipped without reading their
 * entries when PAGEMAP_SCAN is available.  The walker never allocates.
 */
#define KMEM_EVERY_PAGE		0x01
#define KMEM_ENTRIES		0x02
#define KMEM_CATEGORIES		0x04
#define KMEM_PRESENT		0x08
#define KMEM_WRITTEN		0x10
#define KMEM_RESET			0x20

typedef struct kmem_chunk
{
	uint64_t	addr;			/* of the first page */
	size_t		npages;
	size_t		page_size;		/* bytes per page (stride base pages) */
	const uint64_t *ents;		/* one per page, or NULL (no KMEM_ENTRIES) */
	const uint16_t *cats;		/* one per page, or NULL */
	uint64_t	run_cats;		/* without entries: the run's categories */
	bool		mapped;			/* false: nothing present or swapped here */
	bool		swap_possible;	/* for kmem_ent_decode, from the work */
} kmem_chunk;

/* A sink; a nonzero return ends the walk (which then returns 0). */
typedef int (*kmem_sink) (void *arg, const kmem_chunk *c);

/* Caller-owned scratch space for walks. */
typedef struct kmem_work
{
	struct page_region *vec;
	size_t		vec_len;
	uint64_t   *ents;
	size_t		ents_len;		/* also the chunk size of KMEM_EVERY_PAGE */
	uint16_t   *cats;			/* ents_len of them, for KMEM_CATEGORIES */
	int			(*tick) (void *arg);	/* called between chunks; may
										 * longjmp; nonzero stops */
	void	   *tick_arg;
	bool		use_scan;		/* PAGEMAP_SCAN if the kernel has it */
	bool		swap_possible;	/* a PTE of the range can be a swap entry
								 * (private mapping, swap configured) */
} kmem_work;

/*
 * Returns 0, or -1 with errno (ESRCH when the process went away during the
 * walk: its entries end there, and everything before was delivered).  A
 * NULL sink: the walk only fills w->ents (with KMEM_EVERY_PAGE, a range of
 * at most ents_len pages is then read into them whole).
 */
extern int	kmem_walk(int fd, uint64_t start, uint64_t end, size_t stride, int wants,
					  kmem_work *w, kmem_sink sink, void *arg);

/* ---- sinks kmem offers ---------------------------------------------------- */

typedef struct kmem_counts
{
	uint64_t	pages;			/* base pages examined */
	uint64_t	present;
	uint64_t	swapped;
	uint64_t	file;			/* present with bit 61: file or shared-anon */
	uint64_t	exclusive;		/* present and mapped by this process only */
	uint64_t	soft_dirty;
	uint64_t	uffd_wp;
	uint64_t	markers;		/* not present: a PTE marker (uffd-wp) */
	uint64_t	swap_or_marker; /* one of the two, which is hidden */
} kmem_counts;

extern void kmem_count_entries(const uint64_t *ents, size_t n, bool swap_possible,
							   kmem_counts *c);
/* A sink (arg: kmem_counts) that counts the entries delivered. */
extern int	kmem_count_sink(void *arg, const kmem_chunk *c);
/* Counts the base pages of [start, end): kmem_walk with kmem_count_sink. */
extern int	kmem_count(int fd, uint64_t start, uint64_t end, kmem_work *w, kmem_counts *c);

/*
 * Runs of consecutive pages whose entries pick accepts, built across the
 * chunks of one walk (a sink, arg: kmem_runs); kmem_runs_end emits the run
 * still open.  A run ends at the last page delivered: a walk cut short by
 * an exiting process never yields a run past what was read.
 */
typedef struct kmem_runs
{
	bool		(*pick) (void *arg, uint64_t ent);
	void		(*emit) (void *arg, uint64_t addr, size_t npages);
	void	   *arg;
	size_t		page_size;		/* set by the sink */
	uint64_t	start;			/* the open run, [start, end); empty if equal */
	uint64_t	end;
} kmem_runs;

extern int	kmem_runs_sink(void *arg, const kmem_chunk *c);
extern void kmem_runs_end(kmem_runs *r);

/* ---- kpageflags / kpagecount -------------------------------------------- */

/* "/proc/kpageflags" or "/proc/kpagecount" into buf. */
extern void kmem_kpage_path(char *buf, size_t len, const char *which);
/* Opens /proc/kpageflags or /proc/kpagecount; -1 (EACCES as non-root). */
extern int	kmem_kpage_open(const char *which);

/*
 * For each pfns[i] != 0 reads the 8-byte entry of that frame into out[i]
 * (out[i] = 0 for pfns[i] == 0), one pread per run of consecutive frames.
 * Returns 0 or -1.
 */
extern int	kmem_kpage_read(int fd, const uint64_t *pfns, size_t n, uint64_t *out);

/* Names of /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h). */
extern const char *kmem_kpf_name(int bit);

/* Fills names[] with the names of the bits set; returns how many. */
extern int	kmem_kpf_decode(uint64_t flags, const char **names, int max);

/* ---- maps / smaps / status ---------------------------------------------- */

typedef enum kmem_smaps_field
{
	KSM_SIZE,
	KSM_KERNEL_PAGE_SIZE,
	KSM_MMU_PAGE_SIZE,
	KSM_RSS,
	KSM_PSS,
	KSM_PSS_DIRTY,
	KSM_SHARED_CLEAN,
	KSM_SHARED_DIRTY,
	KSM_PRIVATE_CLEAN,
	KSM_PRIVATE_DIRTY,
	KSM_REFERENCED,
	KSM_ANONYMOUS,
	KSM_ANON_HUGE,
	KSM_SHMEM_PMD,
	KSM_FILE_PMD,
	KSM_SHARED_HUGETLB,
	KSM_PRIVATE_HUGETLB,
	KSM_SWAP,
	KSM_SWAP_PSS,
	KSM_LOCKED,
	KSM_NFIELDS
} kmem_smaps_field;

extern const char *kmem_smaps_field_name(kmem_smaps_field f);

#define KMEM_PATH_MAX 4096

/* One VMA from /proc/PID/maps, or the sum of several from smaps. */
typedef struct kmem_vma
{
	uint64_t	start;
	uint64_t	end;
	char		perms[8];
	uint64_t	offset;
	char		dev[16];
	uint64_t	inode;
	char		path[KMEM_PATH_MAX];
	char		vmflags[256];	/* smaps VmFlags of the first VMA */
	int			nvmas;			/* VMAs summed (smaps) */
	uint64_t	kb[KSM_NFIELDS];	/* smaps fields, kB, summed */
} kmem_vma;

/*
 * Finds the VMA of /proc/PID/maps containing addr.  Returns 1 found, 0 not
 * found, -1 error (ENOENT/ESRCH: no such process).
 */
extern int	kmem_maps_lookup(pid_t pid, uint64_t addr, kmem_vma *out);

/*
 * Sums /proc/PID/smaps over the VMAs that intersect [start, end), each VMA
 * whole; path, inode and VmFlags come from the first.  Returns the number of VMAs, -1 on error.
 */
extern int	kmem_smaps_range(pid_t pid, uint64_t start, uint64_t end,
							 kmem_vma *out);

/* Reads "Key:  N kB" from /proc/PID/status.  Returns 1, 0 absent, -1. */
extern int	kmem_status_kb(pid_t pid, const char *key, uint64_t *kb);

/* Reads "Key: N" from /proc/meminfo (kB, or a count).  1, 0 absent, -1. */
extern int	kmem_meminfo(const char *key, uint64_t *val);
/* Several keys in one read: how many were found (absent ones 0), or -1. */
extern int	kmem_meminfo_keys(const char *const *keys, uint64_t *vals, int nkeys);

/* Reads the parent pid and minor/major fault counts from /proc/PID/stat. */
extern int	kmem_stat(pid_t pid, pid_t *ppid, uint64_t *minflt, uint64_t *majflt);

/* ---- releasing memory ------------------------------------------------------ */

/*
 * Frees [addr, addr + len) of a shared mapping from its backing object
 * (MADV_REMOVE: shmem, memfd, and files of file systems that can punch
 * holes): every process's PTEs to it go, and the next access reads zeros.
 * 0 or -1.
 */
extern int	kmem_release(void *addr, size_t len);

/*
 * Drops this process's own PTEs for n ranges (MADV_DONTNEED), in one
 * process_madvise call where the kernel has it (a local TLB flush, and no
 * other process's page table is touched); the data stays in the backing
 * object.  Returns 0 or -1.
 */
struct iovec;
extern int	kmem_drop_own(const struct iovec *iov, size_t n);

/* ---- NUMA nodes ------------------------------------------------------------ */

#define KMEM_NODE_NONE		(-1)	/* no page mapped there (no PTE, or unmapped) */
#define KMEM_NODE_UNKNOWN	(-2)	/* a PTE, but no node to tell (the zero page) */
#define KMEM_NODES_CHUNK	256		/* pages per move_pages call */

/*
 * The NUMA node of the page at each of n addresses of process pid (0: this
 * process), from its page table: move_pages with no target nodes, which
 * faults nothing in and allocates nothing (unlike a query of one's own
 * pages that first touches them).  Needs what reading the process's
 * pagemap needs (PTRACE_MODE_READ: the same user).  In calls of
 * KMEM_NODES_CHUNK pages, with the arrays on the stack: no allocation.
 * nodes[i] is a node, KMEM_NODE_NONE or KMEM_NODE_UNKNOWN.  Returns 0, or
 * -1 with errno: ENOSYS (a kernel without NUMA), ESRCH (the process has
 * gone; nodes up to there are filled, the rest KMEM_NODE_NONE), EPERM.
 */
extern int	kmem_page_nodes(pid_t pid, const uint64_t *addrs, size_t n, int *nodes);

/* ---- memory that can still be allocated ----------------------------------- */

/*
 * How many bytes this process can still make the kernel allocate before a
 * memory limit stops it: the least of, for every memory cgroup from this
 * process's up to the root of its hierarchy, its limit less its usage
 * (v1 memory.limit_in_bytes - memory.usage_in_bytes, v2 memory.max -
 * memory.current), and of /proc/meminfo's MemAvailable.  what names the
 * tightest ("memory cgroup /a/b", "MemAvailable"); limit and usage are its
 * figures (for MemAvailable, limit is MemAvailable and usage 0).
 */
typedef struct kmem_headroom
{
	uint64_t	bytes;
	uint64_t	limit;
	uint64_t	usage;
	char		what[KMEM_PATH_MAX];
} kmem_headroom;

extern int	kmem_mem_headroom(kmem_headroom *h);

/*
 * How many of the npages base pages from addr exist in their backing
 * object (page cache or shmem file; mincore), reading at most vec_len at a
 * time into the caller's vec.  -1 with errno on error.
 */
extern int64_t kmem_resident_pages(void *addr, size_t npages, unsigned char *vec,
								   size_t vec_len);

#endif							/* PTBM_KMEM_H */
