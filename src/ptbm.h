/*-------------------------------------------------------------------------
 *
 * ptbm.h
 *	  Declarations shared by ptbm's region code (ptbm.c) and its SQL
 *	  functions (ptbm_sql.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_H
#define PTBM_H

#include "fmgr.h"

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
 * The buffer-table region.  Mapped by the postmaster in _PG_init, before any
 * child exists, so every backend and auxiliary process inherits the mapping
 * at the same address; each process's copy of this struct is inherited the
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

/*
 * The touch ledger: per backend slot (BackendId), one bit per granule of
 * region pages that the backend accessed through ptbm_touch, ptbm_read or
 * ptbm_write.  Written only by the slot's own backend, read by any; cleared
 * when the backend exits.  It tells a page a backend faulted in itself from
 * one that became present otherwise (fault-around, shared page tables).
 */
extern int64 ptbm_ledger_granule;	/* region pages per bit */
extern void ptbm_ledger_mark(int64 first, int64 count);
/* a slot's bitmap (bit g: granule g), or NULL when unknown */
extern const uint8 *ptbm_ledger_bits(int backend_id);
extern void ptbm_ledger_set_tracking(int mechanism);
extern int	ptbm_ledger_tracking(int backend_id);

extern PtbmRegion ptbm_region;

extern const char *ptbm_kind_name(PtbmKind kind);
extern const char *ptbm_huge_name(PtbmHuge huge);
extern bool ptbm_kind_is_shared(PtbmKind kind);

/* address of a region page */
static inline uint64
ptbm_page_addr(int64 page)
{
	return (uint64) (uintptr_t) ptbm_region.base + (uint64) page * ptbm_region.page_size;
}

/* ptbm.c */
extern void ptbm_require_region(void);

/* ptbm_sharing.c: the processes of the cluster */
typedef struct PtbmProc
{
	int			pid;
	const char *backend_type;
	const char *state;			/* NULL when unknown or not visible */
	char	   *appname;		/* NULL when unknown or not visible */
} PtbmProc;

extern PtbmProc *ptbm_cluster_procs(int *nprocs);
extern bool ptbm_proc_alive(const PtbmProc *proc);
struct kmem_work;
extern void ptbm_init_work(struct kmem_work *w, bool use_scan);

/* ptbm_writes.c */
extern const char *ptbm_write_tracking_mechanism(void);
extern const char *ptbm_tracking_of(int pid);
extern void ptbm_start_tracking(void);

/* ptbm_sql.c: checks and helpers shared by the SQL functions */
extern int64 ptbm_check_range(int64 first, int64 count, bool count_is_null);
extern int64 ptbm_range_args(FunctionCallInfo fcinfo, int argno, int64 *first);
extern void ptbm_check_pid(int pid);
extern bool ptbm_is_cluster_pid(int pid);
extern bool ptbm_frames_for_caller(void);
extern int	ptbm_open_kpage(const char *file, const char *column);
extern int	ptbm_open_proc(int pid, const char *what);
extern char *ptbm_addr_text(uint64 addr);
extern int	ptbm_backend_id(int pid);
extern bool ptbm_proc_gone(int pid, int err);
extern int	ptbm_open_pagemap(int pid);
extern bool ptbm_close_pagemap(int fd, int pid, int r, int err);

#endif							/* PTBM_H */
