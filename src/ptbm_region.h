/*-------------------------------------------------------------------------
 *
 * ptbm_region.h
 *	  The buffer-table region: its mapping, its backing object, its reset on
 *	  crash-restart, and safe access to its pages.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_region.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_REGION_H
#define PTBM_REGION_H

#include "fmgr.h"
#include "utils/guc.h"

typedef enum PtbmKind
{
	PTBM_SHARED_ANON,			/* MAP_SHARED | MAP_ANONYMOUS: a shmem file */
	PTBM_PRIVATE_ANON,			/* MAP_PRIVATE | MAP_ANONYMOUS */
	PTBM_SHARED_MEMFD,			/* memfd_create, MAP_SHARED */
	PTBM_SHARED_FILE,			/* file under the data directory, MAP_SHARED */
	PTBM_PRIVATE_FILE			/* the same file, MAP_PRIVATE */
} PtbmKind;

typedef enum PtbmHuge
{
	PTBM_HUGE_OFF,				/* base pages */
	PTBM_HUGE_THP,				/* MADV_HUGEPAGE: transparent huge pages */
	PTBM_HUGE_HUGETLB			/* MAP_HUGETLB / MFD_HUGETLB */
} PtbmHuge;

/* hugetlb page tables are shared per fully mapped, aligned PUD range */
#define PTBM_PT_SHARE_SIZE	((Size) 1 << 30)

/*
 * The region.  Mapped by the postmaster in _PG_init, before any child
 * exists, so every backend and auxiliary process inherits the mapping at
 * the same address; each process's copy of this struct is inherited the
 * same way and never changes afterwards (generation changes only in the
 * postmaster, before it forks the next generation of children).
 */
typedef struct PtbmRegion
{
	char	   *base;			/* NULL: not loaded via shared_preload_libraries */
	Size		size;			/* bytes, a multiple of page_size */
	Size		page_size;		/* bytes per region page */
	int64		pages;			/* size / page_size */
	PtbmKind	kind;
	int			fd;				/* memfd or file kinds: the backing object */
	char		file[MAXPGPATH];	/* file kinds: path under the data dir */
	int			generation;		/* 1 at start, +1 per crash-restart cycle */
	PtbmHuge	huge;
	int			base_per_page;	/* base (pagemap) pages per region page */
	bool		pt_sharing;		/* hugetlb page tables can be shared */
} PtbmRegion;

extern PtbmRegion ptbm_region;

extern const struct config_enum_entry ptbm_kind_options[];
extern const struct config_enum_entry ptbm_huge_options[];
extern const char *ptbm_kind_name(PtbmKind kind);
extern const char *ptbm_huge_name(PtbmHuge huge);
extern bool ptbm_kind_is_shared(PtbmKind kind);

/* address of a region page */
static inline uint64
ptbm_page_addr(int64 page)
{
	return (uint64) (uintptr_t) ptbm_region.base + (uint64) page * ptbm_region.page_size;
}

/* ERROR unless the region exists (ptbm was preloaded) */
extern void ptbm_require_region(void);

/*
 * Checks [first, first + count) against the region (22023 outside it); a
 * NULL count means "to the end of the region".  Returns the count.  The
 * _args form reads the pair from arguments argno and argno + 1.
 */
extern int64 ptbm_region_range(int64 first, int64 count, bool count_is_null);
extern int64 ptbm_region_range_args(FunctionCallInfo fcinfo, int argno, int64 *first);

/* whether a PTE of the region can hold a swap entry (private, swap on) */
extern bool ptbm_region_swap_possible(void);

/* "0x..." of an address, palloc'd */
extern char *ptbm_addr_text(uint64 addr);

/* postmaster only: map at start, reset before each generation of children */
extern void ptbm_region_map(Size size, PtbmKind kind, PtbmHuge huge);
extern void ptbm_region_reset(void);

/*
 * Access to the region's pages.  Before a call touches pages it checks
 * them (ptbm_region_check_access: the backing object still holds them, and
 * faulting them in cannot allocate more than the memory limit in force
 * leaves), then runs its accesses through ptbm_region_access, which turns a
 * SIGBUS on the region (a file truncated behind the server's back between
 * the check and the access) into an ERROR instead of a crash-restart.  fn
 * must not raise an ERROR itself (no palloc, no CHECK_FOR_INTERRUPTS): it
 * is left by a longjmp that PostgreSQL's error machinery does not know.
 */
extern void ptbm_region_check_access(const char *caller, int64 first, int64 count,
									 bool write);
extern void ptbm_region_access(void (*fn) (void *arg), void *arg);

#endif							/* PTBM_REGION_H */
