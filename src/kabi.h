/*-------------------------------------------------------------------------
 *
 * kabi.h
 *	  Linux ABI that the installed kernel headers may lack.
 *
 * Debian 12 ships linux-libc-dev 6.1 while the machines run a newer kernel.
 * Everything ptbm needs from after 6.1 is defined here, once, each item
 * guarded so that newer headers win.  Support is always detected at run time
 * (see kmem_caps()); a definition here only lets the code compile.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/kabi.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PTBM_KABI_H
#define PTBM_KABI_H

#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>

/* ---- /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) */
#define PM_PFN_MASK			((UINT64_C(1) << 55) - 1)
#define PM_SOFT_DIRTY		(UINT64_C(1) << 55)
#define PM_MMAP_EXCLUSIVE	(UINT64_C(1) << 56)
#define PM_UFFD_WP			(UINT64_C(1) << 57)
#define PM_FILE				(UINT64_C(1) << 61)
#define PM_SWAP				(UINT64_C(1) << 62)
#define PM_PRESENT			(UINT64_C(1) << 63)
#define PM_SWAP_TYPE(e)		((e) & 0x1f)	/* of a swap entry's frame field */

/* ---- PAGEMAP_SCAN ioctl (Linux 6.7) */
#ifndef PAGEMAP_SCAN

#define PAGE_IS_WPALLOWED	(1 << 0)
#define PAGE_IS_WRITTEN		(1 << 1)
#define PAGE_IS_FILE		(1 << 2)
#define PAGE_IS_PRESENT		(1 << 3)
#define PAGE_IS_SWAPPED		(1 << 4)
#define PAGE_IS_PFNZERO		(1 << 5)
#define PAGE_IS_HUGE		(1 << 6)
#define PAGE_IS_SOFT_DIRTY	(1 << 7)

struct page_region
{
	uint64_t	start;
	uint64_t	end;
	uint64_t	categories;
};

#define PM_SCAN_WP_MATCHING		(1 << 0)
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)

struct pm_scan_arg
{
	uint64_t	size;
	uint64_t	flags;
	uint64_t	start;
	uint64_t	end;
	uint64_t	walk_end;
	uint64_t	vec;
	uint64_t	vec_len;
	uint64_t	max_pages;
	uint64_t	category_inverted;
	uint64_t	category_mask;
	uint64_t	category_anyof_mask;
	uint64_t	return_mask;
};

#define PAGEMAP_SCAN	_IOWR('f', 16, struct pm_scan_arg)

#endif							/* PAGEMAP_SCAN */

/* ---- userfaultfd asynchronous write-protect (Linux 6.7) */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1 << 15)
#endif

/* ---- madvise advice newer than the headers */
#ifndef MADV_COLD
#define MADV_COLD		20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif

#endif							/* PTBM_KABI_H */
