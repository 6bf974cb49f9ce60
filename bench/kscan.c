/*-------------------------------------------------------------------------
 *
 * kscan.c
 *	  The benchmark's independent baseline for ptbm_backends().
 *
 * For the given processes and the region [start, end) it computes the same
 * columns as ptbm_backends(): present, exclusive, shared, swapped (pages),
 * rss, pss, shared_clean, shared_dirty, private_clean, private_dirty and the
 * process's VmPTE (bytes), straight from the kernel.  It shares no code with
 * src/kmem.c; the kernel ABI comes from src/kabi.h (one definition of it).
 *
 * Two methods:
 *
 *   scan   (the method of the brief) PAGEMAP_SCAN for the present/swapped
 *          ranges; pagemap entries are pread only for windows around the
 *          present ranges, for the exclusive bit; smaps of the region's VMA
 *          for what only smaps has (Pss, clean/dirty); status for VmPTE.
 *
 *   smaps  (the kernel's floor) smaps must be read anyway for Pss and the
 *          clean/dirty split, and for a shared mapping of base pages it also
 *          says how many pages are present (Rss), exclusive (Private_*: the
 *          page's mapcount is 1, the very test behind pagemap bit 56) and
 *          shared (Shared_*).  So one smaps read plus status gives every
 *          column.  A shared mapping never holds swap entries in its page
 *          table (a swapped-out shmem page has no PTE), so swapped is 0 there
 *          as in pagemap.  Used only where that holds: a shared VMA ("sh" in
 *          VmFlags) of 4 kB pages with no PMD-mapped huge pages; otherwise it
 *          falls back to the scan method.  Private mappings may map the zero
 *          page, which pagemap shows present and smaps does not count.
 *
 * Usage: kscan [-m scan|smaps] [-n reps] [-g gap_pages] [-v ranges_per_scan]
 *              [-e entries_per_pread] START END PID...
 *   START and END are addresses (0x... or decimal).  Prints one line per pid,
 *   then with -n the median time of one pass over all pids.
 * Built with -DKSCAN_NO_MAIN it is a library for bench/bdrv.c.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  bench/kscan.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kabi.h"
#include "kscan.h"

#define PS 4096ULL
#define VEC_MAX 65536
#define PTE_TABLE_SPAN (512 * PS)	/* address span of one x86-64 PTE table */
#define ENTS_MAX (1024 * 1024)
#define SMAPS_BUF (256 * 1024)

int			kscan_gap_pages = 512;	/* present ranges closer than this share a pread */
int			kscan_vec_len = 1024;	/* ranges per PAGEMAP_SCAN call */
int			kscan_ents_len = 65536; /* pagemap entries per pread (512 kB) */

static struct page_region *vec;
static uint64_t *ents;
static char *sbuf;

static int
ensure_buffers(void)
{
	if (!vec)
		vec = malloc(VEC_MAX * sizeof(*vec));
	if (!ents)
		ents = malloc(ENTS_MAX * sizeof(*ents));
	if (!sbuf)
		sbuf = malloc(SMAPS_BUF + 1);
	return (vec && ents && sbuf) ? 0 : -1;
}

/* ---- pagemap ------------------------------------------------------------ */

/* count exclusive among present entries of [a, b) by preads */
static int
count_exclusive(int fd, uint64_t a, uint64_t b, uint64_t *excl)
{
	while (a < b)
	{
		uint64_t	n = (b - a) / PS;
		ssize_t		r;

		if (n > (uint64_t) kscan_ents_len)
			n = kscan_ents_len;
		r = pread(fd, ents, n * 8, (off_t) (a / PS) * 8);
		if (r <= 0)
			return -1;
		n = (uint64_t) r / 8;
		for (uint64_t i = 0; i < n; i++)
			*excl += (ents[i] & (PM_PRESENT | PM_MMAP_EXCLUSIVE)) == (PM_PRESENT | PM_MMAP_EXCLUSIVE);
		a += n * PS;
	}
	return 0;
}

static int
pagemap_counts(int pid, uint64_t start, uint64_t end, kscan_row *row)
{
	char		path[64];
	int			fd;
	uint64_t	next = start;

	uint64_t	last_table = UINT64_MAX;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;)
	{
		struct pm_scan_arg arg;
		int			n;
		uint64_t	ws,
					we,
					walk_end;

		memset(&arg, 0, sizeof(arg));
		arg.size = sizeof(arg);
		arg.start = next;
		arg.end = end;
		arg.vec = (uint64_t) (uintptr_t) vec;
		arg.vec_len = kscan_vec_len;
		arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
		arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
		n = ioctl(fd, PAGEMAP_SCAN, &arg);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		for (int i = 0; i < n; i++)
		{
			uint64_t	np = (vec[i].end - vec[i].start) / PS;

			uint64_t	t0 = vec[i].start / PTE_TABLE_SPAN,
						t1 = (vec[i].end - 1) / PTE_TABLE_SPAN;

			if (vec[i].categories & PAGE_IS_PRESENT)
				row->present += np;
			else
				row->swapped += np;
			/* page-table pages holding these entries (ranges come in order) */
			row->pte_tables += t1 - t0 + (t0 != last_table);
			last_table = t1;
		}
		/* the exclusive bit: pread windows of nearby present ranges */
		ws = vec[0].start;
		we = vec[0].end;
		for (int i = 1; i <= n; i++)
		{
			if (i < n && !(vec[i].categories & PAGE_IS_PRESENT))
				continue;
			if (i < n && vec[i].start - we <= kscan_gap_pages * PS)
			{
				we = vec[i].end;
				continue;
			}
			if (count_exclusive(fd, ws, we, &row->exclusive) < 0)
			{
				close(fd);
				return -1;
			}
			if (i < n)
			{
				ws = vec[i].start;
				we = vec[i].end;
			}
		}
		/* a short batch ends the walk (walk_end may be stale then) */
		walk_end = arg.walk_end;
		if (walk_end < vec[n - 1].end)
			walk_end = vec[n - 1].end;
		if (n < kscan_vec_len || walk_end >= end || walk_end <= next)
			break;
		next = walk_end;
	}
	close(fd);
	row->shared = row->present - row->exclusive;
	return 0;
}

/* ---- smaps and status ----------------------------------------------------- */

static uint64_t
kb_after(const char *p)
{
	while (*p == ' ')
		p++;
	return strtoull(p, NULL, 10);
}

/* header lines of smaps start with "start-end " in hex */
static bool
is_header(const char *line, uint64_t *s, uint64_t *e)
{
	char	   *q;

	if (!((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')))
		return false;
	*s = strtoull(line, &q, 16);
	if (*q != '-')
		return false;
	*e = strtoull(q + 1, &q, 16);
	return *q == ' ';
}

/*
 * Sums the smaps fields of the VMAs intersecting [start, end), reading the
 * file in large chunks and stopping after the region.
 */
static int
smaps_counts(int pid, uint64_t start, uint64_t end, kscan_row *row,
			 bool *base_pages, bool *shared_vma)
{
	char		path[64];
	int			fd;
	size_t		have = 0;
	bool		inside = false;
	bool		done = false;
	int			nvmas = 0;

	*base_pages = true;
	*shared_vma = true;
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (!done)
	{
		ssize_t		r = read(fd, sbuf + have, SMAPS_BUF - have);
		char	   *line,
				   *nl;

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		have += r;
		sbuf[have] = '\0';
		line = sbuf;
		while (!done && (nl = memchr(line, '\n', sbuf + have - line)) != NULL)
		{
			uint64_t	s,
						e;

			*nl = '\0';
			if (is_header(line, &s, &e))
			{
				if (s >= end)
					done = true;
				inside = s < end && e > start;
				nvmas += inside;
			}
			else if (inside)
			{
				switch (line[0])
				{
					case 'R':
						if (strncmp(line, "Rss:", 4) == 0)
							row->rss += kb_after(line + 4) * 1024;
						break;
					case 'P':
						if (strncmp(line, "Pss:", 4) == 0)
							row->pss += kb_after(line + 4) * 1024;
						else if (strncmp(line, "Private_Clean:", 14) == 0)
							row->private_clean += kb_after(line + 14) * 1024;
						else if (strncmp(line, "Private_Dirty:", 14) == 0)
							row->private_dirty += kb_after(line + 14) * 1024;
						break;
					case 'S':
						if (strncmp(line, "Shared_Clean:", 13) == 0)
							row->shared_clean += kb_after(line + 13) * 1024;
						else if (strncmp(line, "Shared_Dirty:", 13) == 0)
							row->shared_dirty += kb_after(line + 13) * 1024;
						else if (strncmp(line, "Swap:", 5) == 0)
							row->swap_kb += kb_after(line + 5);
						else if (strncmp(line, "ShmemPmdMapped:", 15) == 0 && kb_after(line + 15) != 0)
							*base_pages = false;
						break;
					case 'K':
						if (strncmp(line, "KernelPageSize:", 15) == 0 && kb_after(line + 15) != 4)
							*base_pages = false;
						break;
					case 'M':
						if (strncmp(line, "MMUPageSize:", 12) == 0 && kb_after(line + 12) != 4)
							*base_pages = false;
						break;
					case 'F':
						if (strncmp(line, "FilePmdMapped:", 14) == 0 && kb_after(line + 14) != 0)
							*base_pages = false;
						break;
					case 'A':
						if (strncmp(line, "AnonHugePages:", 14) == 0 && kb_after(line + 14) != 0)
							*base_pages = false;
						break;
					case 'V':
						if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line + 8, " sh") == NULL)
							*shared_vma = false;
						break;
				}
			}
			line = nl + 1;
		}
		/* keep the partial last line */
		have = sbuf + have - line;
		memmove(sbuf, line, have);
	}
	close(fd);
	if (nvmas == 0)
	{
		*shared_vma = false;
		errno = ENOENT;
		return -1;
	}
	return 0;
}

static int
status_vmpte(int pid, uint64_t *bytes)
{
	char		path[64];
	char		buf[4096];
	int			fd;
	ssize_t		r;
	char	   *p;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = '\0';
	p = strstr(buf, "\nVmPTE:");
	*bytes = p ? kb_after(p + 7) * 1024 : 0;
	return 0;
}

/* ---- one process ---------------------------------------------------------- */

int
kscan_pid(int pid, uint64_t start, uint64_t end, int method, kscan_row *row)
{
	bool		base_pages,
				shared_vma;

	memset(row, 0, sizeof(*row));
	row->pid = pid;
	if (ensure_buffers() < 0)
		return -1;
	if (method == KSCAN_SCAN && pagemap_counts(pid, start, end, row) < 0)
		return -1;
	if (smaps_counts(pid, start, end, row, &base_pages, &shared_vma) < 0)
		return -1;
	if (method == KSCAN_SMAPS)
	{
		if (base_pages && shared_vma)
		{
			row->present = row->rss / PS;
			row->exclusive = (row->private_clean + row->private_dirty) / PS;
			row->shared = (row->shared_clean + row->shared_dirty) / PS;
			row->swapped = 0;
		}
		else
		{
			row->fallback = true;
			if (pagemap_counts(pid, start, end, row) < 0)
				return -1;
		}
	}
	if (status_vmpte(pid, &row->page_table) < 0)
		return -1;
	return 0;
}

double
kscan_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int
kscan_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

double
kscan_median(const double *v, int n)
{
	double	   *c = malloc(n * sizeof(double));
	double		m;

	memcpy(c, v, n * sizeof(double));
	qsort(c, n, sizeof(double), kscan_cmp_double);
	m = (n % 2) ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

#ifndef KSCAN_NO_MAIN

int
main(int argc, char **argv)
{
	int			method = KSCAN_SCAN;
	int			reps = 0;
	int			opt;
	uint64_t	start,
				end;
	int			npids;
	kscan_row	row;

	while ((opt = getopt(argc, argv, "m:n:g:v:e:")) != -1)
	{
		switch (opt)
		{
			case 'm':
				method = strcmp(optarg, "smaps") == 0 ? KSCAN_SMAPS : KSCAN_SCAN;
				break;
			case 'n':
				reps = atoi(optarg);
				break;
			case 'g':
				kscan_gap_pages = atoi(optarg);
				break;
			case 'v':
				kscan_vec_len = atoi(optarg);
				if (kscan_vec_len < 1 || kscan_vec_len > VEC_MAX)
					kscan_vec_len = 1024;
				break;
			case 'e':
				kscan_ents_len = atoi(optarg);
				if (kscan_ents_len < 512 || kscan_ents_len > ENTS_MAX)
					kscan_ents_len = 65536;
				break;
			default:
				fprintf(stderr, "usage: kscan [-m scan|smaps] [-n reps] [-g gap_pages] [-v ranges_per_scan] [-e entries_per_pread] START END PID...\n");
				return 2;
		}
	}
	if (argc - optind < 3)
	{
		fprintf(stderr, "usage: kscan [-m scan|smaps] [-n reps] [-g gap_pages] START END PID...\n");
		return 2;
	}
	start = strtoull(argv[optind], NULL, 0);
	end = strtoull(argv[optind + 1], NULL, 0);
	npids = argc - optind - 2;

	printf("pid|present|exclusive|shared|swapped|rss|pss|shared_clean|shared_dirty|private_clean|private_dirty|page_table\n");
	for (int i = 0; i < npids; i++)
	{
		int			pid = atoi(argv[optind + 2 + i]);

		if (kscan_pid(pid, start, end, method, &row) < 0)
		{
			fprintf(stderr, "kscan: pid %d: %s\n", pid, strerror(errno));
			continue;
		}
		printf("%d|%" PRIu64 "|%" PRIu64 "|%" PRIu64 "|%" PRIu64 "|%" PRIu64 "|%" PRIu64
			   "|%" PRIu64 "|%" PRIu64 "|%" PRIu64 "|%" PRIu64 "|%" PRIu64 "\n",
			   pid, row.present, row.exclusive, row.shared, row.swapped, row.rss,
			   row.pss, row.shared_clean, row.shared_dirty, row.private_clean,
			   row.private_dirty, row.page_table);
	}
	if (reps > 0)
	{
		double	   *t = malloc(reps * sizeof(double));

		for (int r = 0; r < reps; r++)
		{
			double		t0 = kscan_now_ms();

			for (int i = 0; i < npids; i++)
				(void) kscan_pid(atoi(argv[optind + 2 + i]), start, end, method, &row);
			t[r] = kscan_now_ms() - t0;
		}
		qsort(t, reps, sizeof(double), kscan_cmp_double);
		printf("median_ms %.3f over %d passes of %d pids\n", t[reps / 2], reps, npids);
	}
	return 0;
}
#endif
