/*-------------------------------------------------------------------------
 *
 * kscan.h
 *	  The benchmark's baseline for ptbm_backends(); see kscan.c
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  bench/kscan.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KSCAN_H
#define KSCAN_H

#include <stdbool.h>
#include <stdint.h>

enum
{
	KSCAN_SCAN = 0,				/* PAGEMAP_SCAN + pagemap windows + smaps + status */
	KSCAN_SMAPS = 1				/* smaps + status only (shared base-page VMAs) */
};

typedef struct kscan_row
{
	int			pid;
	uint64_t	present,
				exclusive,
				shared,
				swapped;		/* pages */
	uint64_t	rss,
				pss,
				shared_clean,
				shared_dirty,
				private_clean,
				private_dirty,
				page_table;		/* bytes */
	uint64_t	swap_kb;		/* smaps Swap, kB (not a ptbm column) */
	uint64_t	pte_tables;		/* scan method: PTE tables (2 MB slices) with
								 * present or swapped entries (not a ptbm column) */
	bool		fallback;		/* smaps method fell back to the scan */
} kscan_row;

extern int	kscan_gap_pages;
extern int	kscan_vec_len;
extern int	kscan_ents_len;
extern int	kscan_pid(int pid, uint64_t start, uint64_t end, int method, kscan_row *row);
extern double kscan_now_ms(void);
/* the median of n values (v is left as it is), and the comparator it sorts with */
extern double kscan_median(const double *v, int n);
extern int	kscan_cmp_double(const void *a, const void *b);

#endif
