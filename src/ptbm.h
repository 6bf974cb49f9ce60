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

/* argument checks shared by the SQL functions (ptbm_sql.c) */
extern void ptbm_require_region(void);

#endif							/* PTBM_H */
