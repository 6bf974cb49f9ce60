/*-------------------------------------------------------------------------
 *
 * write_tracking.c
 *	  What per-process write tracking (userfaultfd asynchronous
 * write-protect, read with PAGEMAP_SCAN) costs, measured in one process on
 * a MAP_SHARED|MAP_ANONYMOUS region as ptbm maps it.
 *
 *   write_tracking [MB] [runs]      (default 1024 MB, 5 runs; medians)
 *
 * Figures: ns per first write to a page already mapped, untracked (baseline)
 * and tracked (after protection); protecting the region; scanning it for
 * written pages; scanning and resetting in one walk; page-table bytes the
 * protection builds.  Uses ptbm's kernel interface (src/kmem.c).
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  bench/write_tracking.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kmem.h"
#include "kscan.h"

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void
write_all(char *base, size_t pages, size_t ps, char val)
{
	for (size_t i = 0; i < pages; i++)
		((volatile char *) base)[i * ps] = val;
}

static long
scan_written(int pm, char *base, size_t len, int reset, struct page_region *vec, size_t vl)
{
	kmem_scan	s;
	ssize_t		n;
	long		pages = 0;

	kmem_scan_init(&s, pm, (uint64_t) (uintptr_t) base, (uint64_t) (uintptr_t) base + len,
				   PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN, 0, 0, PAGE_IS_WRITTEN);
	if (reset)
		kmem_scan_set_flags(&s, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC);
	while ((n = kmem_scan_step(&s, vec, vl)) > 0)
		for (ssize_t k = 0; k < n; k++)
			pages += (vec[k].end - vec[k].start) / kmem_page_size();
	return n < 0 ? -1 : pages;
}

int
main(int argc, char **argv)
{
	size_t		mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	int			runs = argc > 2 ? atoi(argv[2]) : 5;
	size_t		ps = kmem_page_size();
	size_t		len = mb << 20;
	size_t		pages = len / ps;
	double		base_ns[64],
				wp_ns[64],
				protect_ms[64],
				scan_ms[64],
				reset_ms[64],
				pte_kb[64];
	struct page_region *vec = malloc(4096 * sizeof(*vec));
	char	   *base;
	int			pm;

	if (runs < 1 || runs > 64)
		runs = 5;
	if (!kmem_get_caps()->uffd_wp_async)
	{
		printf("write tracking: this kernel has no userfaultfd async write-protect\n");
		return 0;
	}
	pm = kmem_pagemap_open(0);
	if (pm < 0)
	{
		perror("pagemap");
		return 1;
	}

	for (int r = 0; r < runs; r++)
	{
		double		t0;
		uint64_t	pte0 = 0,
					pte1 = 0;
		int			uffd;

		/* a fresh region each run: protection leaves PTEs read-only behind */
		base = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base == MAP_FAILED)
		{
			perror("mmap");
			return 1;
		}

		/* page tables that protecting an untouched region builds */
		kmem_status_kb(0, "VmPTE", &pte0);
		uffd = kmem_uffd_wp_start(base, len);
		kmem_status_kb(0, "VmPTE", &pte1);
		pte_kb[r] = (double) pte1 - (double) pte0;
		kmem_uffd_wp_stop(uffd, base, len);
		munmap(base, len);
		base = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		write_all(base, pages, ps, 1);	/* every page exists, mapped writable */

		/* baseline: a write to a mapped, writable page, same access pattern */
		t0 = now_ns();
		write_all(base, pages, ps, (char) r);
		base_ns[r] = (now_ns() - t0) / pages;

		t0 = now_ns();
		uffd = kmem_uffd_wp_start(base, len);
		protect_ms[r] = (now_ns() - t0) / 1e6;
		if (uffd < 0)
		{
			perror("uffd");
			return 1;
		}

		/* the first write after protection: the kernel unprotects the PTE */
		t0 = now_ns();
		write_all(base, pages, ps, (char) r);
		wp_ns[r] = (now_ns() - t0) / pages;

		t0 = now_ns();
		if (scan_written(pm, base, len, 0, vec, 4096) != (long) pages)
			fprintf(stderr, "scan: unexpected count\n");
		scan_ms[r] = (now_ns() - t0) / 1e6;
		t0 = now_ns();
		if (scan_written(pm, base, len, 1, vec, 4096) != (long) pages)
			fprintf(stderr, "reset: unexpected count\n");
		reset_ms[r] = (now_ns() - t0) / 1e6;
		if (scan_written(pm, base, len, 0, vec, 4096) != 0)
			fprintf(stderr, "after reset: pages still written\n");
		kmem_uffd_wp_stop(uffd, base, len);
		munmap(base, len);
	}

	printf("write tracking, %zu MB region (%zu pages), median of %d runs\n", mb, pages, runs);
	printf("| figure | value |\n|---|---|\n");
	printf("| write to a mapped page, untracked (baseline) | %.1f ns |\n", kscan_median(base_ns, runs));
	printf("| first write after protection (tracked) | %.1f ns |\n", kscan_median(wp_ns, runs));
	printf("| ratio tracked / untracked | %.1fx |\n", kscan_median(wp_ns, runs) / kscan_median(base_ns, runs));
	printf("| protect the whole region (register + write-protect) | %.2f ms |\n", kscan_median(protect_ms, runs));
	printf("| scan for written pages (all written) | %.2f ms |\n", kscan_median(scan_ms, runs));
	printf("| scan and reset in one walk | %.2f ms |\n", kscan_median(reset_ms, runs));
	printf("| page tables built by protecting the untouched region | %.0f kB (%.0f kB per GB) |\n",
		   kscan_median(pte_kb, runs), kscan_median(pte_kb, runs) * 1024.0 / mb);
	return 0;
}
