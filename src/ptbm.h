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
} PtbmRegion;

extern PtbmRegion ptbm_region;

extern const char *ptbm_kind_name(PtbmKind kind);
extern bool ptbm_kind_is_shared(PtbmKind kind);

/* address of a region page */
static inline uint64
ptbm_page_addr(int64 page)
{
	return (uint64) (uintptr_t) ptbm_region.base + (uint64) page * ptbm_region.page_size;
}

/* ptbm.c */
extern void ptbm_require_region(void);

/* ptbm_sql.c: checks and helpers shared by the SQL functions */
extern int64 ptbm_check_range(int64 first, int64 count, bool count_is_null);
extern void ptbm_check_pid(int pid);
extern bool ptbm_frames_for_caller(void);
extern int	ptbm_open_proc(int pid, const char *what);
extern char *ptbm_addr_text(uint64 addr);

#endif							/* PTBM_H */
