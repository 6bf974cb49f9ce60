/*-------------------------------------------------------------------------
 *
 * ptbm_writes.h
 *	  Per-backend write tracking: the dirty bit that is not shared.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_writes.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_WRITES_H
#define PTBM_WRITES_H

#include "ptbm_ledger.h"

/* what this kernel offers (probed once; inherited from the postmaster) */
extern PtbmTracking ptbm_tracking_available(void);
extern const char *ptbm_tracking_name(PtbmTracking t);
/* whether a pagemap entry of a tracking process says "written" */
extern bool ptbm_entry_written(PtbmTracking t, uint64 ent);

/*
 * Before the calling backend touches count region pages from first: while
 * it tracks, their chunks are write-protected first, so that every page it
 * maps is tracked.  Every access to the region goes through this.
 */
extern void ptbm_tracking_prepare(int64 first, int64 count);

/* whether this backend tracks with uffd-wp (ptbm_tracking_prepare has work) */
extern bool ptbm_tracking_active;

/* ptbm.track_writes: its assign hook; the login path; DISCARD ALL */
extern void ptbm_track_writes_assign(bool newval, void *extra);
extern void ptbm_tracking_login(bool track);
extern void ptbm_tracking_session_reset(bool track);

#endif							/* PTBM_WRITES_H */
