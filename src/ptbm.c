/*-------------------------------------------------------------------------
 *
 * ptbm.c
 *	  ptbm: what the page tables of PostgreSQL backends hold.
 *
 * This file owns the preload: the settings (checked raw before they are
 * defined, so that a bad value stops the server instead of falling back to
 * the default), and the hooks through which the region is mapped before
 * the first fork, the touch ledger gets its shared memory, the region is
 * reset before every generation of children, and write tracking starts in
 * every client backend.  What the hooks do lives in ptbm_region.c,
 * ptbm_ledger.c and ptbm_writes.c.
 *
 * The settings are PGC_POSTMASTER but ptbm.track_writes (SIGHUP); they are
 * read by the postmaster in _PG_init and inherited by every child.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/guc.h"

#include "ptbm_ledger.h"
#include "ptbm_pool.h"
#include "ptbm_region.h"
#include "ptbm_writes.h"

/*
 * From libpq/auth.h, which needs the GSSAPI headers that a PGXS build does
 * not otherwise require.
 */
struct Port;
typedef void (*ClientAuthentication_hook_type) (struct Port *, int);
extern PGDLLIMPORT ClientAuthentication_hook_type ClientAuthentication_hook;

PG_MODULE_MAGIC;

/* ---- GUC variables ---------------------------------------------------- */

static int	ptbm_region_size_kb = 128 * 1024;
static int	ptbm_region_kind = PTBM_SHARED_ANON;

static int	ptbm_huge_pages = PTBM_HUGE_OFF;
static int	ptbm_pool_size_kb = 0;

static const struct config_enum_entry ptbm_eviction_options[] = {
	{"remove", PTBM_EVICT_REMOVE, false},
	{"cooperative", PTBM_EVICT_COOPERATIVE, false},
	{NULL, 0, false}
};
static bool ptbm_track_writes_guc = false;

/* ---- state ------------------------------------------------------------ */

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

void		_PG_init(void);
static void ptbm_check_settings(void);
static void ptbm_shmem_startup(void);
static void ptbm_shmem_request(void);
static void ptbm_client_auth(struct Port *port, int status);
static void ptbm_process_utility(PlannedStmt *pstmt, const char *queryString,
								 bool readOnlyTree, ProcessUtilityContext context,
								 ParamListInfo params, QueryEnvironment *queryEnv,
								 DestReceiver *dest, QueryCompletion *qc);
static bool ptbm_check_enum(const char *name, const struct config_enum_entry *opts,
							const char *hint);

/* ---- module load -------------------------------------------------------- */

void
_PG_init(void)
{
	/*
	 * The region must exist before the first fork; outside the preload
	 * phase ptbm only makes its functions callable, and they report that
	 * the region is missing.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	/*
	 * A custom variable's bad value in postgresql.conf only draws a WARNING
	 * when the variable is defined, and the default is used silently.  An
	 * experiment run on the wrong region is worse than no start: check the
	 * raw values first and refuse to start.
	 */
	ptbm_check_settings();

	DefineCustomIntVariable("ptbm.region_size",
							"Size of the buffer-table region.",
							"Rounded up to the page size; mapped with MAP_NORESERVE, "
							"so untouched pages cost nothing.",
							&ptbm_region_size_kb,
							128 * 1024, 0, INT_MAX,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("ptbm.region_kind",
							 "How the buffer-table region is mapped.",
							 "shared_anon is MAP_SHARED|MAP_ANONYMOUS; the file kinds "
							 "use the file pg_dynshmem/ptbm_region in the data directory.",
							 &ptbm_region_kind,
							 PTBM_SHARED_ANON,
							 ptbm_kind_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("ptbm.huge_pages",
							 "Page size of the buffer-table region.",
							 "thp asks for transparent huge pages (MADV_HUGEPAGE); "
							 "hugetlb maps huge pages from the vm.nr_hugepages pool, "
							 "aligned so that page tables can be shared.",
							 &ptbm_huge_pages,
							 PTBM_HUGE_OFF,
							 ptbm_huge_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("ptbm.track_writes",
							 "Every client backend tracks its writes to the region from its start.",
							 "Each backend registers the region for userfaultfd write-protect "
							 "itself after fork (registration is not inherited).",
							 &ptbm_track_writes_guc,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, ptbm_track_writes_assign, NULL);

	DefineCustomIntVariable("ptbm.pool_size",
							"Memory budget of the buffer pool in the region (0: no pool).",
							"The bytes resident in the pool stay within it; the region can be much larger.",
							&ptbm_pool_size_kb,
							0, 0, INT_MAX,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ptbm.pool_evict_batch",
							"Blocks the buffer pool evicts together when it is full.",
							NULL,
							&ptbm_pool_evict_batch,
							64, 1, 1024,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("ptbm.pool_eviction",
							 "How the buffer pool frees the memory of evicted blocks.",
							 "remove frees it for every process at once (MADV_REMOVE); cooperative "
							 "lets every busy backend drop its own mappings first.",
							 &ptbm_pool_eviction,
							 PTBM_EVICT_REMOVE,
							 ptbm_eviction_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ptbm.pool_cooperative_wait",
							"How long a cooperative eviction waits for busy backends.",
							NULL,
							&ptbm_pool_coop_wait_ms,
							10, 0, 10000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("ptbm");

	ptbm_region_map((Size) ptbm_region_size_kb * 1024, (PtbmKind) ptbm_region_kind,
					(PtbmHuge) ptbm_huge_pages);
	ptbm_ledger_size(ptbm_region.pages);
	ptbm_pool_map((Size) ptbm_pool_size_kb * 1024);

	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = ptbm_client_auth;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = ptbm_process_utility;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ptbm_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ptbm_shmem_startup;
}

/*
 * Validates the raw settings before they are defined; see _PG_init.
 */
static void
ptbm_check_settings(void)
{
	const char *raw;

	raw = GetConfigOption("ptbm.region_size", true, false);
	if (raw != NULL)
	{
		int			kb;
		const char *hint = NULL;

		if (!parse_int(raw, &kb, GUC_UNIT_KB, &hint) || kb < 0)
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for parameter \"%s\": \"%s\"",
							"ptbm.region_size", raw),
					 hint ? errdetail("%s", hint) : 0,
					 errhint("Use a size from 4kB to 2047GB, such as \"128MB\" or \"1TB\".")));
		if (kb == 0)
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ptbm.region_size must be at least one page"),
					 errhint("Use a size from 4kB to 2047GB, such as \"128MB\" or \"1TB\".")));
	}

	(void) ptbm_check_enum("ptbm.region_kind", ptbm_kind_options,
						   "Valid kinds are shared_anon, private_anon, shared_memfd, shared_file and private_file.");
	(void) ptbm_check_enum("ptbm.huge_pages", ptbm_huge_options,
						   "Valid values are off, thp and hugetlb.");
	(void) ptbm_check_enum("ptbm.pool_eviction", ptbm_eviction_options,
						   "Valid methods are remove and cooperative.");
	raw = GetConfigOption("ptbm.pool_size", true, false);
	if (raw != NULL)
	{
		int			kb;
		const char *hint = NULL;

		if (!parse_int(raw, &kb, GUC_UNIT_KB, &hint) || kb < 0)
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for parameter \"%s\": \"%s\"",
							"ptbm.pool_size", raw),
					 hint ? errdetail("%s", hint) : 0,
					 errhint("Use 0 (no pool) or a memory size such as \"256MB\", at most ptbm.region_size.")));
	}
}

/* FATAL unless the raw value of an enum setting is one of its options. */
static bool
ptbm_check_enum(const char *name, const struct config_enum_entry *opts,
				const char *hint)
{
	const char *raw = GetConfigOption(name, true, false);

	if (raw == NULL)
		return true;
	for (const struct config_enum_entry *e = opts; e->name; e++)
		if (pg_strcasecmp(raw, e->name) == 0)
			return true;
	ereport(FATAL,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for parameter \"%s\": \"%s\"", name, raw),
			 errhint("%s", hint)));
	return false;
}

/* ---- write tracking from backend start ----------------------------------------- */

/*
 * Runs in each client backend after authentication: the earliest point at
 * which a backend of its own can register the region (fork does not
 * inherit userfaultfd registrations).  Nothing here may fail the
 * connection; ptbm_tracking_login never raises.
 */
static void
ptbm_client_auth(struct Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status == STATUS_OK)
		ptbm_tracking_login(ptbm_track_writes_guc);
}

/*
 * DISCARD ALL and RESET ALL hand a pooled connection to its next user: the
 * previous user's written set must not reach it, so tracking starts again
 * as at login.
 */
static void
ptbm_process_utility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	bool		session_reset;

	session_reset = (IsA(stmt, DiscardStmt) && ((DiscardStmt *) stmt)->target == DISCARD_ALL) ||
		(IsA(stmt, VariableSetStmt) && ((VariableSetStmt *) stmt)->kind == VAR_RESET_ALL);

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
								  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	if (session_reset)
		ptbm_tracking_session_reset(ptbm_track_writes_guc);
}

/* ---- shared memory ------------------------------------------------------ */

static void
ptbm_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(ptbm_ledger_shmem_size());
	if (ptbm_pool_enabled())
	{
		RequestAddinShmemSpace(ptbm_pool_shmem_size());
		RequestNamedLWLockTranche("ptbm pool", 2);
	}
}

/*
 * In the postmaster at start and after every crash (with no child alive),
 * and in every child when it attaches.
 */
static void
ptbm_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	if (ptbm_region.base == NULL)
		return;
	ptbm_ledger_attach();
	ptbm_pool_shmem_attach();
	if (!IsUnderPostmaster)
	{
		bool		after_crash = ptbm_region.generation > 0;

		ptbm_region_reset();
		if (after_crash)
			ptbm_pool_reset();
	}
}
