/*-------------------------------------------------------------------------
 *
 * ptbm_proc.c
 *	  The processes a report inspects.
 *
 * A pid becomes a PtbmProc once: whether it is a process of the cluster
 * (the postmaster, or a process with a PGPROC: backends, background
 * workers, auxiliary processes; checked before any /proc file of it is
 * opened), its BackendId, how it tracks its writes, and for listings its
 * type, state and application name as pg_stat_activity shows them.  The
 * reports pass it down.  Right before its pagemap is opened, membership
 * is checked again: the pids of a listing come from the transaction's
 * snapshot of backend status, and a pid freed since could belong to any
 * process by now.  A process that exits during a report is skipped, not an
 * error: an exiting process's /proc files become root's (EACCES) and its
 * status loses its memory lines, which is how ptbm_proc_gone tells.
 *
 * Nothing here is shared or locked: a PtbmProc lives in the caller's
 * memory for one call.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_proc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>

#include "catalog/pg_authid_d.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/backendid.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/backend_status.h"

#include "ptbm_proc.h"

/* pages per chunk and ranges per PAGEMAP_SCAN call of a walk */
#define PTBM_WALK_VEC		1024

/* ---- membership ------------------------------------------------------------ */

/*
 * Whether pid is a process of the cluster, and its BackendId (InvalidBackendId
 * for the postmaster and auxiliary processes).
 */
static bool
ptbm_cluster_member(int pid, int *backend_id)
{
	PGPROC	   *proc;

	*backend_id = InvalidBackendId;
	if (pid == MyProcPid)
	{
		*backend_id = MyBackendId;
		return true;
	}
	if (pid == PostmasterPid)
		return true;
	if (pid <= 0)
		return false;
	proc = BackendPidGetProc(pid);
	if (proc)
	{
		*backend_id = proc->backendId;
		return true;
	}
	return AuxiliaryPidGetProc(pid) != NULL;
}

void
ptbm_proc_resolve(int pid, PtbmProc *p)
{
	int			backend_id;

	if (!ptbm_cluster_member(pid, &backend_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("process %d is not a process of this cluster", pid),
				 errhint("Use the pid of the postmaster, a backend or an auxiliary process, as listed in pg_stat_activity.")));
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->backend_id = backend_id;
	p->tracking = ptbm_ledger_tracking(backend_id);
	p->pagemap = -1;
}

/* pg_stat_activity's name for a backend state */
static const char *
ptbm_state_name(BackendState state)
{
	switch (state)
	{
		case STATE_IDLE:
			return "idle";
		case STATE_RUNNING:
			return "active";
		case STATE_IDLEINTRANSACTION:
			return "idle in transaction";
		case STATE_FASTPATH:
			return "fastpath function call";
		case STATE_IDLEINTRANSACTION_ABORTED:
			return "idle in transaction (aborted)";
		case STATE_DISABLED:
			return "disabled";
		case STATE_UNDEFINED:
			break;
	}
	return NULL;
}

/*
 * The postmaster, then every process pg_stat_activity lists (client
 * backends, background workers, auxiliary processes), from this
 * transaction's snapshot of backend status.  State and application name
 * are shown as pg_stat_activity shows them: to members of
 * pg_read_all_stats and of the process's role.
 */
PtbmProc *
ptbm_procs(int *nprocs)
{
	int			nb = pgstat_fetch_stat_numbackends();
	PtbmProc   *procs = palloc0((nb + 1) * sizeof(PtbmProc));
	bool		all_stats = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
	int			n = 0;

	ptbm_proc_resolve(PostmasterPid, &procs[n]);
	procs[n++].backend_type = "postmaster";
	for (int i = 1; i <= nb; i++)
	{
		LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;
		PtbmProc   *p = &procs[n];
		int			backend_id;

		if (l == NULL)
			continue;
		be = &l->backendStatus;
		/* the status snapshot lasts the transaction: check it is still so */
		if (!ptbm_cluster_member(be->st_procpid, &backend_id))
			continue;
		p->pid = be->st_procpid;
		p->backend_id = backend_id;
		p->tracking = ptbm_ledger_tracking(backend_id);
		p->pagemap = -1;
		p->backend_type = GetBackendTypeDesc(be->st_backendType);
		if (be->st_backendType == B_BG_WORKER)
		{
			/* as pg_stat_activity shows it */
			const char *bgw_type = GetBackgroundWorkerTypeByPid(be->st_procpid);

			if (bgw_type)
				p->backend_type = pstrdup(bgw_type);
		}
		if (all_stats || (OidIsValid(be->st_userid) &&
						  has_privs_of_role(GetUserId(), be->st_userid)))
		{
			p->state = ptbm_state_name(be->st_state);
			if (be->st_appname && be->st_appname[0] != '\0')
				p->appname = pstrdup(be->st_appname);
		}
		n++;
	}
	*nprocs = n;
	return procs;
}

/* ---- its /proc files ----------------------------------------------------------- */

bool
ptbm_proc_gone(const PtbmProc *p, int err)
{
	uint64		kb;

	if (err == ENOENT || err == ESRCH)
		return true;
	return err == EACCES && kmem_status_kb(p->pid, "VmPTE", &kb) <= 0;
}

bool
ptbm_proc_alive(const PtbmProc *p)
{
	int			backend_id;

	return ptbm_cluster_member(p->pid, &backend_id) && backend_id == p->backend_id;
}

int
ptbm_proc_open_file(const PtbmProc *p, const char *file, int flags)
{
	char		path[64];

	/* the same process of the cluster as when it was resolved */
	if (!ptbm_proc_alive(p))
	{
		errno = ESRCH;
		return -1;
	}
	kmem_proc_path(path, sizeof(path), p->pid, file);
	return OpenTransientFile(path, flags | PG_BINARY);
}

bool
ptbm_proc_open(PtbmProc *p)
{
	Assert(p->pagemap < 0);
	p->pagemap = ptbm_proc_open_file(p, "pagemap", O_RDONLY);
	if (p->pagemap >= 0)
		return true;
	if (!ptbm_proc_gone(p, errno))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open the page table of process %d: %m", p->pid)));
	return false;
}

bool
ptbm_proc_close(PtbmProc *p, int r, int err)
{
	if (p->pagemap >= 0)
		CloseTransientFile(p->pagemap);
	p->pagemap = -1;
	if (r >= 0)
		return true;
	if (ptbm_proc_gone(p, err) || kill(p->pid, 0) != 0)
		return false;
	errno = err;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not read the page table of process %d: %m", p->pid)));
	return false;
}

/* ---- what the caller may see ------------------------------------------------ */

/*
 * Frame numbers and kernel page flags help physical-memory attacks; they
 * are shown only to superusers and members of pg_read_server_files, and
 * only if the kernel shows them to the server at all (CAP_SYS_ADMIN).
 */
bool
ptbm_frames_for_caller(void)
{
	static bool said_kernel = false;
	static bool said_role = false;

	if (!kmem_get_caps()->frames_visible)
	{
		if (!said_kernel)
			ereport(NOTICE,
					(errmsg("frame numbers are hidden from the server"),
					 errdetail("The kernel shows frame numbers only to processes with CAP_SYS_ADMIN; pfn, mapcount and flags are NULL.")));
		said_kernel = true;
		return false;
	}
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
	{
		if (!said_role)
			ereport(NOTICE,
					(errmsg("frame numbers are shown only to superusers and members of pg_read_server_files"),
					 errdetail("pfn, mapcount and flags are NULL.")));
		said_role = true;
		return false;
	}
	return true;
}

bool
ptbm_proc_nodes(const PtbmProc *p, const uint64 *addrs, size_t n, int *nodes)
{
	static bool said = false;
	int			err = ENOSYS;

	if (kmem_get_caps()->numa)
	{
		if (kmem_page_nodes(p->pid, addrs, n, nodes) == 0)
			return true;
		err = errno;
		if (err == ESRCH || !ptbm_proc_alive(p))
			return false;		/* gone: the report skips it */
	}
	for (size_t i = 0; i < n; i++)
		nodes[i] = KMEM_NODE_NONE;
	if (!said)
		ereport(NOTICE,
				(errmsg("this kernel reports no NUMA nodes"),
				 err == ENOSYS ?
				 errdetail("It has no move_pages (a kernel without NUMA); numa_node is NULL.") :
				 errdetail("move_pages failed: %s; numa_node is NULL.", strerror(err))));
	said = true;
	return false;
}

/*
 * /proc/kpagecount and /proc/kpageflags are root's files (mode 0400): a
 * server that sees frame numbers through CAP_SYS_ADMIN alone cannot open
 * them.  Then -1, and a notice once per backend saying which column stays
 * NULL.
 */
int
ptbm_open_kpage(const char *file, const char *column)
{
	static bool said_count = false;
	static bool said_flags = false;
	bool	   *said = strcmp(file, "kpagecount") == 0 ? &said_count : &said_flags;
	char		path[32];
	int			fd;

	kmem_kpage_path(path, sizeof(path), file);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0 && !*said)
	{
		ereport(NOTICE,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path),
				 errdetail("Column %s is NULL.", column),
				 errhint("The file is readable by root only: a server that sees frame numbers through CAP_SYS_ADMIN also needs CAP_DAC_READ_SEARCH to read it.")));
		*said = true;
	}
	return fd;
}

/* ---- walks ---------------------------------------------------------------------- */

static int
ptbm_walk_tick(void *arg)
{
	CHECK_FOR_INTERRUPTS();
	return 0;
}

void
ptbm_walk_work(kmem_work *w, size_t chunk_pages, bool categories)
{
	memset(w, 0, sizeof(*w));
	w->vec = palloc(PTBM_WALK_VEC * sizeof(struct page_region));
	w->vec_len = PTBM_WALK_VEC;
	w->ents = palloc(chunk_pages * sizeof(uint64));
	w->ents_len = chunk_pages;
	if (categories)
		w->cats = palloc(chunk_pages * sizeof(uint16));
	w->tick = ptbm_walk_tick;
	w->use_scan = true;
}
