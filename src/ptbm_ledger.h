/*-------------------------------------------------------------------------
 *
 * ptbm_ledger.h
 *	  The touch ledger: which region pages each backend accessed itself,
 *	  and how it tracks its writes.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/ptbm_ledger.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_LEDGER_H
#define PTBM_LEDGER_H

/* how a backend tracks its writes: its slot's state byte */
typedef enum PtbmTracking
{
	PTBM_TRACK_NONE = 0,
	PTBM_TRACK_UFFD = 1,		/* userfaultfd asynchronous write-protect */
	PTBM_TRACK_SOFT_DIRTY = 2	/* soft-dirty bits, where the kernel has them */
} PtbmTracking;

/* region pages per bit of a backend's bitmap */
extern int64 ptbm_ledger_granule;

/* postmaster: sizes (from the region) and requests the shared memory */
extern void ptbm_ledger_size(int64 region_pages);
extern Size ptbm_ledger_shmem_size(void);
extern void ptbm_ledger_attach(void);

/* the calling backend accessed count pages from first */
extern void ptbm_ledger_mark(int64 first, int64 count);
/* a backend's bitmap (bit g: granule g), or NULL when unknown */
extern const uint8 *ptbm_ledger_bits(int backend_id);
/* the calling backend's, and any backend's, write-tracking state */
extern void ptbm_ledger_set_tracking(PtbmTracking state);
extern PtbmTracking ptbm_ledger_tracking(int backend_id);

#endif							/* PTBM_LEDGER_H */
