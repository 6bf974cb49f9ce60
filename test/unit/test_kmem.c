/*-------------------------------------------------------------------------
 *
 * test_kmem.c
 *	  Unit tests of src/kmem.c, ptbm's kernel interface, against the running
 *	  kernel.  No framework: prints TAP and, as its very last line,
 *	  "test_kmem: P passed, F failed, S skipped"; exits 0 iff F == 0.
 *
 * Every check is a relation the kernel decides (an entry seen by two
 * readers, a count found by two methods, a bit that must follow from who
 * maps a page), never an address, frame number or fault count written down
 * in advance.  Checks that need frame numbers or /proc/kpage* run only when
 * kmem_get_caps() says they are visible and are reported as SKIP otherwise;
 * the unprivileged behaviour is checked as such (run the program both as
 * root and as an ordinary user).
 *
 * Processes are forked helpers that obey commands sent over a pipe (touch
 * pages, read their own pagemap, exit), so the parent knows exactly what
 * each one has done and that it is idle while its page table is inspected.
 *
 * The random page patterns use a seed printed as a diagnostic; set
 * TEST_KMEM_SEED to replay one.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  test/unit/test_kmem.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kmem.h"

/* A pid that cannot exist: above PID_MAX_LIMIT (4M). */
#define NO_SUCH_PID		((pid_t) 0x3fffffff)

/* Bits that carry no information about presence; masked in "no PTE" tests. */
#define PM_IGNORED		PM_SOFT_DIRTY

static size_t ps;				/* base page size */

/* ---- TAP output ---------------------------------------------------------- */

static int	n_run,
			n_pass,
			n_fail,
			n_skip;

static bool
ok(bool cond, const char *fmt,...)
{
	va_list		ap;

	n_run++;
	if (cond)
		n_pass++;
	else
		n_fail++;
	printf("%s %d - ", cond ? "ok" : "not ok", n_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return cond;
}

static void
skip(const char *reason, const char *fmt,...)
{
	va_list		ap;

	n_run++;
	n_skip++;
	printf("ok %d - ", n_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", reason);
}

static void
diag(const char *fmt,...)
{
	va_list		ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ok() on an equality, with both sides shown on failure */
#define OK_EQ(got, want, ...) \
	do { \
		uint64_t	got_ = (uint64_t) (got); \
		uint64_t	want_ = (uint64_t) (want); \
		if (!ok(got_ == want_, __VA_ARGS__)) \
			diag("  got %" PRIu64 ", expected %" PRIu64, got_, want_); \
	} while (0)

/* ---- small utilities ------------------------------------------------------ */

static inline uint64_t
A(const void *p)
{
	return (uint64_t) (uintptr_t) p;
}

static inline char *
page(char *base, size_t i)
{
	return base + i * ps;
}

static void
touch_write(char *base, size_t i)
{
	((volatile char *) base)[i * ps] = (char) (i | 1);
}

static void
touch_read(char *base, size_t i)
{
	(void) ((volatile char *) base)[i * ps];
}

static uint64_t rng_state;

/* xorshift64*: reproducible from the printed seed */
static uint64_t
rnd(void)
{
	uint64_t	x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

static bool
chance(unsigned pct)
{
	return rnd() % 100 < pct;
}

static bool
has_token(const char *list, const char *tok)
{
	size_t		len = strlen(tok);
	const char *p = list;

	while ((p = strstr(p, tok)) != NULL)
	{
		if ((p == list || p[-1] == ' ') && (p[len] == '\0' || p[len] == ' '))
			return true;
		p += len;
	}
	return false;
}

/* Whether CAP_SYS_ADMIN is effective: what pagemap requires to show PFNs. */
static bool
have_cap_sys_admin(void)
{
	FILE	   *f = fopen("/proc/self/status", "re");
	char		line[256];
	unsigned long long cap = 0;

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &cap) == 1)
			break;
	fclose(f);
	return (cap >> 21) & 1;
}

static bool
kernel_at_least(int major, int minor)
{
	struct utsname u;
	int			ma = 0,
				mi = 0;

	if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

static ssize_t
read_full(int fd, void *buf, size_t len)
{
	size_t		got = 0;

	while (got < len)
	{
		ssize_t		r = read(fd, (char *) buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : (ssize_t) got;
		got += r;
	}
	return (ssize_t) got;
}

static bool
write_full(int fd, const void *buf, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		r = write(fd, (const char *) buf + done, len - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		done += r;
	}
	return true;
}

/* ---- regions -------------------------------------------------------------- */

typedef enum region_kind
{
	SHARED_ANON,
	PRIVATE_ANON,
	SHARED_MEMFD
} region_kind;

/*
 * Maps npages between two PROT_NONE guard pages, so that the region is a VMA
 * of its own (an anonymous private mapping would otherwise merge with a
 * neighbour and smaps would sum memory that is not ours).  Transparent huge
 * pages are disabled on it: one fault then maps exactly the pages the kernel
 * chooses by fault-around, never a whole folio.
 */
static char *
region_map(size_t npages, region_kind kind, int memfd)
{
	size_t		len = npages * ps;
	char	   *guard;
	char	   *base;
	int			flags;

	guard = mmap(NULL, len + 2 * ps, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (guard == MAP_FAILED)
		return NULL;
	flags = MAP_FIXED | (kind == PRIVATE_ANON ? MAP_PRIVATE : MAP_SHARED);
	if (kind != SHARED_MEMFD)
		flags |= MAP_ANONYMOUS;
	base = mmap(guard + ps, len, PROT_READ | PROT_WRITE, flags,
				kind == SHARED_MEMFD ? memfd : -1, 0);
	if (base == MAP_FAILED)
	{
		munmap(guard, len + 2 * ps);
		return NULL;
	}
	(void) madvise(base, len, MADV_NOHUGEPAGE);
	return base;
}

static void
region_unmap(char *base, size_t npages)
{
	if (base)
		munmap(base - ps, npages * ps + 2 * ps);
}

/* ---- helper processes ----------------------------------------------------- */

/*
 * A forked helper runs child_main(): it reads fixed-size commands from a
 * pipe and answers each one, so every touch is finished (and the helper is
 * blocked in read()) when the parent gets the answer.
 */
typedef struct child
{
	pid_t		pid;
	int			to;				/* commands: parent -> child */
	int			from;			/* answers: child -> parent */
} child;

typedef struct child_cmd
{
	char		op;				/* 'r' read, 'w' write, 'm' own pagemap, 't'
								 * track writes, 'q' exit */
	uint64_t	addr;
	uint64_t	npages;
} child_cmd;

#define CHILD_MAX_ENTS 8192

static void
child_main(int in, int out, pid_t parent)
{
	static uint64_t ents[CHILD_MAX_ENTS];
	int			pmfd;

	/* die with the parent instead of lingering */
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	/* opening our own pagemap touches no page of the regions */
	pmfd = kmem_pagemap_open(0);
	for (;;)
	{
		child_cmd	c;
		char		ack = 'k';
		ssize_t		n;

		if (read_full(in, &c, sizeof(c)) != (ssize_t) sizeof(c))
			_exit(4);
		switch (c.op)
		{
			case 'r':
				for (uint64_t i = 0; i < c.npages; i++)
					touch_read((char *) (uintptr_t) c.addr, i);
				break;
			case 'w':
				for (uint64_t i = 0; i < c.npages; i++)
					touch_write((char *) (uintptr_t) c.addr, i);
				break;
			case 'm':
				if (c.npages > CHILD_MAX_ENTS || pmfd < 0)
					n = -1;
				else
					n = kmem_pagemap_read(pmfd, c.addr, c.npages, ents);
				if (!write_full(out, &n, sizeof(n)) ||
					(n > 0 && !write_full(out, ents, n * sizeof(uint64_t))))
					_exit(5);
				continue;
			case 't':
				/* registration is per process: the child makes its own */
				if (kmem_uffd_wp_start((void *) (uintptr_t) c.addr, c.npages * ps) < 0)
					ack = 'e';
				break;
			case 'q':
				_exit(0);
			default:
				_exit(6);
		}
		if (!write_full(out, &ack, 1))
			_exit(7);
	}
}

static bool
child_start(child *ch)
{
	int			down[2],
				up[2];
	pid_t		parent = getpid();

	if (pipe2(down, O_CLOEXEC) != 0)
		return false;
	if (pipe2(up, O_CLOEXEC) != 0)
	{
		close(down[0]);
		close(down[1]);
		return false;
	}
	fflush(stdout);
	ch->pid = fork();
	if (ch->pid < 0)
	{
		close(down[0]);
		close(down[1]);
		close(up[0]);
		close(up[1]);
		return false;
	}
	if (ch->pid == 0)
	{
		close(down[1]);
		close(up[0]);
		child_main(down[0], up[1], parent);
		_exit(8);
	}
	close(down[0]);
	close(up[1]);
	ch->to = down[1];
	ch->from = up[0];
	return true;
}

/* Has the child read or write npages pages from addr; waits until done. */
static bool
child_touch(child *ch, char op, const void *addr, size_t npages)
{
	child_cmd	c;
	char		ack;

	memset(&c, 0, sizeof(c));
	c.op = op;
	c.addr = A(addr);
	c.npages = npages;
	return write_full(ch->to, &c, sizeof(c)) &&
		read_full(ch->from, &ack, 1) == 1 && ack == 'k';
}

/* The child's own reading of its pagemap: entries of npages from addr. */
static ssize_t
child_pagemap(child *ch, const void *addr, size_t npages, uint64_t *out)
{
	child_cmd	c;
	ssize_t		n;

	memset(&c, 0, sizeof(c));
	c.op = 'm';
	c.addr = A(addr);
	c.npages = npages;
	if (!write_full(ch->to, &c, sizeof(c)) ||
		read_full(ch->from, &n, sizeof(n)) != (ssize_t) sizeof(n))
		return -1;
	if (n > 0 && read_full(ch->from, out, n * sizeof(uint64_t)) !=
		(ssize_t) (n * sizeof(uint64_t)))
		return -1;
	return n;
}

/* Tells the child to exit and reaps it; returns its exit status or -1. */
static int
child_stop(child *ch)
{
	child_cmd	c;
	int			status;

	if (ch->pid <= 0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.op = 'q';
	if (!write_full(ch->to, &c, sizeof(c)))
		kill(ch->pid, SIGKILL);
	close(ch->to);
	close(ch->from);
	while (waitpid(ch->pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	ch->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The end of a test that had a child: stops it if it still runs, closes the descriptors. */
static void
finish(child *ch, int cfd, int self)
{
	(void) child_stop(ch);
	if (cfd >= 0)
		close(cfd);
	if (self >= 0)
		close(self);
}

/* ---- pagemap reading and counting ---------------------------------------- */

/* Reads npages entries from addr through fd; false unless all were read. */
static bool
pm_read(int fd, const void *addr, size_t npages, uint64_t *out)
{
	return kmem_pagemap_read(fd, A(addr), npages, out) == (ssize_t) npages;
}

/* One entry of one page, or 0 (with a diagnostic) when it cannot be read. */
static uint64_t
pm_entry(int fd, const void *addr)
{
	uint64_t	e = 0;

	if (!pm_read(fd, addr, 1, &e))
		diag("pagemap read at %p failed: %s", addr, strerror(errno));
	return e;
}

/*
 * Reference counts: one pread of the whole range, counted here rather than
 * by kmem_count_entries, so that kmem_walk's batching is compared with the
 * plainest possible reading.
 */
static bool
ref_counts(int fd, const char *base, size_t npages, kmem_counts *c)
{
	uint64_t   *ents = calloc(npages, sizeof(uint64_t));
	bool		r;

	memset(c, 0, sizeof(*c));
	c->pages = npages;
	r = ents != NULL && pm_read(fd, base, npages, ents);
	for (size_t i = 0; r && i < npages; i++)
	{
		if (ents[i] & PM_PRESENT)
		{
			c->present++;
			c->file += (ents[i] & PM_FILE) != 0;
			c->exclusive += (ents[i] & PM_MMAP_EXCLUSIVE) != 0;
		}
		else if (ents[i] & PM_SWAP)
			c->swapped++;
	}
	free(ents);
	return r;
}

static bool
counts_equal(const kmem_counts *a, const kmem_counts *b)
{
	return a->pages == b->pages && a->present == b->present &&
		a->swapped == b->swapped && a->file == b->file &&
		a->exclusive == b->exclusive;
}

static void
diag_counts(const char *label, const kmem_counts *c)
{
	diag("  %s: pages %" PRIu64 " present %" PRIu64 " file %" PRIu64
		 " exclusive %" PRIu64 " swapped %" PRIu64,
		 label, c->pages, c->present, c->file, c->exclusive, c->swapped);
}

/* What the run callback of kmem_walk saw, and whether it broke a rule. */
typedef struct run_check
{
	uint64_t	start;
	uint64_t	end;
	uint64_t	last_end;		/* end of the previous run */
	uint64_t	pages;
	uint64_t	nruns;
	bool		bad;
	char		why[160];
} run_check;

/* What do_walk's sink sees: the counts, and the runs checked. */
typedef struct walk_seen
{
	kmem_counts *c;
	run_check  *rc;
} walk_seen;

static void
run_cb(void *arg, uint64_t addr, size_t npages, const uint64_t *ents)
{
	run_check  *rc = arg;
	uint64_t	end = addr + npages * ps;

	if (!rc->bad && (npages == 0 || addr < rc->start || end > rc->end ||
					 addr < rc->last_end || addr % ps != 0))
	{
		rc->bad = true;
		snprintf(rc->why, sizeof(rc->why),
				 "run %#" PRIx64 "+%zu pages outside [%#" PRIx64 ", %#" PRIx64
				 ") or before previous end %#" PRIx64,
				 addr, npages, rc->start, rc->end, rc->last_end);
	}
	for (size_t i = 0; i < npages && !rc->bad; i++)
		if (!(ents[i] & (PM_PRESENT | PM_SWAP)))
		{
			rc->bad = true;
			snprintf(rc->why, sizeof(rc->why),
					 "run entry %zu at %#" PRIx64 " neither present nor swapped",
					 i, addr);
		}
	rc->last_end = end;
	rc->pages += npages;
	rc->nruns++;
}

static int
walk_sink(void *arg, const kmem_chunk *ch)
{
	walk_seen  *seen = arg;

	kmem_count_sink(seen->c, ch);
	if (seen->rc)
		run_cb(seen->rc, ch->addr, ch->npages, ch->ents);
	return 0;
}

/*
 * kmem_walk over npages from base, with fresh buffers of the given sizes.
 * rc (may be NULL) receives the runs; tick (may be NULL) is installed as is.
 */
static int
do_walk(int fd, const char *base, size_t npages, bool use_scan,
		size_t vec_len, size_t ents_len, kmem_counts *c, run_check *rc,
		int (*tick) (void *), void *tick_arg)
{
	kmem_work	w;
	int			r;
	int			save;

	memset(&w, 0, sizeof(w));
	w.vec = calloc(vec_len, sizeof(struct page_region));
	w.vec_len = vec_len;
	w.ents = calloc(ents_len, sizeof(uint64_t));
	w.ents_len = ents_len;
	w.use_scan = use_scan;
	w.tick = tick;
	w.tick_arg = tick_arg;
	memset(c, 0, sizeof(*c));
	if (rc)
	{
		memset(rc, 0, sizeof(*rc));
		rc->start = rc->last_end = A(base);
		rc->end = A(base) + npages * ps;
	}
	if (w.vec == NULL || w.ents == NULL)
	{
		errno = ENOMEM;
		r = -1;
	}
	else
	{
		walk_seen	seen = {c, rc};

		c->pages = npages;
		r = kmem_walk(fd, A(base), A(base) + npages * ps, 1, KMEM_ENTRIES, &w,
					  walk_sink, &seen);
	}
	save = errno;
	free(w.vec);
	free(w.ents);
	errno = save;
	return r;
}

/*
 * All ranges of a kmem_scan over [start, end) with batches of vec_len: checks
 * that they are page aligned, non-empty, sorted, non-overlapping and inside
 * the range, and that each has the required categories.  Returns the total
 * number of pages, or -1 (with why filled) on a broken rule or error.
 */
static int64_t
scan_all(int fd, uint64_t start, uint64_t end, uint64_t mask, uint64_t anyof,
		 uint64_t retmask, size_t vec_len, uint64_t must_have,
		 uint64_t *nranges, char *why, size_t whylen)
{
	struct page_region *vec = calloc(vec_len, sizeof(*vec));
	kmem_scan	s;
	ssize_t		n;
	uint64_t	prev_end = start;
	int64_t		total = 0;

	*nranges = 0;
	if (vec == NULL)
	{
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	kmem_scan_init(&s, fd, start, end, mask, anyof, 0, retmask);
	while ((n = kmem_scan_step(&s, vec, vec_len)) > 0)
	{
		if ((size_t) n > vec_len)
		{
			snprintf(why, whylen, "%zd ranges for vec_len %zu", n, vec_len);
			total = -1;
			break;
		}
		for (ssize_t i = 0; i < n && total >= 0; i++)
		{
			const struct page_region *r = &vec[i];

			if (r->start < prev_end || r->end <= r->start || r->end > end ||
				r->start % ps != 0 || r->end % ps != 0)
			{
				snprintf(why, whylen,
						 "range [%#" PRIx64 ", %#" PRIx64 ") unsorted, overlapping,"
						 " empty or outside (previous end %#" PRIx64 ")",
						 (uint64_t) r->start, (uint64_t) r->end, prev_end);
				total = -1;
			}
			else if ((r->categories & must_have) != must_have)
			{
				snprintf(why, whylen, "range categories %#" PRIx64
						 " lack %#" PRIx64, (uint64_t) r->categories, must_have);
				total = -1;
			}
			else
			{
				total += (r->end - r->start) / ps;
				prev_end = r->end;
				(*nranges)++;
			}
		}
		if (total < 0)
			break;
	}
	if (n < 0 && total >= 0)
	{
		snprintf(why, whylen, "kmem_scan_step: %s", strerror(errno));
		total = -1;
	}
	free(vec);
	return total;
}

/* ---- 0. pure functions ---------------------------------------------------- */

static void
test_pure(void)
{
	kmem_counts c;
	const uint64_t ents[] = {
		0,
		PM_PRESENT | 123,
		PM_PRESENT | PM_FILE,
		PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE,
		PM_PRESENT | PM_MMAP_EXCLUSIVE | PM_SOFT_DIRTY,
		PM_SWAP | PM_FILE | PM_MMAP_EXCLUSIVE,	/* counted as swapped only */
		PM_SOFT_DIRTY,
		PM_UFFD_WP,
	};
	const char *names[8];
	int			n;

	OK_EQ(kmem_page_size(), (uint64_t) sysconf(_SC_PAGESIZE),
		  "kmem_page_size equals sysconf(_SC_PAGESIZE)");

	ok(kmem_pfn(PM_PRESENT | 0x1234) == 0x1234 && kmem_pfn(0x1234) == 0 &&
	   kmem_pfn(PM_SWAP | 0x1234) == 0 &&
	   kmem_pfn(PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE | PM_PFN_MASK) == PM_PFN_MASK,
	   "kmem_pfn: frame of a present entry only, flag bits stripped");

	memset(&c, 0, sizeof(c));
	kmem_count_entries(ents, sizeof(ents) / sizeof(ents[0]), true, &c);
	ok(c.present == 4 && c.file == 2 && c.exclusive == 2 && c.swapped == 1 &&
	   c.soft_dirty == 2 && c.uffd_wp == 1 && c.pages == 0,
	   "kmem_count_entries on synthetic entries");
	kmem_count_entries(ents, 2, true, &c);
	OK_EQ(c.present, 5, "kmem_count_entries adds to the counts");

	ok(kmem_kpf_name(4) && strcmp(kmem_kpf_name(4), "dirty") == 0 &&
	   kmem_kpf_name(11) && strcmp(kmem_kpf_name(11), "mmap") == 0 &&
	   kmem_kpf_name(3) && strcmp(kmem_kpf_name(3), "uptodate") == 0,
	   "kmem_kpf_name: 4 dirty, 11 mmap, 3 uptodate");
	ok(kmem_kpf_name(-1) == NULL && kmem_kpf_name(64) == NULL &&
	   kmem_kpf_name(1000) == NULL && kmem_kpf_name(63) == NULL,
	   "kmem_kpf_name: NULL for out-of-range and unnamed bits");

	n = kmem_kpf_decode((UINT64_C(1) << 3) | (UINT64_C(1) << 11) |
						(UINT64_C(1) << 30), names, 8);
	ok(n == 3 && strcmp(names[0], "uptodate") == 0 &&
	   strcmp(names[1], "mmap") == 0 && strcmp(names[2], "unknown") == 0,
	   "kmem_kpf_decode: names in bit order, unnamed bits as \"unknown\"");
	n = kmem_kpf_decode(UINT64_C(0x1f), names, 2);
	OK_EQ(n, 2, "kmem_kpf_decode stops at max");
	OK_EQ(kmem_kpf_decode(0, names, 8), 0, "kmem_kpf_decode of 0 is empty");

	ok(kmem_smaps_field_name(KSM_RSS) &&
	   strcmp(kmem_smaps_field_name(KSM_RSS), "Rss") == 0 &&
	   strcmp(kmem_smaps_field_name(KSM_SHARED_DIRTY), "Shared_Dirty") == 0 &&
	   kmem_smaps_field_name(KSM_NFIELDS) == NULL,
	   "kmem_smaps_field_name");
}

/* ---- 1. capabilities and privileges -------------------------------------- */

static void
test_caps(void)
{
	const kmem_caps *caps = kmem_get_caps();
	bool		root = geteuid() == 0;
	char	   *p;
	int			fd;
	uint64_t	e = 0;

	ok(caps != NULL && kmem_get_caps() == caps,
	   "kmem_get_caps: probed once, same answer every call");
	if (caps == NULL)
		return;
	diag("caps: pagemap_scan %d soft_dirty %d frames_visible %d "
		 "kpageflags %d kpagecount %d (euid %d)",
		 caps->pagemap_scan, caps->soft_dirty, caps->frames_visible,
		 caps->kpageflags, caps->kpagecount, (int) geteuid());

	ok(caps->pagemap_scan == kernel_at_least(6, 7),
	   "caps.pagemap_scan iff kernel >= 6.7");

	/*
	 * Soft-dirty: not hard-coded.  A freshly mapped and written private page
	 * is soft-dirty wherever the kernel tracks it (a new VMA has
	 * VM_SOFTDIRTY), so the capability must equal bit 55 of its entry.
	 */
	p = region_map(1, PRIVATE_ANON, -1);
	fd = kmem_pagemap_open(0);
	if (!ok(p != NULL && fd >= 0, "private test page mapped, own pagemap opened"))
		goto out;
	touch_write(p, 0);
	e = pm_entry(fd, p);
	ok(e & PM_PRESENT, "written private page is present");
	ok(caps->soft_dirty == ((e & PM_SOFT_DIRTY) != 0),
	   "caps.soft_dirty equals bit 55 of a freshly written private page (%s here)",
	   caps->soft_dirty ? "set" : "clear");

	/* frame numbers: shown only with CAP_SYS_ADMIN */
	ok(caps->frames_visible == have_cap_sys_admin(),
	   "caps.frames_visible iff CAP_SYS_ADMIN is effective");
	ok(caps->frames_visible == ((e & PM_PFN_MASK) != 0),
	   "pfn field of a present page is nonzero iff caps.frames_visible");
	if (root)
		skip("running as root", "non-root: frames_visible false, pfn field 0");
	else
		ok(!caps->frames_visible && (e & PM_PRESENT) && (e & PM_PFN_MASK) == 0,
		   "non-root: frames_visible false, pfn field 0 for a present page");
	if (!root)
		skip("not root", "root: frames_visible true, pfn nonzero");
	else if (!have_cap_sys_admin())
		skip("root without CAP_SYS_ADMIN", "root: frames_visible true, pfn nonzero");
	else
		ok(caps->frames_visible && kmem_pfn(e) != 0,
		   "root: frames_visible true, pfn nonzero");

out:
	if (fd >= 0)
		close(fd);
	region_unmap(p, 1);

	/* kpageflags / kpagecount: mode 0400 root */
	for (int i = 0; i < 2; i++)
	{
		const char *which = i == 0 ? "kpageflags" : "kpagecount";
		bool		cap = i == 0 ? caps->kpageflags : caps->kpagecount;
		int			err;

		errno = 0;
		fd = kmem_kpage_open(which);
		err = errno;
		ok(cap == (fd >= 0), "caps.%s equals whether kmem_kpage_open succeeds",
		   which);
		if (root)
		{
			skip("running as root", "non-root: kmem_kpage_open(%s) fails with EACCES",
				 which);
			ok(fd >= 0 && cap, "root: kmem_kpage_open(%s) succeeds", which);
		}
		else
		{
			if (!ok(fd < 0 && err == EACCES && !cap,
					"non-root: kmem_kpage_open(%s) fails with EACCES", which))
				diag("  fd %d errno %s", fd, strerror(err));
			skip("not root", "root: kmem_kpage_open(%s) succeeds", which);
		}
		if (fd >= 0)
			close(fd);
	}
}

/* ---- 2. shared anonymous region across fork ------------------------------- */

/*
 * Pages 0..9 and FAR are written by the parent.  FAR is more than 512 pages
 * (one page-table page) from page 3, so no fault-around window can hold
 * both: the child never gets a PTE for it.
 */
#define SH_PAGES	1024
#define SH_WRITTEN	10
#define SH_FAR		700

static void
test_shared_fork(void)
{
	const kmem_caps *caps = kmem_get_caps();
	size_t		idx[SH_WRITTEN + 1];
	uint64_t	pe[SH_WRITTEN + 1],
				ce_own[SH_WRITTEN + 1],
				ce[SH_WRITTEN + 1];
	char	   *base;
	int			self = -1,
				cfd = -1;
	child		ch = {0};
	bool		all;

	for (int i = 0; i < SH_WRITTEN; i++)
		idx[i] = i;
	idx[SH_WRITTEN] = SH_FAR;

	base = region_map(SH_PAGES, SHARED_ANON, -1);
	self = kmem_pagemap_open(0);
	if (!ok(base != NULL && self >= 0, "shared: region of %d pages mapped before fork",
			SH_PAGES))
		goto out;
	for (int i = 0; i <= SH_WRITTEN; i++)
		touch_write(base, idx[i]);

	all = true;
	for (int i = 0; i <= SH_WRITTEN; i++)
	{
		pe[i] = pm_entry(self, page(base, idx[i]));
		all &= (pe[i] & (PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE | PM_SWAP)) ==
			(PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE);
	}
	ok(all, "shared: parent's written pages present, file (bit 61), exclusive, not swapped");

	if (!ok(child_start(&ch), "shared: child forked"))
		goto out;
	cfd = kmem_pagemap_open(ch.pid);
	ok(cfd >= 0, "shared: parent opens the child's pagemap");

	/* fork copies no PTE of a shared mapping */
	all = true;
	for (int i = 0; i <= SH_WRITTEN; i++)
	{
		if (child_pagemap(&ch, page(base, idx[i]), 1, &ce_own[i]) != 1)
			all = false;
		else
			all &= (ce_own[i] & ~PM_IGNORED) == 0;
	}
	ok(all, "shared: child's own pagemap: no PTE for the parent's pages before touching");
	all = cfd >= 0;
	for (int i = 0; all && i <= SH_WRITTEN; i++)
	{
		ce[i] = pm_entry(cfd, page(base, idx[i]));
		all &= (ce[i] & ~PM_IGNORED) == 0;
	}
	ok(all, "shared: child's pagemap read by the parent: no PTE before touching");
	all = true;
	for (int i = 0; i <= SH_WRITTEN; i++)
		all &= (pm_entry(self, page(base, idx[i])) & PM_MMAP_EXCLUSIVE) != 0;
	ok(all, "shared: parent's pages still exclusive after fork");

	/* the child reads page 3 */
	if (!ok(child_touch(&ch, 'r', page(base, 3), 1), "shared: child reads page 3"))
		goto out;
	if (child_pagemap(&ch, page(base, 3), 1, &ce_own[3]) != 1)
		ce_own[3] = 0;
	ce[3] = cfd >= 0 ? pm_entry(cfd, page(base, 3)) : 0;
	pe[3] = pm_entry(self, page(base, 3));
	ok((ce_own[3] & PM_PRESENT) && (ce_own[3] & PM_FILE),
	   "shared: child's own entry for page 3: present, file");
	ok(ce[3] == ce_own[3],
	   "shared: parent reading the child's pagemap sees the child's own entry");
	ok(!(ce[3] & PM_MMAP_EXCLUSIVE) && !(pe[3] & PM_MMAP_EXCLUSIVE) &&
	   (pe[3] & PM_PRESENT),
	   "shared: page 3 not exclusive in child nor in parent once both map it");

	/*
	 * Fault-around may have mapped other written pages in the child: the
	 * kernel decides which.  Whatever it chose, a written page is exclusive
	 * in the parent exactly when the child has no PTE for it.
	 */
	all = cfd >= 0;
	for (int i = 0; all && i <= SH_WRITTEN; i++)
	{
		ce[i] = pm_entry(cfd, page(base, idx[i]));
		pe[i] = pm_entry(self, page(base, idx[i]));
		all &= (pe[i] & PM_PRESENT) &&
			((pe[i] & PM_MMAP_EXCLUSIVE) != 0) == ((ce[i] & PM_PRESENT) == 0);
	}
	ok(all, "shared: each written page is exclusive in the parent iff absent in the child");
	ok(!(ce[SH_WRITTEN] & PM_PRESENT) && (pe[SH_WRITTEN] & PM_MMAP_EXCLUSIVE),
	   "shared: page %d (out of fault-around reach) absent in child, exclusive in parent",
	   SH_FAR);

	if (!caps->frames_visible)
		skip("frames not visible", "shared: child and parent map the same frame for page 3");
	else
		ok(kmem_pfn(ce[3]) != 0 && kmem_pfn(ce[3]) == kmem_pfn(pe[3]),
		   "shared: child and parent map the same frame for page 3");

	/* once the child is gone the parent is the only mapper again */
	OK_EQ(child_stop(&ch), 0, "shared: child exits cleanly");
	ok(pm_entry(self, page(base, 3)) & PM_MMAP_EXCLUSIVE,
	   "shared: page 3 exclusive in the parent again after the child exited");

out:
	finish(&ch, cfd, self);
	region_unmap(base, SH_PAGES);
}

/* ---- 3. private anonymous region across fork ------------------------------ */

#define PR_PAGES	256
#define PR_WRITTEN	16

static void
test_private_fork(void)
{
	const kmem_caps *caps = kmem_get_caps();
	uint64_t	ce[PR_WRITTEN],
				cfe[PR_WRITTEN],
				pe5,
				pe6,
				pe5_before;
	char	   *base;
	int			self = -1,
				cfd = -1;
	child		ch = {0};
	bool		all;

	base = region_map(PR_PAGES, PRIVATE_ANON, -1);
	self = kmem_pagemap_open(0);
	if (!ok(base != NULL && self >= 0, "private: region of %d pages mapped", PR_PAGES))
		goto out;
	for (int i = 0; i < PR_WRITTEN; i++)
		touch_write(base, i);
	pe5_before = pm_entry(self, page(base, 5));
	ok((pe5_before & PM_PRESENT) && (pe5_before & PM_MMAP_EXCLUSIVE) &&
	   !(pe5_before & PM_FILE),
	   "private: written page present, exclusive, not file before fork");

	if (!ok(child_start(&ch), "private: child forked"))
		goto out;
	cfd = kmem_pagemap_open(ch.pid);

	/* fork copies the PTEs of private anonymous pages */
	all = child_pagemap(&ch, base, PR_WRITTEN, ce) == PR_WRITTEN;
	for (int i = 0; all && i < PR_WRITTEN; i++)
		all &= (ce[i] & PM_PRESENT) && !(ce[i] & PM_FILE);
	ok(all, "private: child's own pagemap has PTEs for the parent's pages, file bit clear");
	all = cfd >= 0 && pm_read(cfd, base, PR_WRITTEN, cfe);
	for (int i = 0; all && i < PR_WRITTEN; i++)
		all &= cfe[i] == ce[i];
	ok(all, "private: parent reading the child's pagemap sees the same entries");

	pe5 = pm_entry(self, page(base, 5));
	ok(!(ce[5] & PM_MMAP_EXCLUSIVE) && !(pe5 & PM_MMAP_EXCLUSIVE),
	   "private: page 5 not exclusive in child nor in parent after fork");
	if (!caps->frames_visible)
		skip("frames not visible",
			 "private: same frame in child and parent before the child writes");
	else
		ok(kmem_pfn(ce[5]) != 0 && kmem_pfn(ce[5]) == kmem_pfn(pe5),
		   "private: same frame in child and parent before the child writes");

	/* the child writes page 5: copy on write */
	if (!ok(child_touch(&ch, 'w', page(base, 5), 1), "private: child writes page 5"))
		goto out;
	if (child_pagemap(&ch, page(base, 5), 1, &ce[5]) != 1)
		ce[5] = 0;
	if (child_pagemap(&ch, page(base, 6), 1, &ce[6]) != 1)
		ce[6] = 0;
	pe5 = pm_entry(self, page(base, 5));
	pe6 = pm_entry(self, page(base, 6));
	ok((ce[5] & PM_PRESENT) && (ce[5] & PM_MMAP_EXCLUSIVE) && !(ce[5] & PM_FILE),
	   "private: child's written page present, exclusive, file bit clear");
	ok((pe5 & PM_PRESENT) && (pe5 & PM_MMAP_EXCLUSIVE),
	   "private: parent's page 5 exclusive again after the child's copy");
	ok((ce[6] & PM_PRESENT) && !(ce[6] & PM_MMAP_EXCLUSIVE) &&
	   !(pe6 & PM_MMAP_EXCLUSIVE),
	   "private: page 6 (not written by the child) still shared");
	if (!caps->frames_visible)
		skip("frames not visible", "private: frames differ after the child writes");
	else
		ok(kmem_pfn(ce[5]) != 0 && kmem_pfn(pe5) != 0 &&
		   kmem_pfn(ce[5]) != kmem_pfn(pe5) && kmem_pfn(pe5) == kmem_pfn(pe5_before),
		   "private: frames differ after the child writes, parent keeps its frame");

	OK_EQ(child_stop(&ch), 0, "private: child exits cleanly");

out:
	finish(&ch, cfd, self);
	region_unmap(base, PR_PAGES);
}

/* ---- 4 and 5. kmem_walk and kmem_scan -------------------------------------- */

#define W_PAGES		4096

typedef struct tick_state
{
	int			calls;
	int			stop_at;		/* return nonzero at this call; 0: never */
} tick_state;

static int
tick_cb(void *arg)
{
	tick_state *t = arg;

	t->calls++;
	return t->stop_at > 0 && t->calls >= t->stop_at;
}

/*
 * kmem_walk by pread and by PAGEMAP_SCAN, with big and tiny buffers, must
 * all give the counts of one plain pread of the range.
 */
static void
check_walks(const char *label, int fd, const char *base, size_t npages)
{
	kmem_counts ref,
				c;
	run_check	rc;
	bool		all;
	char		first_bad[400] = "";

	if (!ok(ref_counts(fd, base, npages, &ref), "%s: reference pread of %zu entries",
			label, npages))
		return;
	diag_counts(label, &ref);

	for (int scan = 0; scan <= 1; scan++)
	{
		const char *how = scan ? "scan" : "pread";
		int			r = do_walk(fd, base, npages, scan, 256, 4096, &c, &rc, NULL, NULL);

		if (!ok(r == 0 && counts_equal(&c, &ref),
				"%s: kmem_walk (%s, big buffers) counts equal the reference",
				label, how))
		{
			diag("  kmem_walk returned %d (%s)", r, r ? strerror(errno) : "");
			diag_counts("kmem_walk", &c);
		}
		if (!ok(!rc.bad && rc.pages == c.present + c.swapped,
				"%s: kmem_walk (%s) runs valid and sum to present+swapped",
				label, how))
			diag("  runs %" PRIu64 " pages %" PRIu64 " %s", rc.nruns, rc.pages, rc.why);
	}

	/* tiny buffers: many batches, short scans, the walk_end quirk */
	all = true;
	for (size_t vec_len = 1; vec_len <= 3; vec_len++)
		for (size_t ents_len = 1; ents_len <= 7; ents_len++)
			for (int scan = 0; scan <= 1; scan++)
			{
				int			r = do_walk(fd, base, npages, scan, vec_len, ents_len,
										&c, &rc, NULL, NULL);

				if (r == 0 && counts_equal(&c, &ref) && !rc.bad &&
					rc.pages == c.present + c.swapped)
					continue;
				if (all)
					snprintf(first_bad, sizeof(first_bad),
							 "%s vec_len %zu ents_len %zu: ret %d present %" PRIu64
							 " file %" PRIu64 " exclusive %" PRIu64 " runs %" PRIu64 "%s%s",
							 scan ? "scan" : "pread", vec_len, ents_len, r,
							 c.present, c.file, c.exclusive, rc.pages,
							 rc.bad ? " " : "", rc.bad ? rc.why : "");
				all = false;
			}
	if (!ok(all, "%s: vec_len 1..3 x ents_len 1..7, both methods: same counts and runs",
			label))
		diag("  first mismatch: %s", first_bad);
}

static void
test_walk(void)
{
	const kmem_caps *caps = kmem_get_caps();
	char	   *sh,
			   *pr,
			   *alt = NULL;
	int			self = -1,
				cfd = -1;
	child		ch = {0};
	kmem_counts full,
				c;
	tick_state	t;
	size_t		nalt = 0;

	sh = region_map(W_PAGES, SHARED_ANON, -1);
	pr = region_map(W_PAGES, PRIVATE_ANON, -1);
	self = kmem_pagemap_open(0);
	if (!ok(sh && pr && self >= 0, "walk: shared and private regions of %d pages", W_PAGES))
		goto out;

	/*
	 * A random sparse pattern, with the first and last pages always written
	 * so that a stopped walk provably misses something.  In the private
	 * region, pages only read map the shared zero page (present, not
	 * exclusive).
	 */
	for (size_t i = 0; i < W_PAGES; i++)
	{
		if (i == 0 || i == W_PAGES - 1 || chance(12))
			touch_write(sh, i);
		if (i == 0 || i == W_PAGES - 1 || chance(12))
			touch_write(pr, i);
		else if (chance(8))
			touch_read(pr, i);
	}

	/*
	 * A helper with its own pattern: it reads shared pages (fault-around adds
	 * neighbours, and pages nobody wrote come into existence for it alone)
	 * and writes private ones (copy on write).
	 */
	if (!ok(child_start(&ch), "walk: child forked"))
		goto out;
	for (size_t i = 0; i < W_PAGES; i++)
	{
		if (chance(5))
			child_touch(&ch, 'r', page(sh, i), 1);
		if (chance(5))
			child_touch(&ch, 'w', page(pr, i), 1);
	}
	cfd = kmem_pagemap_open(ch.pid);
	ok(cfd >= 0, "walk: child's pagemap opened");

	check_walks("walk own shared", self, sh, W_PAGES);
	check_walks("walk own private", self, pr, W_PAGES);
	if (cfd >= 0)
	{
		check_walks("walk child shared", cfd, sh, W_PAGES);
		check_walks("walk child private", cfd, pr, W_PAGES);
	}

	/* empty range: nothing counted, no error */
	memset(&c, 0, sizeof(c));
	{
		kmem_work	w;
		uint64_t	e[4];
		struct page_region v[4];

		memset(&w, 0, sizeof(w));
		w.vec = v;
		w.vec_len = 4;
		w.ents = e;
		w.ents_len = 4;
		w.use_scan = true;
		ok(kmem_count(self, A(sh), A(sh), &w, &c) == 0 &&
		   c.pages == 0 && c.present == 0,
		   "walk: empty range counts nothing");
	}

	/* the tick callback: called between batches, nonzero stops the walk */
	do_walk(self, sh, W_PAGES, false, 4, 4096, &full, NULL, NULL, NULL);
	for (int scan = 0; scan <= 1; scan++)
	{
		const char *how = scan ? "scan" : "pread";
		int			r;

		memset(&t, 0, sizeof(t));
		do_walk(self, sh, W_PAGES, scan, 1, 16, &c, NULL, tick_cb, &t);
		ok(t.calls >= 1 && c.present == full.present,
		   "walk tick (%s): called (%d times) and a zero return keeps walking",
		   how, t.calls);
		memset(&t, 0, sizeof(t));
		t.stop_at = 1;
		r = do_walk(self, sh, W_PAGES, scan, 1, 16, &c, NULL, tick_cb, &t);
		ok(r == 0 && t.calls == 1 && c.present >= 1 && c.present < full.present,
		   "walk tick (%s): nonzero return stops after the first batch "
		   "(%" PRIu64 " of %" PRIu64 " present pages)", how, c.present, full.present);
	}

	/*
	 * 5. kmem_scan_init/kmem_scan_step directly, on a pattern of isolated
	 * pages (every other page written: one range per page, 1200 ranges) and
	 * on the child's view of the shared region.  The vec_len values straddle
	 * the kernel's internal bounce buffer of 512 ranges; 600 and 1200 make
	 * the last call of the walk end exactly full after more than one
	 * internal chunk.
	 */
	if (!caps->pagemap_scan)
	{
		skip("no PAGEMAP_SCAN", "scan: kmem_scan_step tests");
		goto out;
	}
	nalt = 2400;
	alt = region_map(nalt, PRIVATE_ANON, -1);
	if (!ok(alt != NULL, "scan: region of %zu pages, every other page written", nalt))
		goto out;
	for (size_t i = 0; i < nalt; i += 2)
		touch_write(alt, i);
	{
		static const size_t vec_lens[] = {1, 2, 3, 7, 64, 511, 512, 513, 600, 1199,
		1200, 1201, 4096};
		kmem_counts ref;
		char		why[256];

		ref_counts(self, alt, nalt, &ref);
		for (size_t k = 0; k < sizeof(vec_lens) / sizeof(vec_lens[0]); k++)
		{
			uint64_t	nranges;
			int64_t		total;

			why[0] = '\0';
			total = scan_all(self, A(alt), A(alt) + nalt * ps, 0, PAGE_IS_PRESENT,
							 PAGE_IS_PRESENT, vec_lens[k], PAGE_IS_PRESENT,
							 &nranges, why, sizeof(why));
			if (!ok(total >= 0 && (uint64_t) total == ref.present,
					"scan vec_len %zu: ranges sorted, disjoint, inside; "
					"pages equal pread's present",
					vec_lens[k]))
				diag("  scan total %" PRId64 " in %" PRIu64 " ranges, pread present %"
					 PRIu64 " %s", total, nranges, ref.present, why);
		}

		/* kmem_walk with the same big batches */
		for (size_t k = 0; k < 2; k++)
		{
			size_t		vl = k == 0 ? 600 : 1200;

			do_walk(self, alt, nalt, true, vl, 4096, &c, NULL, NULL, NULL);
			if (!ok(counts_equal(&c, &ref),
					"walk (scan) with vec_len %zu over %" PRIu64 " ranges equals pread",
					vl, ref.present))
				diag_counts("kmem_walk", &c);
		}

		if (cfd >= 0)
		{
			ref_counts(cfd, sh, W_PAGES, &ref);
			for (size_t vl = 1; vl <= 64; vl *= 8)
			{
				uint64_t	nranges;
				int64_t		total;

				why[0] = '\0';
				total = scan_all(cfd, A(sh), A(sh) + W_PAGES * ps, 0, PAGE_IS_PRESENT,
								 PAGE_IS_PRESENT, vl, PAGE_IS_PRESENT, &nranges,
								 why, sizeof(why));
				if (!ok(total >= 0 && (uint64_t) total == ref.present,
						"scan child's shared view, vec_len %zu: valid ranges, "
						"pages equal present",
						vl))
					diag("  scan total %" PRId64 ", present %" PRIu64 " %s",
						 total, ref.present, why);
			}
		}

		/* category filters: present and file */
		ref_counts(self, sh, W_PAGES, &ref);
		{
			uint64_t	nranges;
			int64_t		total;

			why[0] = '\0';
			total = scan_all(self, A(sh), A(sh) + W_PAGES * ps,
							 PAGE_IS_PRESENT | PAGE_IS_FILE, 0,
							 PAGE_IS_PRESENT | PAGE_IS_FILE, 7,
							 PAGE_IS_PRESENT | PAGE_IS_FILE, &nranges, why, sizeof(why));
			if (!ok(total >= 0 && (uint64_t) total == ref.file && ref.file == ref.present,
					"scan: present+file mask over shared anon gives pread's file count"))
				diag("  %" PRId64 " vs file %" PRIu64 " %s", total, ref.file, why);
			total = scan_all(self, A(pr), A(pr) + W_PAGES * ps,
							 PAGE_IS_PRESENT | PAGE_IS_FILE, 0, PAGE_IS_PRESENT, 7,
							 PAGE_IS_PRESENT, &nranges, why, sizeof(why));
			OK_EQ(total, 0, "scan: present+file mask over private anon finds nothing");
		}

		/* kmem_any_mapped: the first page found, or none */
		OK_EQ(kmem_any_mapped(self, A(alt), A(alt) + nalt * ps), 1,
			  "any_mapped: a range with written pages");
		OK_EQ(kmem_any_mapped(self, A(alt) + ps, A(alt) + 2 * ps), 0,
			  "any_mapped: one never-touched page between written ones");
		OK_EQ(kmem_any_mapped(self, A(alt) + ps, A(alt) + 3 * ps), 1,
			  "any_mapped: a never-touched page and a written one");
		OK_EQ(kmem_any_mapped(self, A(alt), A(alt)), 0, "any_mapped: an empty range");
		madvise(alt + (nalt - 64) * ps, 64 * ps, MADV_DONTNEED);
		OK_EQ(kmem_any_mapped(self, A(alt) + (nalt - 64) * ps, A(alt) + nalt * ps), 0,
			  "any_mapped: written pages dropped with MADV_DONTNEED");
		OK_EQ(kmem_any_mapped(self, A(sh), A(sh) + W_PAGES * ps), ref.present > 0,
			  "any_mapped over the shared region iff pread finds a present page");
		OK_EQ(kmem_any_mapped(-1, A(alt), A(alt) + ps), -1, "any_mapped: a bad descriptor fails");

		/* an empty scan ends at once */
		{
			kmem_scan	s;
			struct page_region v;

			kmem_scan_init(&s, self, A(sh), A(sh), 0, PAGE_IS_PRESENT, 0,
						   PAGE_IS_PRESENT);
			OK_EQ(kmem_scan_step(&s, &v, 1), 0, "scan: empty range returns 0 at once");
		}
	}

out:
	if (ch.pid > 0)
		OK_EQ(child_stop(&ch), 0, "walk: child exits cleanly");
	finish(&ch, cfd, self);
	region_unmap(sh, W_PAGES);
	region_unmap(pr, W_PAGES);
	region_unmap(alt, nalt);
}

/* ---- 6 and 7. smaps and maps ---------------------------------------------- */

#define SM_PAGES	256
#define SM_WRITTEN	64

/* present pages of [base, base+npages) through fd, by kmem_walk */
static uint64_t
present_of(int fd, const char *base, size_t npages)
{
	kmem_counts c;

	if (do_walk(fd, base, npages, true, 64, 1024, &c, NULL, NULL, NULL) != 0)
		diag("kmem_walk failed: %s", strerror(errno));
	return c.present;
}

static void
test_smaps_maps(void)
{
	char	   *sh,
			   *pr;
	int			self = -1,
				cfd = -1;
	child		ch = {0};
	kmem_vma   *v = malloc(sizeof(kmem_vma));
	kmem_vma   *v2 = malloc(sizeof(kmem_vma));
	uint64_t	present;
	int			n;

	sh = region_map(SM_PAGES, SHARED_ANON, -1);
	pr = region_map(SM_PAGES, PRIVATE_ANON, -1);
	self = kmem_pagemap_open(0);
	if (!ok(sh && pr && v && v2 && self >= 0, "smaps: regions mapped"))
		goto out;
	for (size_t i = 0; i < SM_WRITTEN; i++)
	{
		touch_write(sh, i * 3);
		touch_write(pr, i * 2 + 1);
	}

	/* shared anonymous, one process */
	n = kmem_smaps_range(0, A(sh), A(sh) + SM_PAGES * ps, v);
	present = present_of(self, sh, SM_PAGES);
	ok(n >= 1 && v->nvmas == n, "smaps shared: %d VMA(s) found", n);
	OK_EQ(v->kb[KSM_RSS], present * ps / 1024,
		  "smaps shared: Rss kB equals kmem_walk's present pages (%" PRIu64 ")", present);
	OK_EQ(v->kb[KSM_SIZE], SM_PAGES * ps / 1024, "smaps shared: Size is the region's");
	if (!ok(strstr(v->path, "/dev/zero") != NULL, "smaps shared: path names /dev/zero"))
		diag("  path \"%s\"", v->path);
	if (!ok(has_token(v->vmflags, "sh"), "smaps shared: VmFlags has sh"))
		diag("  VmFlags \"%s\"", v->vmflags);
	ok(v->kb[KSM_SHARED_CLEAN] + v->kb[KSM_SHARED_DIRTY] == 0 &&
	   v->kb[KSM_PRIVATE_DIRTY] + v->kb[KSM_PRIVATE_CLEAN] == v->kb[KSM_RSS],
	   "smaps shared: all Rss private while one process maps it");
	ok(v->kb[KSM_KERNEL_PAGE_SIZE] == ps / 1024,
	   "smaps shared: KernelPageSize is the page size");

	/* private anonymous, with guard pages: exactly one VMA, no path */
	n = kmem_smaps_range(0, A(pr), A(pr) + SM_PAGES * ps, v2);
	present = present_of(self, pr, SM_PAGES);
	ok(n == 1 && v2->start == A(pr) && v2->end == A(pr) + SM_PAGES * ps,
	   "smaps private: one VMA, exactly the mapping");
	OK_EQ(v2->kb[KSM_RSS], present * ps / 1024,
		  "smaps private: Rss kB equals kmem_walk's present pages (%" PRIu64 ")", present);
	OK_EQ(v2->kb[KSM_ANONYMOUS], v2->kb[KSM_RSS], "smaps private: Anonymous equals Rss");
	if (!ok(v2->path[0] == '\0' && !has_token(v2->vmflags, "sh"),
			"smaps private: empty path, no sh in VmFlags"))
		diag("  path \"%s\" VmFlags \"%s\"", v2->path, v2->vmflags);

	/* maps lookup */
	n = kmem_maps_lookup(0, A(page(sh, 17)) + 5, v2);
	ok(n == 1 && v2->start <= A(page(sh, 17)) && A(page(sh, 17)) < v2->end &&
	   v2->start == v->start && v2->end == v->end && v2->inode == v->inode,
	   "maps: lookup finds the shared VMA (same as smaps)");
	ok(n == 1 && strstr(v2->path, "/dev/zero") && v2->perms[3] == 's' && v2->nvmas == 1,
	   "maps: shared VMA path /dev/zero, perms shared");
	n = kmem_maps_lookup(0, A(pr), v2);
	ok(n == 1 && v2->start == A(pr) && v2->end == A(pr) + SM_PAGES * ps &&
	   v2->perms[3] == 'p' && v2->path[0] == '\0',
	   "maps: lookup of the private region's first byte gives exactly that VMA");
	n = kmem_maps_lookup(0, A(pr) - 1, v2);
	ok(n == 1 && v2->end == A(pr) && strncmp(v2->perms, "---", 3) == 0,
	   "maps: the byte before it is the PROT_NONE guard");
	OK_EQ(kmem_maps_lookup(0, 0x1000, v2), 0, "maps: nothing mapped at 0x1000");
	errno = 0;
	n = kmem_maps_lookup(NO_SUCH_PID, A(sh), v2);
	ok(n == -1 && (errno == ENOENT || errno == ESRCH),
	   "maps: -1 (ENOENT/ESRCH) for a pid that does not exist");

	/* two processes map the same written pages */
	if (!ok(child_start(&ch), "smaps: child forked"))
		goto out;
	for (size_t i = 0; i < SM_WRITTEN; i++)
		child_touch(&ch, 'r', page(sh, i * 3), 1);
	cfd = kmem_pagemap_open(ch.pid);

	n = kmem_smaps_range(0, A(sh), A(sh) + SM_PAGES * ps, v);
	ok(n >= 1 && v->kb[KSM_SHARED_CLEAN] + v->kb[KSM_SHARED_DIRTY] > 0,
	   "smaps two processes: parent's Shared_Clean+Shared_Dirty > 0");
	ok(n >= 1 && v->kb[KSM_PSS] < v->kb[KSM_RSS],
	   "smaps two processes: parent's Pss < Rss");
	n = kmem_smaps_range(ch.pid, A(sh), A(sh) + SM_PAGES * ps, v2);
	ok(n >= 1 && v2->kb[KSM_SHARED_CLEAN] + v2->kb[KSM_SHARED_DIRTY] > 0,
	   "smaps two processes: child's Shared_Clean+Shared_Dirty > 0");
	if (cfd >= 0)
	{
		present = present_of(cfd, sh, SM_PAGES);
		OK_EQ(v2->kb[KSM_RSS], present * ps / 1024,
			  "smaps child: Rss kB equals kmem_walk of its pagemap (%" PRIu64 " pages)",
			  present);
	}
	else
		ok(false, "smaps child: pagemap opened");
	ok(v2->inode == v->inode && v2->start == v->start && strcmp(v2->path, v->path) == 0,
	   "smaps child: same shmem object at the same address as the parent");
	n = kmem_maps_lookup(ch.pid, A(page(sh, 1)), v2);
	ok(n == 1 && v2->start == v->start && v2->inode == v->inode,
	   "maps: lookup in the child finds the inherited VMA");

	OK_EQ(child_stop(&ch), 0, "smaps: child exits cleanly");

out:
	finish(&ch, cfd, self);
	region_unmap(sh, SM_PAGES);
	region_unmap(pr, SM_PAGES);
	free(v);
	free(v2);
}

/* ---- 8. status and stat --------------------------------------------------- */

static void
test_status_stat(void)
{
	uint64_t	kb = 0,
				kb2 = 0,
				mn0 = 0,
				mn1 = 0,
				mj = 0;
	pid_t		pp = 0;
	char	   *p;
	size_t		npages = 64;
	size_t		big = (size_t) 256 << 20;	/* 256 MiB, sparsely touched */
	child		ch = {0};

	OK_EQ(kmem_status_kb(0, "VmPTE", &kb), 1, "status: VmPTE found");
	ok(kb > 0, "status: VmPTE > 0 kB");
	OK_EQ(kmem_status_kb(0, "NoSuchKey", &kb2), 0, "status: missing key returns 0");
	OK_EQ(kmem_status_kb(0, "Vm", &kb2), 0, "status: a key prefix is not a key");

	/* /proc/meminfo, one key or several in one read */
	{
		static const char *const keys[] = {"MemTotal", "NoSuchKey", "HugePages_Total", "Mem"};
		uint64_t	total = 0,
					pool = 0,
					vals[4];

		OK_EQ(kmem_meminfo("MemTotal", &total), 1, "meminfo: MemTotal found");
		ok(total > 0, "meminfo: MemTotal is positive");
		OK_EQ(kmem_meminfo("HugePages_Total", &pool), 1, "meminfo: a count without unit");
		OK_EQ(kmem_meminfo_keys(keys, vals, 4), 2,
			  "meminfo_keys: two of four keys found (absent key, prefix)");
		ok(vals[0] == total && vals[1] == 0 && vals[3] == 0,
		   "meminfo_keys: MemTotal as read alone; absent keys are 0");
	}
	OK_EQ(kmem_status_kb(NO_SUCH_PID, "VmPTE", &kb2), -1, "status: -1 for a missing pid");

	/* page tables grow when a process touches a new 2 MiB span */
	p = mmap(NULL, big, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p != MAP_FAILED)
	{
		(void) madvise(p, big, MADV_NOHUGEPAGE);
		kmem_status_kb(0, "VmPTE", &kb);
		for (size_t off = 0; off < big; off += (size_t) 2 << 20)
			p[off] = 1;
		kmem_status_kb(0, "VmPTE", &kb2);
		ok(kb2 > kb, "status: VmPTE grows (%" PRIu64 " -> %" PRIu64
		   " kB) after touching one page per 2 MiB of a new region", kb, kb2);
		munmap(p, big);
	}
	else
		ok(false, "status: 256 MiB NORESERVE mapping");

	ok(kmem_stat(0, &pp, &mn0, &mj) == 0 && pp == getppid(),
	   "stat: ppid equals getppid()");
	p = region_map(npages, PRIVATE_ANON, -1);
	if (p)
	{
		int			r;

		for (size_t i = 0; i < npages; i++)
			touch_write(p, i);
		r = kmem_stat(0, NULL, &mn1, NULL);
		ok(r == 0 && mn1 > mn0,
		   "stat: minflt increases after touching fresh pages (%" PRIu64 " -> %" PRIu64 ")",
		   mn0, mn1);
		region_unmap(p, npages);
	}
	else
		ok(false, "stat: fresh region mapped");
	errno = 0;
	ok(kmem_stat(NO_SUCH_PID, &pp, NULL, NULL) == -1 && errno == ENOENT,
	   "stat: -1 with ENOENT for a missing pid");

	if (child_start(&ch))
	{
		pp = 0;
		ok(kmem_stat(ch.pid, &pp, NULL, NULL) == 0 && pp == getpid(),
		   "stat: a child's ppid is our pid");
		OK_EQ(kmem_status_kb(ch.pid, "VmRSS", &kb), 1, "status: child's VmRSS found");
		OK_EQ(child_stop(&ch), 0, "stat: child exits cleanly");
	}
	else
		ok(false, "stat: child forked");
}

/* ---- 9. kpageflags / kpagecount ------------------------------------------ */

#define KP_PAGES	1024
#define KP_WRITTEN	32

static void
test_kpage(void)
{
	const kmem_caps *caps = kmem_get_caps();
	char	   *base = NULL;
	int			self = -1,
				cfd = -1,
				kc = -1,
				kf = -1;
	child		ch = {0};
	uint64_t	pe[KP_WRITTEN],
				ce[KP_WRITTEN],
				pfns[KP_WRITTEN],
				cnt[KP_WRITTEN],
				flg[KP_WRITTEN];
	bool		all;

	if (!caps->frames_visible || !caps->kpageflags || !caps->kpagecount)
	{
		const char *why = !caps->frames_visible ? "frames not visible" :
		"/proc/kpage* not readable";

		skip(why, "kpagecount = number of processes mapping each written page");
		skip(why, "kpageflags of a written shared page has mmap and uptodate");
		skip(why, "kmem_kpage_read: out 0 where pfns is 0");
		skip(why, "kmem_kpage_read: a run of frames reads as the frames one by one");
		skip(why, "kmem_kpage_read: frames beyond the end of memory read 0");
		return;
	}

	base = region_map(KP_PAGES, SHARED_ANON, -1);
	self = kmem_pagemap_open(0);
	kc = kmem_kpage_open("kpagecount");
	kf = kmem_kpage_open("kpageflags");
	if (!ok(base && self >= 0 && kc >= 0 && kf >= 0, "kpage: region mapped, files opened"))
		goto out;
	/* written pages: 0..15 near the child's read, 16.. far away */
	for (int i = 0; i < KP_WRITTEN; i++)
		touch_write(base, i < 16 ? i : 600 + i);
	if (!ok(child_start(&ch), "kpage: child forked"))
		goto out;
	child_touch(&ch, 'r', page(base, 3), 1);
	child_touch(&ch, 'r', page(base, 600 + 20), 1);
	cfd = kmem_pagemap_open(ch.pid);

	all = cfd >= 0;
	for (int i = 0; all && i < KP_WRITTEN; i++)
	{
		char	   *a = page(base, i < 16 ? i : 600 + i);

		pe[i] = pm_entry(self, a);
		ce[i] = pm_entry(cfd, a);
		pfns[i] = kmem_pfn(pe[i]);
		all &= pfns[i] != 0;
	}
	ok(all, "kpage: parent's written pages have frame numbers");
	all = all && kmem_kpage_read(kc, pfns, KP_WRITTEN, cnt) == 0;
	for (int i = 0; all && i < KP_WRITTEN; i++)
	{
		uint64_t	mappers = 1 + ((ce[i] & PM_PRESENT) != 0);

		if (cnt[i] != mappers)
		{
			diag("  page %d: kpagecount %" PRIu64 ", mapped by %" PRIu64, i, cnt[i], mappers);
			all = false;
		}
	}
	ok(all && cnt[3] >= 2,
	   "kpagecount = number of processes mapping each written page (2 for page 3)");

	all = kmem_kpage_read(kf, pfns, KP_WRITTEN, flg) == 0;
	{
		const char *names[64];
		int			n = all ? kmem_kpf_decode(flg[3], names, 64) : 0;
		bool		mmap_seen = false,
					uptodate_seen = false;

		for (int i = 0; i < n; i++)
		{
			mmap_seen |= strcmp(names[i], "mmap") == 0;
			uptodate_seen |= strcmp(names[i], "uptodate") == 0;
		}
		if (!ok(mmap_seen && uptodate_seen,
				"kpageflags of a written shared page has mmap and uptodate"))
			diag("  flags %#" PRIx64, all ? flg[3] : 0);
	}

	/* zeros in pfns give zeros, whatever out held */
	{
		uint64_t	in[5] = {0, pfns[3], 0, 0, pfns[20]};
		uint64_t	out[5];

		memset(out, 0xa5, sizeof(out));
		ok(kmem_kpage_read(kc, in, 5, out) == 0 && out[0] == 0 && out[2] == 0 &&
		   out[3] == 0 && out[1] == cnt[3] && out[4] == cnt[20],
		   "kmem_kpage_read: out 0 where pfns is 0, counts elsewhere");
	}

	/*
	 * Runs: [pfn-1, pfn, pfn+1] is read by one pread; the middle entry must be
	 * what a read of pfn alone gives.  Only our own frame's count is stable
	 * enough to compare (the neighbours belong to anybody).
	 */
	{
		uint64_t	in[3] = {pfns[20] - 1, pfns[20], pfns[20] + 1};
		uint64_t	out[3],
					one;

		ok(kmem_kpage_read(kc, in, 3, out) == 0 &&
		   kmem_kpage_read(kc, &pfns[20], 1, &one) == 0 && out[1] == one,
		   "kmem_kpage_read: a run of frames reads as the frames one by one");
	}

	/* frames beyond the end of memory: the kernel returns no data */
	{
		uint64_t	in[2] = {UINT64_C(1) << 40, (UINT64_C(1) << 40) + 1};
		uint64_t	out[2] = {1, 1};

		ok(kmem_kpage_read(kf, in, 2, out) == 0 && out[0] == 0 && out[1] == 0,
		   "kmem_kpage_read: frames beyond the end of memory read 0");
	}

	OK_EQ(child_stop(&ch), 0, "kpage: child exits cleanly");

out:
	finish(&ch, cfd, self);
	if (kc >= 0)
		close(kc);
	if (kf >= 0)
		close(kf);
	region_unmap(base, KP_PAGES);
}

/* ---- 10. a process that has exited --------------------------------------- */

static void
test_exited(void)
{
	char	   *base;
	child		ch = {0};
	int			cfd = -1;
	pid_t		pid;
	kmem_counts c;
	uint64_t	e[4];
	kmem_vma   *v = malloc(sizeof(kmem_vma));
	uint64_t	kb;

	base = region_map(64, PRIVATE_ANON, -1);
	if (!ok(base != NULL && v != NULL && child_start(&ch), "exited: child forked"))
		goto out;
	child_touch(&ch, 'w', base, 64);
	pid = ch.pid;
	cfd = kmem_pagemap_open(pid);
	ok(cfd >= 0 && present_of(cfd, base, 64) == 64,
	   "exited: child's pagemap opened while alive, its 64 written pages present");
	OK_EQ(child_stop(&ch), 0, "exited: child exited and was reaped");
	if (cfd < 0)
		goto out;

	for (int scan = 0; scan <= 1; scan++)
	{
		int			r;
		int			err;

		errno = 0;
		r = do_walk(cfd, base, 64, scan, 8, 16, &c, NULL, NULL, NULL);
		err = errno;
		if (!ok((r == -1 && err == ESRCH) || (r == 0 && c.present == 0 && c.swapped == 0),
				"exited: kmem_walk (%s) fails with ESRCH or finds nothing",
				scan ? "scan" : "pread"))
			diag("  ret %d errno %s present %" PRIu64, r, strerror(err), c.present);
	}
	OK_EQ(kmem_pagemap_read(cfd, A(base), 4, e), 0,
		  "exited: kmem_pagemap_read returns 0 entries");
	errno = 0;
	ok(kmem_pagemap_open(pid) < 0 && (errno == ENOENT || errno == ESRCH),
	   "exited: kmem_pagemap_open of the reaped pid fails");
	ok(kmem_smaps_range(pid, A(base), A(base) + 64 * ps, v) == -1 &&
	   kmem_maps_lookup(pid, A(base), v) == -1 &&
	   kmem_status_kb(pid, "VmPTE", &kb) == -1 &&
	   kmem_stat(pid, NULL, NULL, NULL) == -1,
	   "exited: smaps, maps, status and stat of the reaped pid fail");

out:
	finish(&ch, cfd, -1);
	region_unmap(base, 64);
	free(v);
}

/* ---- 11. memfd ----------------------------------------------------------- */

#define MF_PAGES	64

static void
test_memfd(void)
{
	const kmem_caps *caps = kmem_get_caps();
	int			mfd,
				self = -1,
				cfd = -1;
	char	   *base = NULL;
	kmem_vma   *v = malloc(sizeof(kmem_vma));
	child		ch = {0};
	uint64_t	pe,
				ce;
	int			n;

	mfd = memfd_create("ptbm_unit", MFD_CLOEXEC);
	if (!ok(mfd >= 0 && v && ftruncate(mfd, MF_PAGES * ps) == 0,
			"memfd: created and sized to %d pages", MF_PAGES))
		goto out;
	base = region_map(MF_PAGES, SHARED_MEMFD, mfd);
	self = kmem_pagemap_open(0);
	if (!ok(base && self >= 0, "memfd: mapped MAP_SHARED"))
		goto out;
	for (size_t i = 0; i < MF_PAGES; i += 4)
		touch_write(base, i);

	pe = pm_entry(self, page(base, 8));
	ok((pe & PM_PRESENT) && (pe & PM_FILE) && (pe & PM_MMAP_EXCLUSIVE),
	   "memfd: written page present, file, exclusive");
	n = kmem_maps_lookup(0, A(page(base, 8)), v);
	if (!ok(n == 1 && strncmp(v->path, "/memfd:", 7) == 0 && strstr(v->path, "ptbm_unit"),
			"memfd: maps path starts with /memfd: and has the name"))
		diag("  path \"%s\"", n == 1 ? v->path : "");
	n = kmem_smaps_range(0, A(base), A(base) + MF_PAGES * ps, v);
	OK_EQ(n >= 1 ? v->kb[KSM_RSS] : UINT64_MAX, present_of(self, base, MF_PAGES) * ps / 1024,
		  "memfd: smaps Rss equals kmem_walk's present pages");
	ok(n >= 1 && strncmp(v->path, "/memfd:", 7) == 0 && has_token(v->vmflags, "sh"),
	   "memfd: smaps path /memfd:, VmFlags sh");

	if (!ok(child_start(&ch), "memfd: child forked"))
		goto out;
	cfd = kmem_pagemap_open(ch.pid);
	ce = cfd >= 0 ? pm_entry(cfd, page(base, 8)) : 1;
	ok((ce & ~PM_IGNORED) == 0, "memfd: child has no PTE before touching");
	child_touch(&ch, 'r', page(base, 8), 1);
	ce = cfd >= 0 ? pm_entry(cfd, page(base, 8)) : 0;
	pe = pm_entry(self, page(base, 8));
	ok((ce & PM_PRESENT) && (ce & PM_FILE) && !(ce & PM_MMAP_EXCLUSIVE) &&
	   !(pe & PM_MMAP_EXCLUSIVE),
	   "memfd: after the child reads, present and file in the child, exclusive in neither");
	if (!caps->frames_visible)
		skip("frames not visible", "memfd: same frame in child and parent");
	else
		ok(kmem_pfn(ce) != 0 && kmem_pfn(ce) == kmem_pfn(pe),
		   "memfd: same frame in child and parent");
	OK_EQ(child_stop(&ch), 0, "memfd: child exits cleanly");

out:
	finish(&ch, cfd, self);
	region_unmap(base, MF_PAGES);
	if (mfd >= 0)
		close(mfd);
	free(v);
}

/* ---- 12. per-process write tracking (userfaultfd async write-protect) ---- */

#define WT_PAGES	64

/* The pages of [base, base + npages) written since protection, as a bitmap. */
static int
written_pages(int fd, char *base, size_t npages, bool reset, uint64_t *bits)
{
	kmem_scan	s;
	struct page_region vec[8];
	ssize_t		n;
	int			total = 0;

	*bits = 0;
	kmem_scan_init(&s, fd, A(base), A(base) + npages * ps,
				   PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN, 0, 0, PAGE_IS_WRITTEN);
	if (reset)
		kmem_scan_set_flags(&s, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC);
	while ((n = kmem_scan_step(&s, vec, 8)) > 0)
		for (ssize_t k = 0; k < n; k++)
			for (uint64_t a = vec[k].start; a < vec[k].end; a += ps)
			{
				*bits |= UINT64_C(1) << ((a - A(base)) / ps);
				total++;
			}
	return n < 0 ? -1 : total;
}

static uint64_t
range_bits(int from, int to)
{
	uint64_t	b = 0;

	for (int i = from; i <= to; i++)
		b |= UINT64_C(1) << i;
	return b;
}

static void
test_uffd(void)
{
	const kmem_caps *caps = kmem_get_caps();
	char	   *base;
	child		ch = {0};
	int			uffd,
				self,
				cfd;
	uint64_t	mine,
				theirs;

	if (!caps->uffd_wp_async)
	{
		skip("no userfaultfd async write-protect", "uffd: per-process written sets");
		return;
	}
	base = region_map(WT_PAGES, SHARED_ANON, -1);
	if (!ok(base != NULL, "uffd: shared region mapped") || !child_start(&ch))
		return;
	uffd = kmem_uffd_wp_start(base, WT_PAGES * ps);
	ok(uffd >= 0, "uffd: the parent tracks its writes (unprivileged, user-mode only)");
	ok(child_touch(&ch, 't', base, WT_PAGES), "uffd: the child registers its own tracking");

	/*
	 * Untouched protected pages hold a PTE marker, which pagemap reports
	 * with the "swapped" bit: no reader may take it for a swapped page.
	 */
	{
		uint64_t	e;
		kmem_counts c = {0};
		kmem_work	w = {0};
		uint64_t	ents[WT_PAGES];
		struct page_region vec[8];
		int			fd = kmem_pagemap_open(0);

		pm_read(fd, page(base, 50), 1, &e);
		ok((e & PM_SWAP) && (e & PM_UFFD_WP) && !(e & PM_PRESENT),
		   "uffd: pagemap shows an untouched protected page with bits 62 and 57 (a PTE marker)");
		ok(kmem_ent_decode(e, false) == KMEM_ENT_MARKER && !kmem_ent_mapped(e, false),
		   "uffd: kmem tells the marker from a swap entry where no swap entry can be (shmem)");
		if (e & PM_PFN_MASK)
			ok(kmem_ent_decode(e, true) == KMEM_ENT_MARKER,
			   "uffd: with the swap type visible, a marker wherever it is (type %d)",
			   (int) PM_SWAP_TYPE(e));
		else
			ok(kmem_ent_decode(e, true) == KMEM_ENT_SWAP_OR_MARKER,
			   "uffd: with the swap type hidden, where swap entries can be: said to be undecidable");
		ok(kmem_ent_decode(PM_SWAP | (UINT64_C(3) << 5) | 1, true) == KMEM_ENT_SWAPPED &&
		   kmem_ent_decode(PM_SWAP, true) == KMEM_ENT_SWAPPED,
		   "uffd: a swap entry (type 1 offset 3; hidden without uffd-wp) decodes as swapped");
		w.ents = ents;
		w.ents_len = WT_PAGES;
		w.vec = vec;
		w.vec_len = 8;
		for (int scan = 0; scan < 2; scan++)
		{
			memset(&c, 0, sizeof(c));
			w.use_scan = scan;
			w.swap_possible = false;	/* shared: no swap entry in its PTEs */
			kmem_count(fd, A(base), A(base) + WT_PAGES * ps, &w, &c);
			OK_EQ(c.swapped, 0, "uffd: kmem_walk (%s) counts no swapped page", scan ? "PAGEMAP_SCAN" : "pread");
			OK_EQ(c.markers, WT_PAGES, "uffd: and a marker on each of the %d protected pages", WT_PAGES);
		}
		close(fd);
	}

	/* parent writes 10-19; the child writes 20-29 and reads 10-19 */
	for (int i = 10; i < 20; i++)
		touch_write(base, i);
	child_touch(&ch, 'w', page(base, 20), 10);
	child_touch(&ch, 'r', page(base, 10), 10);

	self = kmem_pagemap_open(0);
	cfd = kmem_pagemap_open(ch.pid);
	OK_EQ(written_pages(self, base, WT_PAGES, false, &mine), 10, "uffd: the parent wrote 10 pages");
	ok(mine == range_bits(10, 19), "uffd: exactly pages 10-19 in the parent's set");
	OK_EQ(written_pages(cfd, base, WT_PAGES, false, &theirs), 10,
		  "uffd: the child wrote 10 pages (read through its pagemap)");
	ok(theirs == range_bits(20, 29), "uffd: exactly pages 20-29 in the child's set, not the pages it read");

	/* the frame's DIRTY flag is global: set on 10-29 whoever wrote */
	if (caps->frames_visible && caps->kpageflags)
	{
		uint64_t	pe[20],
					pfns[20],
					flg[20];
		int			kf = kmem_kpage_open("kpageflags");
		bool		all = true;

		pm_read(cfd, page(base, 10), 20, pe);	/* the child maps all 20 */
		for (int i = 0; i < 20; i++)
			pfns[i] = kmem_pfn(pe[i]);
		kmem_kpage_read(kf, pfns, 20, flg);
		for (int i = 0; i < 20; i++)
			all = all && pfns[i] != 0 && (flg[i] & (UINT64_C(1) << 4));
		ok(all, "uffd: the frames' DIRTY flag is set on 10-29: the frame bit is shared");
		close(kf);
	}
	else
		skip("frames not visible", "uffd: the frames' DIRTY flag is set on 10-29");

	/* read and reset in one walk, then one write */
	OK_EQ(written_pages(self, base, WT_PAGES, true, &mine), 10, "uffd: reset returns the 10 pages");
	OK_EQ(written_pages(self, base, WT_PAGES, false, &mine), 0, "uffd: nothing written after the reset");
	touch_write(base, 12);
	written_pages(self, base, WT_PAGES, false, &mine);
	ok(mine == range_bits(12, 12), "uffd: after one write, exactly that page");
	written_pages(cfd, base, WT_PAGES, false, &theirs);
	ok(theirs == range_bits(20, 29), "uffd: the parent's reset left the child's set alone");

	ok(kmem_uffd_wp_stop(uffd, base, WT_PAGES * ps) == 0, "uffd: tracking stops");
	{
		kmem_vma	v;

		kmem_smaps_range(0, A(base), A(base) + WT_PAGES * ps, &v);
		ok(!has_token(v.vmflags, "uw"), "uffd: no write-protect registration left (VmFlags)");
	}
	close(self);
	close(cfd);
	child_stop(&ch);
	region_unmap(base, WT_PAGES);
}

/* ---- runs across chunks, and a walk cut short ------------------------------- */

#define RUNS_MAX	8

typedef struct runs_seen
{
	int			n;
	uint64_t	addr[RUNS_MAX];
	size_t		npages[RUNS_MAX];
} runs_seen;

static bool
pick_soft_dirty(void *arg, uint64_t ent)
{
	(void) arg;
	return (ent & PM_PRESENT) && (ent & PM_SOFT_DIRTY);
}

static void
emit_run(void *arg, uint64_t addr, size_t npages)
{
	runs_seen  *r = arg;

	if (r->n < RUNS_MAX)
	{
		r->addr[r->n] = addr;
		r->npages[r->n] = npages;
	}
	r->n++;
}

/*
 * A synthetic pagemap: a file of 16 entries read as the pagemap of a
 * process whose entries end there (a process that exits during a walk), and
 * a descriptor that cannot be read at all.  The runs built across chunks of
 * 3 pages must end at the last entry read, never at the end of the range
 * asked for, and a read error must not pass for an exit.
 */
static void
test_runs(void)
{
	char		path[] = "/tmp/ptbm_test_pagemap_XXXXXX";
	int			fd = mkstemp(path);
	uint64_t	file[16] = {0};
	uint64_t	ents[3];
	struct page_region vec[2];
	kmem_work	w = {.vec = vec, .vec_len = 2, .ents = ents, .ents_len = 3};
	runs_seen	seen = {0};
	kmem_runs	runs = {.pick = pick_soft_dirty, .emit = emit_run, .arg = &seen};
	int			r,
				err;

	if (!ok(fd >= 0, "runs: a synthetic pagemap file"))
		return;
	for (int p = 5; p <= 9; p++)
		file[p] = PM_PRESENT | PM_SOFT_DIRTY;
	file[11] = PM_PRESENT;		/* present, not picked */
	for (int p = 12; p <= 15; p++)	/* open when the entries end */
		file[p] = PM_PRESENT | PM_SOFT_DIRTY;
	if (write(fd, file, sizeof(file)) != (ssize_t) sizeof(file))
		diag("write: %s", strerror(errno));

	/* 64 pages asked for, 16 there: no PAGEMAP_SCAN on a regular file */
	r = kmem_walk(fd, 0, 64 * ps, 1, KMEM_ENTRIES, &w, kmem_runs_sink, &runs);
	err = errno;
	kmem_runs_end(&runs);
	ok(r < 0 && err == ESRCH, "runs: a walk past the entries ends with ESRCH (got %d, %s)",
	   r, strerror(err));
	ok(seen.n == 2 && seen.addr[0] == 5 * ps && seen.npages[0] == 5 &&
	   seen.addr[1] == 12 * ps && seen.npages[1] == 4,
	   "runs: pages 5-9 and 12-15, built across chunks of 3; the last run ends at the last entry read, not at the end of the range");
	if (seen.n >= 2)
		diag("  runs: %zu+%zu, %zu+%zu", (size_t) (seen.addr[0] / ps), seen.npages[0],
			 (size_t) (seen.addr[1] / ps), seen.npages[1]);
	close(fd);

	/* a descriptor that cannot be read: an error, not an exit */
	fd = open(path, O_WRONLY);
	memset(&seen, 0, sizeof(seen));
	r = kmem_walk(fd, 0, 64 * ps, 1, KMEM_ENTRIES, &w, kmem_runs_sink, &runs);
	err = errno;
	kmem_runs_end(&runs);
	ok(r < 0 && err == EBADF && seen.n == 0,
	   "runs: a read error is reported as that error (%s), nothing emitted", strerror(err));
	close(fd);
	unlink(path);
}

/* ---- NUMA nodes ------------------------------------------------------------ */

/* the nodes this machine has (/sys/devices/system/node/online), or -1 */
static int
online_nodes(void)
{
	FILE	   *f = fopen("/sys/devices/system/node/online", "r");
	char		buf[256];
	int			n = 0;
	char	   *p;

	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL)
	{
		fclose(f);
		return -1;
	}
	fclose(f);
	/* "0", "0-3", "0,2-3" */
	for (p = strtok(buf, ",\n"); p; p = strtok(NULL, ",\n"))
	{
		int			a,
					b;

		if (sscanf(p, "%d-%d", &a, &b) == 2)
			n += b - a + 1;
		else
			n++;
	}
	return n;
}

#define NUMA_PAGES 600			/* more than two move_pages chunks */

static void
test_numa(void)
{
	char	   *base;
	int			self;
	child		ch;
	uint64_t	addrs[NUMA_PAGES];
	uint64_t	before[NUMA_PAGES],
				after[NUMA_PAGES];
	int			nodes[NUMA_PAGES];
	int			nnodes = online_nodes();
	bool		all;
	int			r;

	if (!kmem_get_caps()->numa)
	{
		uint64_t	a = 0;
		int			node = 0;

		errno = 0;
		r = kmem_page_nodes(0, &a, 1, &node);
		ok(r < 0 && node == KMEM_NODE_NONE,
		   "numa: without move_pages, kmem_page_nodes fails (%s) and reports no node", strerror(errno));
		skip("this kernel reports no NUMA nodes", "numa: nodes of pages of another process");
		return;
	}
	diag("numa: %d node(s) online", nnodes);
	base = mmap(NULL, NUMA_PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	self = kmem_pagemap_open(0);
	if (!ok(base != MAP_FAILED && self >= 0, "numa: shared region of %d pages mapped before fork", NUMA_PAGES))
		return;
	for (size_t i = 0; i < NUMA_PAGES; i++)
		addrs[i] = A(page(base, i));
	/* the parent writes every third page; the child will read pages 0..99 */
	for (size_t i = 0; i < NUMA_PAGES; i += 3)
		touch_write(base, i);
	if (!ok(child_start(&ch), "numa: child forked"))
		return;
	ok(child_touch(&ch, 'r', base, 100), "numa: child reads pages 0..99");

	/* this process: a node exactly where a PTE is */
	r = kmem_page_nodes(0, addrs, NUMA_PAGES, nodes);
	all = r == 0;
	for (size_t i = 0; i < NUMA_PAGES; i++)
		all = all && ((i % 3 == 0) ? nodes[i] >= 0 && (nnodes < 0 || nodes[i] < 64) : nodes[i] == KMEM_NODE_NONE);
	ok(all, "numa: own pages: a node for each written page, none for the others (%d chunks)",
	   (NUMA_PAGES + KMEM_NODES_CHUNK - 1) / KMEM_NODES_CHUNK);
	if (nnodes == 1)
	{
		all = true;
		for (size_t i = 0; i < NUMA_PAGES; i += 3)
			all = all && nodes[i] == 0;
		ok(all, "numa: one node online: every present page is on node 0");
	}

	/* the child's page table, read from here: nothing faulted in by asking */
	all = child_pagemap(&ch, base, NUMA_PAGES, before) == NUMA_PAGES;
	r = kmem_page_nodes(ch.pid, addrs, NUMA_PAGES, nodes);
	all = all && child_pagemap(&ch, base, NUMA_PAGES, after) == NUMA_PAGES;
	ok(all && r == 0, "numa: the child's nodes read from the parent");
	all = true;
	for (size_t i = 0; i < NUMA_PAGES; i++)
	{
		bool		present = (before[i] & PM_PRESENT) != 0;

		all = all && (present == (nodes[i] >= 0)) &&
			((before[i] & ~PM_IGNORED) == (after[i] & ~PM_IGNORED));
	}
	ok(all, "numa: child: a node exactly for its present pages, and its pagemap unchanged by asking");
	all = true;
	/* (a read fault maps up to 16 neighbours from the page cache) */
	for (size_t i = 200; i < NUMA_PAGES; i++)
		all = all && nodes[i] == KMEM_NODE_NONE;
	ok(all, "numa: child: no node for pages far from any it touched, though they exist in the parent");
	all = true;
	for (size_t i = 0; i < 100; i += 3)
	{
		int			own;

		all = all && kmem_page_nodes(0, &addrs[i], 1, &own) == 0 && own == nodes[i];
	}
	ok(all, "numa: a page both map is on the same node in both (one frame)");
	child_stop(&ch);

	/* a private page only read maps the zero page: a PTE with no node */
	{
		char	   *z = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t	za[2];
		int			zn[2];

		touch_read(z, 0);
		touch_write(z, 1);
		za[0] = A(page(z, 0));
		za[1] = A(page(z, 1));
		r = kmem_page_nodes(0, za, 2, zn);
		ok(r == 0 && zn[0] == KMEM_NODE_UNKNOWN && zn[1] >= 0,
		   "numa: the zero page (a read of a private page) has no node, a written page has one");
		munmap(z, 4 * ps);
	}

	/* a process that has gone */
	{
		int			n0 = 0;

		errno = 0;
		r = kmem_page_nodes(NO_SUCH_PID, addrs, 1, &n0);
		ok(r < 0 && errno == ESRCH && n0 == KMEM_NODE_NONE,
		   "numa: no such process: ESRCH, no node");
	}
	close(self);
	munmap(base, NUMA_PAGES * ps);
}

/* ---- main ----------------------------------------------------------------- */

int
main(void)
{
	const char *seed = getenv("TEST_KMEM_SEED");

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	alarm(600);					/* a hang is a failure, not a stuck CI job */
	ps = kmem_page_size();
	rng_state = seed ? strtoull(seed, NULL, 0) :
		((uint64_t) time(NULL) << 20) ^ (uint64_t) getpid();
	if (rng_state == 0)
		rng_state = 1;
	diag("test_kmem: page size %zu, euid %d, seed %" PRIu64 " (TEST_KMEM_SEED)",
		 ps, (int) geteuid(), rng_state);

	test_pure();
	test_caps();
	test_shared_fork();
	test_private_fork();
	test_walk();
	test_smaps_maps();
	test_status_stat();
	test_kpage();
	test_exited();
	test_memfd();
	test_uffd();
	test_runs();
	test_numa();

	printf("1..%d\n", n_run);
	printf("test_kmem: %d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
	return n_fail == 0 ? 0 : 1;
}
