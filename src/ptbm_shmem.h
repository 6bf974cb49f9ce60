/*-------------------------------------------------------------------------
 *
 * ptbm_shmem.h
 *	  PostgreSQL's main shared memory segment as ptbm finds it: the mapping
 *	  of this process that holds shared_buffers (ptbm_shmem.c owns it).
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_SHMEM_H
#define PTBM_SHMEM_H

#include "kmem.h"

typedef struct PtbmSegment
{
	uint64		start;			/* the VMA that contains BufferBlocks */
	uint64		end;
	uint64		inode;			/* of its shmem or hugetlbfs file */
	char		path[KMEM_PATH_MAX];	/* as maps names it */
	uint64		buf_start;		/* BufferBlocks */
	uint64		buf_end;		/* BufferBlocks + NBuffers * BLCKSZ */
	uint64		bufpg_start;	/* the base pages that overlap the buffers */
	uint64		bufpg_end;
} PtbmSegment;

/* The segment in this process's maps (the same address in every process). */
extern void ptbm_shmem_locate(PtbmSegment *seg);

#endif							/* PTBM_SHMEM_H */
