/*-------------------------------------------------------------------------
 *
 * ptbm_ledger.c
 *	  The touch ledger: per backend slot (BackendId), one state byte (how
 *	  the backend tracks its writes, so that nobody needs to read its smaps
 *	  to know) and one bit per granule of region pages that the backend
 *	  accessed through ptbm (ptbm_touch, ptbm_read, ptbm_write).  It tells a
 *	  page a backend faulted in itself from one that became present
 *	  otherwise (fault-around, shared page tables).
 *
 * A slot is written only by its own backend and cleared when the backend
 * exits (before_shmem_exit), so the next owner finds it clean; readers
 * take it as it is, a snapshot like every other report.  No lock.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_ledger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "ptbm_ledger.h"

/* at most this many ledger bytes per backend slot */
#define PTBM_LEDGER_MAX_BYTES	(64 * 1024)

int64		ptbm_ledger_granule = 1;
static Size ptbm_ledger_bytes;	/* per slot: the state byte, then the bitmap */
static uint8 *ptbm_ledger;		/* (MaxBackends + 1) slots */
static bool ptbm_ledger_exit_registered = false;

void
ptbm_ledger_size(int64 region_pages)
{
	/* one bit per granule, at most a fixed size a slot */
	ptbm_ledger_granule = (region_pages + PTBM_LEDGER_MAX_BYTES * 8 - 1) /
		(PTBM_LEDGER_MAX_BYTES * 8);
	ptbm_ledger_bytes = 1 + ((region_pages - 1) / ptbm_ledger_granule) / 8 + 1;
}

Size
ptbm_ledger_shmem_size(void)
{
	return mul_size(MaxBackends + 1, ptbm_ledger_bytes);
}

/* In every process's shmem_startup_hook; initialised by the first. */
void
ptbm_ledger_attach(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ptbm_ledger = ShmemInitStruct("ptbm touch ledger", ptbm_ledger_shmem_size(), &found);
	if (!found)
		memset(ptbm_ledger, 0, ptbm_ledger_shmem_size());
	LWLockRelease(AddinShmemInitLock);
}

static void
ptbm_ledger_clear(int code, Datum arg)
{
	if (ptbm_ledger && MyBackendId != InvalidBackendId)
		memset(ptbm_ledger + MyBackendId * ptbm_ledger_bytes, 0, ptbm_ledger_bytes);
}

/* The calling backend's slot, or NULL; its owner clears it at exit. */
static uint8 *
ptbm_ledger_own_slot(void)
{
	if (ptbm_ledger == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId > MaxBackends)
		return NULL;
	if (!ptbm_ledger_exit_registered)
	{
		/* the slot is clean on entry: every earlier owner cleared it */
		before_shmem_exit(ptbm_ledger_clear, (Datum) 0);
		ptbm_ledger_exit_registered = true;
	}
	return ptbm_ledger + MyBackendId * ptbm_ledger_bytes;
}

void
ptbm_ledger_mark(int64 first, int64 count)
{
	uint8	   *slot = ptbm_ledger_own_slot();

	if (slot == NULL || count <= 0)
		return;
	for (int64 g = first / ptbm_ledger_granule;
		 g <= (first + count - 1) / ptbm_ledger_granule; g++)
		slot[1 + (g >> 3)] |= (uint8) (1 << (g & 7));
}

void
ptbm_ledger_set_tracking(PtbmTracking state)
{
	uint8	   *slot = ptbm_ledger_own_slot();

	if (slot)
		slot[0] = (uint8) state;
}

static const uint8 *
ptbm_ledger_slot(int backend_id)
{
	if (ptbm_ledger == NULL || backend_id == InvalidBackendId ||
		backend_id > MaxBackends)
		return NULL;
	return ptbm_ledger + backend_id * ptbm_ledger_bytes;
}

PtbmTracking
ptbm_ledger_tracking(int backend_id)
{
	const uint8 *slot = ptbm_ledger_slot(backend_id);

	return slot ? (PtbmTracking) slot[0] : PTBM_TRACK_NONE;
}

const uint8 *
ptbm_ledger_bits(int backend_id)
{
	const uint8 *slot = ptbm_ledger_slot(backend_id);

	return slot ? slot + 1 : NULL;
}
