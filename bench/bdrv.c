/*-------------------------------------------------------------------------
 *
 * bdrv.c
 *	  The benchmark's driver: holds idle backends, runs the measured
 * queries N times in one session, alternating with their baselines, and
 * prints medians as "RESULT key=value ..." lines for bench/run.sh.
 *
 *   bdrv scale -c CONN -t TAG -r REPS [-k CANCELS] STEP...
 *       STEP is N:T: grow to N idle backends (application_name bench_idle_I),
 *       each new one writing T random pages of the region (its own seed),
 *       then time SELECT * FROM ptbm_backends() against kscan (both methods)
 *       over the same processes, alternating.  With -k, after the last step,
 *       cancel ptbm_backends() K times at spread-out points and time the
 *       cancellation.  With -H it only grows the backends and keeps them
 *       until stdin closes (for experiments by hand).
 *   bdrv pte -c CONN -t TAG -r REPS
 *       write every page of the region in this session, then alternate
 *       SELECT count(*) FROM ptbm_pte() with SELECT count(*) FROM pg_buffercache.
 *   -F FUNC measures FUNC instead of ptbm_backends / ptbm_pte (same columns;
 *   for trying a patched build side by side).
 *   bdrv connect -c CONN_A -C CONN_B [-D CONN_A2] -r RUNS -m PER_RUN
 *       RUNS runs of PER_RUN connections (connect, then disconnect) to A, B
 *       (and A2, a cluster set up like A, as a control), alternating
 *       connection by connection; per-run medians; medians.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  bench/bdrv.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "kscan.h"

#define MAXB 1024

static const char *conninfo;
static const char *conninfo_b;
static const char *conninfo_c;	/* -D: a control cluster like A (A/A comparison) */
static const char *tag = "run";
static int	reps = 5;
static int	cancels = 0;
static int	per_run = 20;
static int	hold = 0;		/* -H: grow the backends, measure nothing, wait for EOF */
static const char *func = NULL;	/* -F: the function measured (ptbm_backends / ptbm_pte) */
static char qbuf[256];			/* the timed query */
static char rbuf[512];			/* the query whose rows kscan is compared with */

static void
die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "bdrv: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static double
vmax(double *v, int n)
{
	double		m = v[0];

	for (int i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

static PGconn *
connect_as(const char *ci, const char *app)
{
	char		buf[1024];
	PGconn	   *c;

	snprintf(buf, sizeof(buf), "%s application_name=%s", ci, app);
	c = PQconnectdb(buf);
	if (PQstatus(c) != CONNECTION_OK)
		die("connect %s: %s", buf, PQerrorMessage(c));
	/* ptbm's once-per-process notices (frames hidden, no soft-dirty) */
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

static PGresult *
q(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		die("%s: %s", sql, PQerrorMessage(c));
	return r;
}

/*
 * CPU time a process has run, in ms, from /proc/PID/schedstat (ns on the
 * CPU, user and system): unlike elapsed time it does not grow when other
 * work on the machine takes the CPU away.
 */
static double
proc_cpu_ms(int pid)
{
	char		path[64];
	FILE	   *f;
	unsigned long long ns = 0;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns / 1e6;
}

static double
self_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Runs sql, discards the result, returns the client-side elapsed ms; *cpu
 * gets the CPU ms the server backend spent on it.
 */
static double
timed_cpu(PGconn *c, const char *sql, long *rows, double *cpu)
{
	int			pid = PQbackendPID(c);
	double		c0 = proc_cpu_ms(pid);
	double		t0 = kscan_now_ms();
	PGresult   *r = q(c, sql);
	double		t = kscan_now_ms() - t0;

	if (cpu)
		*cpu = proc_cpu_ms(pid) - c0;

	if (rows)
		*rows = PQntuples(r) == 1 && PQnfields(r) == 1 ? atol(PQgetvalue(r, 0, 0)) : PQntuples(r);
	PQclear(r);
	return t;
}

static double
timed(PGconn *c, const char *sql, long *rows)
{
	return timed_cpu(c, sql, rows, NULL);
}

/* ---- scale ------------------------------------------------------------------ */

#define NCOLS 11
static const char *colnames[NCOLS] = {
	"present", "exclusive", "shared", "swapped", "rss", "pss", "shared_clean",
	"shared_dirty", "private_clean", "private_dirty", "page_table"
};

typedef struct prow
{
	int			pid;
	uint64_t	v[NCOLS];
} prow;

static int
ptbm_rows(PGconn *c, prow *rows, int max)
{
	PGresult   *r = q(c, rbuf);
	int			n = PQntuples(r);

	if (n > max)
		n = max;
	for (int i = 0; i < n; i++)
	{
		rows[i].pid = atoi(PQgetvalue(r, i, 0));
		for (int k = 0; k < NCOLS; k++)
			rows[i].v[k] = strtoull(PQgetvalue(r, i, k + 1), NULL, 10);
	}
	PQclear(r);
	return n;
}

static void
krow_vals(const kscan_row *k, uint64_t *v)
{
	v[0] = k->present;
	v[1] = k->exclusive;
	v[2] = k->shared;
	v[3] = k->swapped;
	v[4] = k->rss;
	v[5] = k->pss;
	v[6] = k->shared_clean;
	v[7] = k->shared_dirty;
	v[8] = k->private_clean;
	v[9] = k->private_dirty;
	v[10] = k->page_table;
}

/*
 * Cells of kscan's answer that differ from ptbm's.  page_table (VmPTE, the
 * whole process's page tables) moves whenever a process that is not idle
 * (the measuring backend, autovacuum, the checkpointer) maps or unmaps
 * anything between the two reads: its differences are counted apart.
 */
static uint64_t pte_tables;		/* summed by the last compare() of the scan method */

static int
compare(prow *rows, int n, uint64_t start, uint64_t end, int method,
		int *fallbacks, int *vmpte_moved)
{
	int			bad = 0;

	for (int i = 0; i < n; i++)
	{
		kscan_row	k;
		uint64_t	v[NCOLS];

		if (kscan_pid(rows[i].pid, start, end, method, &k) < 0)
		{
			bad++;
			continue;
		}
		*fallbacks += k.fallback;
		if (method == KSCAN_SCAN)
			pte_tables += k.pte_tables;
		krow_vals(&k, v);
		for (int c = 0; c < NCOLS; c++)
		{
			if (c == NCOLS - 1)
			{
				*vmpte_moved += v[c] != rows[i].v[c];
				continue;
			}
			if (v[c] != rows[i].v[c])
			{
				if (bad < 5)
					fprintf(stderr, "bdrv: %s method %d pid %d %s: ptbm %" PRIu64 " kscan %" PRIu64 "\n",
							tag, method, rows[i].pid, colnames[c], rows[i].v[c], v[c]);
				bad++;
			}
		}
	}
	return bad;
}

static double
kscan_pass(prow *rows, int n, uint64_t start, uint64_t end, int method, double *cpu)
{
	double		c0 = self_cpu_ms();
	double		t0 = kscan_now_ms();
	kscan_row	k;

	for (int i = 0; i < n; i++)
		(void) kscan_pid(rows[i].pid, start, end, method, &k);
	*cpu = self_cpu_ms() - c0;
	return kscan_now_ms() - t0;
}

static int
cmd_scale(int nsteps, char **steps)
{
	snprintf(qbuf, sizeof(qbuf), "SELECT * FROM %s()", func ? func : "ptbm_backends");
	snprintf(rbuf, sizeof(rbuf), "SELECT pid, present, exclusive, shared, swapped, rss, pss, "
			 "shared_clean, shared_dirty, private_clean, private_dirty, page_table FROM %s()",
			 func ? func : "ptbm_backends");

	static PGconn *idle[MAXB];
	int			nidle = 0;
	PGconn	   *m = connect_as(conninfo, "bench_measure");
	PGconn	   *ctl = cancels ? connect_as(conninfo, "bench_control") : NULL;
	PGresult   *r;
	uint64_t	start,
				size,
				pages;
	prow	   *rows = malloc(MAXB * sizeof(prow));
	double	   *tp = malloc(reps * sizeof(double));
	double	   *ts = malloc(reps * sizeof(double));
	double	   *tf = malloc(reps * sizeof(double));
	double	   *cp = malloc(reps * sizeof(double));
	double	   *cs = malloc(reps * sizeof(double));
	double	   *cf = malloc(reps * sizeof(double));
	double		ptbm_med = 0;

	r = q(m, "SELECT ('x' || lpad(substr(base, 3), 16, '0'))::bit(64)::bigint, size, pages FROM ptbm_region()");
	start = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	size = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	pages = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
	PQclear(r);

	for (int s = 0; s < nsteps; s++)
	{
		int			want = atoi(steps[s]);
		char	   *colon = strchr(steps[s], ':');
		long		touch = colon ? atol(colon + 1) : 0;
		int			n;
		uint64_t	present = 0;
		int			bad_scan,
					bad_smaps,
					fb = 0,
					moved = 0;
		double		t0;

		if (want > MAXB - 8)
			die("too many backends");
		/* grow to `want` idle backends; each new one touches its pages */
		t0 = kscan_now_ms();
		for (int b = nidle; b < want; b++)
		{
			char		app[64],
						sql[512];

			snprintf(app, sizeof(app), "bench_idle_%d", b);
			idle[b] = connect_as(conninfo, app);
			snprintf(sql, sizeof(sql),
					 "SELECT setseed(%f); "
					 "SELECT count(ptbm_touch(floor(random() * %" PRIu64 ")::bigint, 1, 'write')) "
					 "FROM generate_series(1, %ld)",
					 (double) (b + 1) / (MAXB + 1) - 0.5, pages, touch);
			if (!PQsendQuery(idle[b], sql))
				die("send: %s", PQerrorMessage(idle[b]));
		}
		for (int b = nidle; b < want; b++)
		{
			PGresult   *res;

			while ((res = PQgetResult(idle[b])) != NULL)
			{
				if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
					die("touch: %s", PQerrorMessage(idle[b]));
				PQclear(res);
			}
		}
		if (want > nidle)
			fprintf(stderr, "bdrv: %s: %d backends ready (%d new, %ld pages each) in %.1f s\n",
					tag, want, want - nidle, touch, (kscan_now_ms() - t0) / 1000);
		nidle = want > nidle ? want : nidle;

		if (hold)
			continue;

		/* the processes ptbm reports; kscan gets the same list */
		n = ptbm_rows(m, rows, MAXB);
		for (int i = 0; i < n; i++)
			present += rows[i].v[0];
		pte_tables = 0;
		bad_scan = compare(rows, n, start, start + size, KSCAN_SCAN, &fb, &moved);
		bad_smaps = compare(rows, n, start, start + size, KSCAN_SMAPS, &fb, &moved);

		/* warm-up, then alternate: ptbm, kscan scan, kscan smaps */
		(void) timed(m, qbuf, NULL);
		for (int i = 0; i < reps; i++)
		{
			tp[i] = timed_cpu(m, qbuf, NULL, &cp[i]);
			ts[i] = kscan_pass(rows, n, start, start + size, KSCAN_SCAN, &cs[i]);
			tf[i] = kscan_pass(rows, n, start, start + size, KSCAN_SMAPS, &cf[i]);
		}
		ptbm_med = kscan_median(tp, reps);
		printf("RESULT kind=scale tag=%s backends=%d touch=%ld procs=%d region_pages=%" PRIu64
			   " present_total=%" PRIu64 " pte_tables=%" PRIu64 " ptbm_ms=%.3f ptbm_max_ms=%.3f scan_ms=%.3f smaps_ms=%.3f"
			   " ptbm_cpu_ms=%.3f scan_cpu_ms=%.3f smaps_cpu_ms=%.3f"
			   " reps=%d mismatch_scan=%d mismatch_smaps=%d smaps_fallbacks=%d vmpte_moved=%d\n",
			   tag, want, touch, n, pages, present, pte_tables, ptbm_med, vmax(tp, reps),
			   kscan_median(ts, reps), kscan_median(tf, reps), kscan_median(cp, reps), kscan_median(cs, reps), kscan_median(cf, reps),
			   reps, bad_scan, bad_smaps, fb, moved);
		fflush(stdout);
	}

	if (hold)
	{
		char		buf[64];

		/* keep the idle backends until stdin closes (for experiments) */
		printf("HOLD %d backends; close stdin to end\n", nidle);
		fflush(stdout);
		while (fgets(buf, sizeof(buf), stdin))
			;
	}
	if (cancels > 0 && !hold)
	{
		double	   *lat = malloc(cancels * sizeof(double));
		int			got = 0,
					finished = 0;
		char		sql[128];
		int			mpid = PQbackendPID(m);

		snprintf(sql, sizeof(sql), "SELECT pg_cancel_backend(%d)", mpid);
		for (int k = 0; k < cancels; k++)
		{
			/* cancel at spread-out points of the scan: 10% .. 85% */
			double		at = ptbm_med * (0.10 + 0.75 * (k + 0.5) / cancels);
			struct timespec d = {(time_t) (at / 1000), (long) (fmod(at, 1000.0) * 1e6)};
			PGresult   *res;
			double		t0,
						t1 = 0;
			bool		cancelled = false;

			if (!PQsendQuery(m, qbuf))
				die("send: %s", PQerrorMessage(m));
			nanosleep(&d, NULL);
			t0 = kscan_now_ms();
			PQclear(q(ctl, sql));
			while ((res = PQgetResult(m)) != NULL)
			{
				if (t1 == 0)
					t1 = kscan_now_ms();
				if (PQresultStatus(res) == PGRES_FATAL_ERROR &&
					strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "57014") == 0)
					cancelled = true;
				PQclear(res);
			}
			if (cancelled)
				lat[got++] = t1 - t0;
			else
				finished++;
		}
		if (got > 0)
			printf("RESULT kind=cancel tag=%s scan_ms=%.3f cancel_median_ms=%.3f cancel_max_ms=%.3f"
				   " cancelled=%d finished_first=%d\n",
				   tag, ptbm_med, kscan_median(lat, got), vmax(lat, got), got, finished);
		else
			printf("RESULT kind=cancel tag=%s scan_ms=%.3f cancelled=0 finished_first=%d\n",
				   tag, ptbm_med, finished);
	}

	for (int b = 0; b < nidle; b++)
		PQfinish(idle[b]);
	if (ctl)
		PQfinish(ctl);
	PQfinish(m);
	return 0;
}

/* ---- pte ---------------------------------------------------------------------- */

/*
 * The kernel's share of ptbm_pte(): reading the same pagemap entries of the
 * same backend from C, in ptbm's chunks of 8192 entries.
 */
static double
pagemap_read_ms(int pid, uint64_t start, uint64_t pages)
{
	static uint64_t ents[8192];
	char		path[64];
	int			fd;
	double		t0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	t0 = kscan_now_ms();
	for (uint64_t done = 0; done < pages;)
	{
		uint64_t	n = pages - done < 8192 ? pages - done : 8192;
		off_t		off = (off_t) ((start / 4096 + done) * 8);

		if (pread(fd, ents, n * 8, off) != (ssize_t) (n * 8))
			die("pread %s: %s", path, strerror(errno));
		done += n;
	}
	t0 = kscan_now_ms() - t0;
	close(fd);
	return t0;
}

static int
cmd_pte(void)
{
	PGconn	   *m = connect_as(conninfo, "bench_pte");
	PGconn	   *u = connect_as(conninfo, "bench_pte_untouched");
	double	   *tu = malloc(reps * sizeof(double));
	double	   *tp = malloc(reps * sizeof(double));
	double	   *tb = malloc(reps * sizeof(double));
	double	   *cp = malloc(reps * sizeof(double));
	double	   *cb = malloc(reps * sizeof(double));
	double	   *tk = malloc(reps * sizeof(double));
	long		rows_p = 0,
				rows_b = 0,
				rows_u = 0;
	PGresult   *r;
	uint64_t	base,
				pages;

	snprintf(qbuf, sizeof(qbuf), "SELECT count(*) FROM %s()", func ? func : "ptbm_pte");
	PQclear(q(m, "CREATE EXTENSION IF NOT EXISTS pg_buffercache"));
	r = q(m, "SELECT pages FROM ptbm_touch(0, NULL, 'write')");
	PQclear(r);
	(void) timed(m, qbuf, &rows_p);
	(void) timed(m, "SELECT count(*) FROM pg_buffercache", &rows_b);
	(void) timed(u, qbuf, &rows_u);
	r = q(m, "SELECT base, size / 4096 FROM ptbm_region()");
	base = strtoull(PQgetvalue(r, 0, 0), NULL, 16);
	pages = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	for (int i = 0; i < reps; i++)
	{
		tp[i] = timed_cpu(m, qbuf, &rows_p, &cp[i]);
		tb[i] = timed_cpu(m, "SELECT count(*) FROM pg_buffercache", &rows_b, &cb[i]);
		tk[i] = pagemap_read_ms(PQbackendPID(m), base, pages);
		/* the same rows from a backend whose page table holds none of the region */
		tu[i] = timed(u, qbuf, &rows_u);
	}
	printf("RESULT kind=pte tag=%s ptbm_rows=%ld ptbm_ms=%.3f bufcache_rows=%ld bufcache_ms=%.3f ptbm_cpu_ms=%.3f bufcache_cpu_ms=%.3f"
		   " pagemap_ms=%.3f untouched_rows=%ld untouched_ms=%.3f reps=%d ratios=",
		   tag, rows_p, kscan_median(tp, reps), rows_b, kscan_median(tb, reps), kscan_median(cp, reps), kscan_median(cb, reps),
		   kscan_median(tk, reps), rows_u, kscan_median(tu, reps), reps);
	/* each run's ptbm time over the pg_buffercache time measured right after it */
	for (int i = 0; i < reps; i++)
		printf("%s%.4f", i ? "," : "", tp[i] / tb[i]);
	printf("\n");
	PQfinish(u);
	PQfinish(m);
	return 0;
}

/* ---- connect -------------------------------------------------------------------- */

static double
connect_once(const char *ci)
{
	double		t0 = kscan_now_ms();
	PGconn	   *c = PQconnectdb(ci);

	if (PQstatus(c) != CONNECTION_OK)
		die("connect %s: %s", ci, PQerrorMessage(c));
	PQfinish(c);
	return kscan_now_ms() - t0;
}

/*
 * Connections to A and B alternate one by one, so that both see the same
 * load; each run's figure is the median of its per_run connections.
 */
static int
cmd_connect(void)
{
	const char *ci[3] = {conninfo, conninfo_b, conninfo_c};
	int			nc = conninfo_c ? 3 : 2;
	double	   *t[3],
			   *c[3];

	for (int k = 0; k < nc; k++)
	{
		t[k] = malloc(reps * sizeof(double));
		c[k] = malloc(per_run * sizeof(double));
		for (int i = 0; i < 5; i++)
			(void) connect_once(ci[k]);
	}
	for (int i = 0; i < reps; i++)
	{
		for (int j = 0; j < per_run; j++)
			for (int k = 0; k < nc; k++)
				c[k][j] = connect_once(ci[k]);
		for (int k = 0; k < nc; k++)
			t[k][i] = kscan_median(c[k], per_run);
	}
	printf("RESULT kind=connect a_ms=%.4f b_ms=%.4f", kscan_median(t[0], reps), kscan_median(t[1], reps));
	if (nc == 3)
		printf(" a2_ms=%.4f", kscan_median(t[2], reps));
	printf(" runs=%d per_run=%d\n", reps, per_run);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *cmd;
	int			opt;

	if (argc < 2)
		die("usage: bdrv scale|pte|connect [options]");
	cmd = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "c:C:D:t:r:k:m:HF:")) != -1)
	{
		switch (opt)
		{
			case 'c':
				conninfo = optarg;
				break;
			case 'C':
				conninfo_b = optarg;
				break;
			case 'D':
				conninfo_c = optarg;
				break;
			case 't':
				tag = optarg;
				break;
			case 'r':
				reps = atoi(optarg);
				break;
			case 'k':
				cancels = atoi(optarg);
				break;
			case 'm':
				per_run = atoi(optarg);
				break;
			case 'H':
				hold = 1;
				break;
			case 'F':
				func = optarg;
				break;
			default:
				die("bad option");
		}
	}
	if (!conninfo || reps < 1)
		die("-c CONN and -r REPS >= 1 are required");
	if (strcmp(cmd, "scale") == 0)
		return cmd_scale(argc - optind, argv + optind);
	if (strcmp(cmd, "pte") == 0)
		return cmd_pte();
	if (strcmp(cmd, "connect") == 0)
	{
		if (!conninfo_b)
			die("connect needs -C CONN_B");
		return cmd_connect();
	}
	die("unknown command %s", cmd);
	return 1;
}
