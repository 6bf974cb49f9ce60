/*-------------------------------------------------------------------------
 *
 * ptbm_proc.h
 *	  The processes a report inspects: a pid resolved once into what every
 *	  report needs, and its page table opened through kmem.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_proc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_PROC_H
#define PTBM_PROC_H

#include "kmem.h"
#include "ptbm_ledger.h"

/* A process of the cluster, as a report sees it. */
typedef struct PtbmProc
{
	int			pid;
	int			backend_id;		/* InvalidBackendId: postmaster, auxiliary */
	PtbmTracking tracking;		/* how it tracks its writes (ledger) */
	const char *backend_type;	/* as pg_stat_activity names it; NULL if unknown */
	const char *state;			/* NULL when unknown or not visible */
	char	   *appname;		/* NULL when unknown or not visible */
	int			pagemap;		/* its open pagemap, or -1 */
} PtbmProc;

/* A pid given as an argument: ERROR (22023) unless a process of the cluster. */
extern void ptbm_proc_resolve(int pid, PtbmProc *p);

/* Every process of the cluster: the postmaster, then pg_stat_activity's. */
extern PtbmProc *ptbm_procs(int *nprocs);

/*
 * Opens p's pagemap, checking right before that it is still a process of
 * the cluster (a freed pid could be another process's by now).  Returns
 * false when it has gone or is exiting: the report skips it.  Any other
 * failure is an ERROR.
 */
extern bool ptbm_proc_open(PtbmProc *p);

/*
 * Closes the pagemap after a walk that returned r (errno err).  Returns
 * false when the walk failed because the process went away.
 */
extern bool ptbm_proc_close(PtbmProc *p, int r, int err);

/* Whether p is still the process of the cluster it was when resolved. */
extern bool ptbm_proc_alive(const PtbmProc *p);

/* Whether a failed /proc access (errno err) means that p has gone. */
extern bool ptbm_proc_gone(const PtbmProc *p, int err);

/* Opens another /proc file of p (clear_refs, ...) as a transient file; -1 if gone. */
extern int	ptbm_proc_open_file(const PtbmProc *p, const char *file, int flags);

/*
 * Whether the caller may see frame numbers and kernel page flags (the
 * kernel must show them to the server, and the caller must be a superuser
 * or a member of pg_read_server_files); says why not, once per backend.
 */
extern bool ptbm_frames_for_caller(void);

/* /proc/kpagecount or kpageflags for such a caller; -1 (and a notice once). */
extern int	ptbm_open_kpage(const char *file, const char *column);

/*
 * The NUMA node of p's page at each of n addresses (kmem_page_nodes: from
 * its page table, touching nothing): nodes[i] is a node, KMEM_NODE_NONE or
 * KMEM_NODE_UNKNOWN.  Returns false, with every node KMEM_NODE_NONE, when
 * the kernel reports no nodes (said once per backend: the column is NULL)
 * or p has gone.
 */
extern bool ptbm_proc_nodes(const PtbmProc *p, const uint64 *addrs, size_t n, int *nodes);

/* Scratch space for kmem_walk, with interrupt checks between chunks. */
extern void ptbm_walk_work(kmem_work *w, size_t chunk_pages, bool categories);

#endif							/* PTBM_PROC_H */
