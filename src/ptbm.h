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

#include "ptbm_ledger.h"
#include "ptbm_region.h"

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
extern bool ptbm_region_swap_possible(void);

#include "ptbm_writes.h"

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
