/*-------------------------------------------------------------------------
 *
 * numa_touch.c
 *	  What it costs a fresh backend to learn the NUMA node of every page of
 *	  a shared_buffers-like segment, two ways:
 *	    ptbm:     move_pages on the backend from another process, which
 *	              reads its page table and touches nothing;
 *	    touch:    what pg_buffercache_numa (PostgreSQL 18) does in the
 *	              calling backend: read a byte of every page, so that
 *	              move_pages on itself has a PTE to report, then ask.
 *	  A MAP_SHARED|MAP_ANONYMOUS segment of SIZE MB is mapped before fork, as
 *	  the postmaster maps PostgreSQL's; USED percent of it is written first
 *	  (the buffers in use) by the parent.  ptbm asks the backend and the
 *	  parent (as ptbm_buffer_ptes(NULL) asks every process).  Prints, for
 *	  each way, the time, the backend's
 *	  page-table growth (VmPTE), its Rss growth in the segment and how much
 *	  new shared memory the machine allocated (Shmem).
 *
 *	  cc -O2 -o numa_touch bench/numa_touch.c && ./numa_touch SIZE_MB USED_PCT
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  bench/numa_touch.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long
status_kb(pid_t pid, const char *key)
{
	char		path[64],
				line[256];
	FILE	   *f;
	long		v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = atol(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return v;
}

static long
meminfo_kb(const char *key)
{
	char		line[256];
	FILE	   *f = fopen("/proc/meminfo", "r");
	long		v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':')
			v = atol(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return v;
}

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* nodes of n pages of pid (0: self); returns how many have a node */
static long
ask(pid_t pid, char *base, long n, long ps)
{
	enum { CHUNK = 256 };
	void	   *pages[CHUNK];
	int			status[CHUNK];
	long		with = 0;

	for (long i = 0; i < n; i += CHUNK)
	{
		long		k = n - i < CHUNK ? n - i : CHUNK;

		for (long j = 0; j < k; j++)
			pages[j] = base + (i + j) * ps;
		if (syscall(SYS_move_pages, pid, k, pages, NULL, status, 0) != 0)
		{
			perror("move_pages");
			exit(1);
		}
		for (long j = 0; j < k; j++)
			with += status[j] >= 0;
	}
	return with;
}

int
main(int argc, char **argv)
{
	long		mb = argc > 1 ? atol(argv[1]) : 1024;
	long		used = argc > 2 ? atol(argv[2]) : 10;
	long		ps = sysconf(_SC_PAGESIZE);
	long		n = mb * 1024 * 1024 / ps;
	char	   *seg = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int			up[2],
				down[2];
	pid_t		child;
	char		c;

	if (seg == MAP_FAILED || pipe(up) != 0 || pipe(down) != 0)
		return 1;
	for (long i = 0; i < n * used / 100; i++)
		seg[i * ps] = 1;
	child = fork();
	if (child == 0)
	{
		/* the fresh backend: waits; on 't', asks the way pg_buffercache_numa does */
		double		t0;
		long		pte0,
					rss0,
					shm0,
					with;

		if (read(down[0], &c, 1) != 1)
			_exit(1);
		pte0 = status_kb(getpid(), "VmPTE:");
		rss0 = status_kb(getpid(), "RssShmem:");
		shm0 = meminfo_kb("Shmem");
		t0 = now_ms();
		for (long i = 0; i < n; i++)
			(void) ((volatile char *) seg)[i * ps];
		with = ask(0, seg, n, ps);
		printf("touch: %.1f ms, %ld of %ld pages with a node; page tables +%ld kB, RssShmem +%ld kB, machine Shmem +%ld kB\n",
			   now_ms() - t0, with, n, status_kb(getpid(), "VmPTE:") - pte0,
			   status_kb(getpid(), "RssShmem:") - rss0, meminfo_kb("Shmem") - shm0);
		fflush(stdout);
		_exit(0);
	}
	{
		/* ptbm's way, from outside, before the backend touches anything */
		long		pte0 = status_kb(child, "VmPTE:");
		long		rss0 = status_kb(child, "RssShmem:");
		long		shm0 = meminfo_kb("Shmem");
		double		t0 = now_ms();
		long		with = ask(child, seg, n, ps);
		long		with_parent = ask(getpid(), seg, n, ps);

		printf("ptbm:  %.1f ms, %ld of %ld pages with a node in the backend, %ld in the process that wrote them; page tables +%ld kB, RssShmem +%ld kB, machine Shmem +%ld kB\n",
			   now_ms() - t0, with, n, with_parent, status_kb(child, "VmPTE:") - pte0,
			   status_kb(child, "RssShmem:") - rss0, meminfo_kb("Shmem") - shm0);
		fflush(stdout);
	}
	if (write(down[1], "t", 1) != 1)
		return 1;
	waitpid(child, NULL, 0);
	return 0;
}
