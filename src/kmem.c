/*-------------------------------------------------------------------------
 *
 * kmem.c
 *	  ptbm's kernel interface; see kmem.h.  No PostgreSQL dependency.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  src/kmem.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kmem.h"

/* ---- basics ------------------------------------------------------------ */

size_t
kmem_page_size(void)
{
	static size_t ps;

	if (ps == 0)
		ps = (size_t) sysconf(_SC_PAGESIZE);
	return ps;
}

void
kmem_proc_path(char *buf, size_t len, pid_t pid, const char *file)
{
	if (pid == 0)
		snprintf(buf, len, "/proc/self/%s", file);
	else
		snprintf(buf, len, "/proc/%d/%s", (int) pid, file);
}

int
kmem_pagemap_open(pid_t pid)
{
	char		path[64];

	kmem_proc_path(path, sizeof(path), pid, "pagemap");
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* pread until done; returns bytes read (short only at end of data) or -1 */
static ssize_t
pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t		got = 0;

	while (got < len)
	{
		ssize_t		r = pread(fd, (char *) buf + got, len - got, off + got);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += r;
	}
	return (ssize_t) got;
}

ssize_t
kmem_pagemap_read(int fd, uint64_t addr, size_t npages, uint64_t *out)
{
	off_t		off = (off_t) (addr / kmem_page_size()) * sizeof(uint64_t);
	ssize_t		r = pread_full(fd, out, npages * sizeof(uint64_t), off);

	if (r < 0)
		return -1;
	return r / (ssize_t) sizeof(uint64_t);
}

ssize_t
kmem_pagemap_read_stride(int fd, uint64_t addr, size_t n, size_t stride,
						 uint64_t *out)
{
	size_t		ps = kmem_page_size();

	if (stride <= 1)
		return kmem_pagemap_read(fd, addr, n, out);
	for (size_t i = 0; i < n; i++)
	{
		ssize_t		r = kmem_pagemap_read(fd, addr + i * stride * ps, 1, out + i);

		if (r != 1)
			return r < 0 ? -1 : (ssize_t) i;
	}
	return (ssize_t) n;
}

/* Closes fd on an error path, keeping errno; returns -1. */
static int
close_failed(int fd)
{
	int			save = errno;

	close(fd);
	errno = save;
	return -1;
}

/* ---- capabilities ------------------------------------------------------- */

static int	uffd_open(void);
static ssize_t scan_call(int fd, uint64_t start, uint64_t end, uint64_t flags,
						 uint64_t inverted, uint64_t mask, uint64_t anyof,
						 uint64_t retmask, struct page_region *vec,
						 size_t vec_len, uint64_t max_pages, uint64_t *walk_end);

const kmem_caps *
kmem_get_caps(void)
{
	static kmem_caps caps;
	static bool probed;
	size_t		ps = kmem_page_size();
	volatile char *p;
	int			fd;

	if (probed)
		return &caps;
	probed = true;

	/* a fresh private page, written: present in our page table */
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = kmem_pagemap_open(0);
	if (p != MAP_FAILED && fd >= 0)
	{
		uint64_t	ent = 0;
		struct page_region r;
		uint64_t	walk_end;

		p[0] = 1;
		if (kmem_pagemap_read(fd, (uint64_t) (uintptr_t) p, 1, &ent) == 1)
		{
			/* a new VMA is soft-dirty wherever the kernel tracks it at all */
			caps.soft_dirty = (ent & PM_SOFT_DIRTY) != 0;
			caps.frames_visible = kmem_pfn(ent) != 0;
		}
		caps.pagemap_scan =
			scan_call(fd, (uint64_t) (uintptr_t) p, (uint64_t) (uintptr_t) p + ps,
					  0, 0, 0, PAGE_IS_PRESENT, PAGE_IS_PRESENT, &r, 1, 0,
					  &walk_end) == 1;
	}
	if (fd >= 0)
		close(fd);
	if (p != MAP_FAILED)
		munmap((void *) p, ps);

	/* the node of a page of ours: move_pages works (no ENOSYS) */
	{
		char	   *q = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int			node = KMEM_NODE_NONE;

		if (q != MAP_FAILED)
		{
			uint64_t	a = (uint64_t) (uintptr_t) q;

			q[0] = 1;
			caps.numa = kmem_page_nodes(0, &a, 1, &node) == 0 && node >= 0;
			munmap(q, ps);
		}
	}

	fd = uffd_open();
	caps.uffd_wp_async = fd >= 0;
	if (fd >= 0)
		close(fd);

	fd = kmem_kpage_open("kpageflags");
	caps.kpageflags = fd >= 0;
	if (fd >= 0)
		close(fd);
	fd = kmem_kpage_open("kpagecount");
	caps.kpagecount = fd >= 0;
	if (fd >= 0)
		close(fd);
	return &caps;
}

/* ---- PAGEMAP_SCAN ------------------------------------------------------- */

static ssize_t
scan_call(int fd, uint64_t start, uint64_t end, uint64_t flags,
		  uint64_t inverted, uint64_t mask, uint64_t anyof, uint64_t retmask,
		  struct page_region *vec, size_t vec_len, uint64_t max_pages,
		  uint64_t *walk_end)
{
	struct pm_scan_arg arg;
	int			r;

	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.flags = flags;
	arg.start = start;
	arg.end = end;
	arg.vec = (uint64_t) (uintptr_t) vec;
	arg.vec_len = vec_len;
	arg.max_pages = max_pages;	/* 0: no limit */
	arg.category_inverted = inverted;
	arg.category_mask = mask;
	arg.category_anyof_mask = anyof;
	arg.return_mask = retmask;
	do
		r = ioctl(fd, PAGEMAP_SCAN, &arg);
	while (r < 0 && errno == EINTR);
	*walk_end = arg.walk_end;
	return r;
}

void
kmem_scan_init(kmem_scan *s, int fd, uint64_t start, uint64_t end,
			   uint64_t mask, uint64_t anyof, uint64_t inverted,
			   uint64_t retmask)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->next = start;
	s->end = end;
	s->mask = mask;
	s->anyof = anyof;
	s->inverted = inverted;
	s->retmask = retmask;
	s->done = start >= end;
}

ssize_t
kmem_scan_step(kmem_scan *s, struct page_region *vec, size_t vec_len)
{
	uint64_t	walk_end = 0;
	ssize_t		n;

	if (s->done)
		return 0;
	if (vec_len == 0)
	{
		errno = EINVAL;
		return -1;
	}
	n = scan_call(s->fd, s->next, s->end, s->flags, s->inverted, s->mask,
				  s->anyof, s->retmask, vec, vec_len, 0, &walk_end);
	if (n < 0)
		return -1;

	/*
	 * A full batch does not prove walk_end fresh either: the kernel fills vec
	 * in internal chunks of at most 512 ranges and only sets walk_end when a
	 * chunk overflows, so a walk that ends exactly full after more than one
	 * chunk reports the walk_end of an earlier chunk.  No range can start
	 * before the end of the last one returned.
	 */
	if (n > 0 && walk_end < vec[n - 1].end)
		walk_end = vec[n - 1].end;

	/*
	 * A batch shorter than vec_len means the walk reached the end; walk_end
	 * may then be stale, and restarting from it would count pages twice.
	 */
	if ((size_t) n < vec_len || walk_end <= s->next || walk_end >= s->end)
		s->done = true;
	else
		s->next = walk_end;
	return n;
}

int
kmem_any_mapped(int fd, uint64_t start, uint64_t end)
{
	struct page_region r;
	uint64_t	walk_end;
	ssize_t		n;

	if (start >= end)
		return 0;
	/* max_pages = 1: the walk stops at the first page found */
	n = scan_call(fd, start, end, 0, 0, 0, PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
				  PAGE_IS_PRESENT | PAGE_IS_SWAPPED, &r, 1, 1, &walk_end);
	return n < 0 ? -1 : n > 0;
}

/* ---- write tracking ---------------------------------------------------------- */

#define KMEM_UFFD_FEATURES (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | \
							UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* A userfaultfd with the asynchronous write-protect features; -1 if none. */
static int
uffd_open(void)
{
	struct uffdio_api api;
	int			fd;

	/* user-mode-only: allowed without privileges (vm.unprivileged_userfaultfd=0) */
	fd = (int) syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -1;
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = KMEM_UFFD_FEATURES;
	if (ioctl(fd, UFFDIO_API, &api) != 0)
		return close_failed(fd);
	if ((api.features & KMEM_UFFD_FEATURES) != KMEM_UFFD_FEATURES)
	{
		errno = EOPNOTSUPP;
		return close_failed(fd);
	}
	return fd;
}

static int
uffd_wp(int uffd, void *addr, size_t len, bool protect)
{
	struct uffdio_writeprotect wp;
	int			r;

	memset(&wp, 0, sizeof(wp));
	wp.range.start = (uint64_t) (uintptr_t) addr;
	wp.range.len = len;
	wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
	do
		r = ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
	while (r < 0 && errno == EAGAIN);	/* the mm changed under the call */
	return r;
}

int
kmem_uffd_wp_protect(int uffd, void *addr, size_t len)
{
	return uffd_wp(uffd, addr, len, true);
}

int
kmem_uffd_wp_unprotect(int uffd, void *addr, size_t len)
{
	return uffd_wp(uffd, addr, len, false);
}

int
kmem_uffd_wp_register(void *addr, size_t len)
{
	struct uffdio_register reg;
	int			fd = uffd_open();

	if (fd < 0)
		return -1;
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uint64_t) (uintptr_t) addr;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0)
		return close_failed(fd);
	return fd;
}

int
kmem_uffd_wp_start(void *addr, size_t len)
{
	int			fd = kmem_uffd_wp_register(addr, len);

	if (fd >= 0 && kmem_uffd_wp_protect(fd, addr, len) != 0)
		return close_failed(fd);
	return fd;
}

int
kmem_uffd_wp_stop(int uffd, void *addr, size_t len)
{
	struct uffdio_range range;
	int			r;

	range.start = (uint64_t) (uintptr_t) addr;
	range.len = len;
	r = ioctl(uffd, UFFDIO_UNREGISTER, &range);
	close(uffd);
	return r;
}

/* ---- the walker ---------------------------------------------------------- */

/* mapped ranges closer than this (in base pages) are read with one pread */
#define KMEM_GAP_PAGES 512

/* a page that has a PTE (present, a swap entry or a marker), or is present */
static bool
ent_wanted(uint64_t e, int wants)
{
	return (e & ((wants & KMEM_PRESENT) ? PM_PRESENT : PM_PRESENT | PM_SWAP)) != 0;
}

/*
 * Reads [start, end) in chunks of ents_len pages and delivers the runs of
 * wanted pages in each.  tick: whether to call the tick between chunks.
 */
static int
walk_runs(int fd, uint64_t start, uint64_t end, size_t stride, int wants,
		  kmem_work *w, kmem_sink sink, void *arg, bool tick)
{
	kmem_chunk	c = {.page_size = kmem_page_size() * stride, .ents = w->ents,
	.mapped = true, .swap_possible = w->swap_possible};

	for (uint64_t addr = start; addr < end;)
	{
		size_t		want = (end - addr) / c.page_size;
		ssize_t		got;
		size_t		i = 0;

		if (want > w->ents_len)
			want = w->ents_len;
		if (want == 0)
		{
			/* no buffer, or less than a page left */
			errno = EINVAL;
			return w->ents_len == 0 ? -1 : 0;
		}
		got = kmem_pagemap_read_stride(fd, addr, want, stride, w->ents);
		if (got < 0)
			return -1;
		while (i < (size_t) got)
		{
			size_t		j;

			if (!ent_wanted(w->ents[i], wants))
			{
				i++;
				continue;
			}
			for (j = i + 1; j < (size_t) got && ent_wanted(w->ents[j], wants); j++)
				;
			c.addr = addr + i * c.page_size;
			c.npages = j - i;
			c.ents = w->ents + i;
			if (sink(arg, &c))
				return 0;
			i = j;
		}
		if ((size_t) got < want)
		{
			errno = ESRCH;		/* the process exited: its entries end here */
			return -1;
		}
		addr += (uint64_t) got * c.page_size;
		if (tick && w->tick && w->tick(w->tick_arg))
			return 0;
	}
	return 0;
}

/* The runs PAGEMAP_SCAN finds, with their entries read in windows if wanted. */
static int
walk_scan(int fd, uint64_t start, uint64_t end, size_t stride, int wants,
		  kmem_work *w, kmem_sink sink, void *arg)
{
	size_t		ps = kmem_page_size();
	uint64_t	anyof = (wants & KMEM_PRESENT) ? PAGE_IS_PRESENT : PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
	uint64_t	retmask = (wants & KMEM_ENTRIES) ? anyof :
		anyof | PAGE_IS_FILE | PAGE_IS_PFNZERO | PAGE_IS_HUGE;
	kmem_scan	s;
	ssize_t		n;

	if (wants & KMEM_WRITTEN)
	{
		/* present pages that may be write-protected and are not any more */
		kmem_scan_init(&s, fd, start, end,
					   PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN | PAGE_IS_PRESENT, 0, 0,
					   PAGE_IS_WRITTEN);
		if (wants & KMEM_RESET)
			kmem_scan_set_flags(&s, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC);
		wants &= ~KMEM_ENTRIES;
	}
	else
		kmem_scan_init(&s, fd, start, end, 0, anyof, 0, retmask);
	while ((n = kmem_scan_step(&s, w->vec, w->vec_len)) > 0)
	{
		if (!(wants & KMEM_ENTRIES))
		{
			for (ssize_t i = 0; i < n; i++)
			{
				kmem_chunk	c = {.addr = w->vec[i].start, .page_size = ps * stride,
					.npages = (w->vec[i].end - w->vec[i].start) / (ps * stride),
					.run_cats = w->vec[i].categories, .mapped = true,
				.swap_possible = w->swap_possible};

				if (sink(arg, &c))
					return 0;
			}
		}
		else
		{
			uint64_t	wstart = w->vec[0].start;
			uint64_t	wend = w->vec[0].end;

			/*
			 * Ranges closer than KMEM_GAP_PAGES are read as one window: a
			 * pread per tiny range (a sparse, randomly touched region) costs
			 * more in system calls than reading the absent entries between.
			 */
			for (ssize_t i = 1; i <= n; i++)
			{
				int			r;

				if (i < n && w->vec[i].start - wend <= KMEM_GAP_PAGES * ps)
				{
					wend = w->vec[i].end;
					continue;
				}
				r = walk_runs(fd, wstart, wend, stride, wants, w, sink, arg, false);
				if (r != 0)
					return r;
				if (i < n)
				{
					wstart = w->vec[i].start;
					wend = w->vec[i].end;
				}
			}
		}
		if (w->tick && w->tick(w->tick_arg))
			return 0;
	}
	return n < 0 ? -1 : 0;
}

/* PAGEMAP_SCAN categories of each page of [addr, addr + n pages) into cats */
static void
chunk_categories(int fd, uint64_t addr, size_t n, size_t page_size, kmem_work *w)
{
	kmem_scan	s;
	ssize_t		r;

	memset(w->cats, 0, n * sizeof(uint16_t));
	kmem_scan_init(&s, fd, addr, addr + n * page_size, 0,
				   PAGE_IS_PRESENT | PAGE_IS_SWAPPED, 0,
				   PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO | PAGE_IS_HUGE);
	while ((r = kmem_scan_step(&s, w->vec, w->vec_len)) > 0)
		for (ssize_t k = 0; k < r; k++)
			for (uint64_t a = w->vec[k].start; a < w->vec[k].end; a += page_size)
				if ((a - addr) / page_size < n)
					w->cats[(a - addr) / page_size] = (uint16_t) w->vec[k].categories;
}

/* Every page, a chunk of ents_len pages at a time. */
static int
walk_pages(int fd, uint64_t start, uint64_t end, size_t stride, int wants,
		   kmem_work *w, kmem_sink sink, void *arg, bool scan)
{
	kmem_chunk	c = {.page_size = kmem_page_size() * stride, .ents = w->ents,
	.swap_possible = w->swap_possible};

	for (uint64_t addr = start; addr < end; addr += c.npages * c.page_size)
	{
		bool		cats = (wants & KMEM_CATEGORIES) && scan && w->cats;

		c.addr = addr;
		c.npages = (end - addr) / c.page_size;
		if (c.npages > w->ents_len)
			c.npages = w->ents_len;
		if (c.npages == 0)
		{
			errno = EINVAL;
			return w->ents_len == 0 ? -1 : 0;
		}
		c.cats = cats ? w->cats : NULL;
		c.mapped = !scan || kmem_any_mapped(fd, addr, addr + c.npages * c.page_size) != 0;
		if (!c.mapped)
		{
			/* nothing mapped in this chunk: no need to read its entries */
			memset(w->ents, 0, c.npages * sizeof(uint64_t));
			if (cats)
				memset(w->cats, 0, c.npages * sizeof(uint16_t));
		}
		else
		{
			ssize_t		got;

			if (cats)
				chunk_categories(fd, addr, c.npages, c.page_size, w);
			got = kmem_pagemap_read_stride(fd, addr, c.npages, stride, w->ents);
			if (got < 0)
				return -1;
			if ((size_t) got < c.npages)
			{
				c.npages = got;
				if (got > 0)
					(void) sink(arg, &c);
				errno = ESRCH;	/* the process exited: its entries end here */
				return -1;
			}
		}
		if (sink(arg, &c))
			return 0;
		if (w->tick && w->tick(w->tick_arg))
			return 0;
	}
	return 0;
}

/* the sink of a walk that only fills the caller's entries */
static int
no_sink(void *arg, const kmem_chunk *c)
{
	(void) arg;
	(void) c;
	return 0;
}

int
kmem_walk(int fd, uint64_t start, uint64_t end, size_t stride, int wants,
		  kmem_work *w, kmem_sink sink, void *arg)
{
	bool		scan = w->use_scan && kmem_get_caps()->pagemap_scan;

	if (sink == NULL)
		sink = no_sink;

	if (stride == 0)
		stride = 1;
	if (start >= end)
		return 0;
	if ((wants & KMEM_WRITTEN) && !kmem_get_caps()->pagemap_scan)
	{
		errno = EOPNOTSUPP;
		return -1;
	}
	if (wants & KMEM_WRITTEN)
		return walk_scan(fd, start, end, stride, wants, w, sink, arg);
	if (wants & KMEM_EVERY_PAGE)
		return walk_pages(fd, start, end, stride, wants, w, sink, arg, scan);
	if (scan)
		return walk_scan(fd, start, end, stride, wants, w, sink, arg);
	/* without PAGEMAP_SCAN, runs come from the entries themselves */
	return walk_runs(fd, start, end, stride, wants, w, sink, arg, true);
}

/* ---- sinks ----------------------------------------------------------------- */

void
kmem_count_entries(const uint64_t *ents, size_t n, bool swap_possible, kmem_counts *c)
{
	for (size_t i = 0; i < n; i++)
	{
		uint64_t	e = ents[i];

		switch (kmem_ent_decode(e, swap_possible))
		{
			case KMEM_ENT_PRESENT:
				c->present++;
				if (e & PM_FILE)
					c->file++;
				if (e & PM_MMAP_EXCLUSIVE)
					c->exclusive++;
				break;
			case KMEM_ENT_SWAPPED:
				c->swapped++;
				break;
			case KMEM_ENT_MARKER:
				c->markers++;
				break;
			case KMEM_ENT_SWAP_OR_MARKER:
				c->swap_or_marker++;
				break;
			case KMEM_ENT_NONE:
				break;
		}
		if (e & PM_SOFT_DIRTY)
			c->soft_dirty++;
		if (e & PM_UFFD_WP)
			c->uffd_wp++;
	}
}

int
kmem_count_sink(void *arg, const kmem_chunk *c)
{
	if (c->ents)
		kmem_count_entries(c->ents, c->npages, c->swap_possible, arg);
	return 0;
}

int
kmem_count(int fd, uint64_t start, uint64_t end, kmem_work *w, kmem_counts *c)
{
	c->pages += (end - start) / kmem_page_size();
	return kmem_walk(fd, start, end, 1, KMEM_ENTRIES, w, kmem_count_sink, c);
}

int
kmem_runs_sink(void *arg, const kmem_chunk *c)
{
	kmem_runs  *r = arg;

	r->page_size = c->page_size;
	for (size_t i = 0; i < c->npages; i++)
	{
		uint64_t	addr = c->addr + i * c->page_size;

		if (!c->ents || !r->pick(r->arg, c->ents[i]))
			continue;
		if (r->end != addr)
		{
			/* not adjacent to the open run: that run is over */
			kmem_runs_end(r);
			r->start = addr;
		}
		r->end = addr + c->page_size;
	}
	return 0;
}

void
kmem_runs_end(kmem_runs *r)
{
	if (r->end > r->start)
		r->emit(r->arg, r->start, (r->end - r->start) / r->page_size);
	r->start = r->end = 0;
}

/* ---- kpageflags / kpagecount ---------------------------------------------- */

void
kmem_kpage_path(char *buf, size_t len, const char *which)
{
	snprintf(buf, len, "/proc/%s", which);
}

int
kmem_kpage_open(const char *which)
{
	char		path[64];

	kmem_kpage_path(path, sizeof(path), which);
	return open(path, O_RDONLY | O_CLOEXEC);
}

int
kmem_kpage_read(int fd, const uint64_t *pfns, size_t n, uint64_t *out)
{
	size_t		i = 0;

	while (i < n)
	{
		size_t		j;
		ssize_t		r;

		if (pfns[i] == 0)
		{
			out[i++] = 0;
			continue;
		}
		for (j = i + 1; j < n && pfns[j] == pfns[j - 1] + 1; j++)
			;
		r = pread_full(fd, out + i, (j - i) * sizeof(uint64_t),
					   (off_t) pfns[i] * sizeof(uint64_t));
		if (r < 0)
			return -1;
		/* frames beyond the end of memory read as nothing: report 0 */
		memset((char *) (out + i) + r, 0, (j - i) * sizeof(uint64_t) - r);
		i = j;
	}
	return 0;
}

static const char *const kpf_names[64] = {
	[0] = "locked",[1] = "error",[2] = "referenced",[3] = "uptodate",
	[4] = "dirty",[5] = "lru",[6] = "active",[7] = "slab",
	[8] = "writeback",[9] = "reclaim",[10] = "buddy",[11] = "mmap",
	[12] = "anon",[13] = "swapcache",[14] = "swapbacked",
	[15] = "compound_head",[16] = "compound_tail",[17] = "huge",
	[18] = "unevictable",[19] = "hwpoison",[20] = "nopage",[21] = "ksm",
	[22] = "thp",[23] = "offline",[24] = "zero_page",[25] = "idle",
	[26] = "pgtable",
	/* kernel-internal bits, shown only by kernels built to show them */
	[32] = "reserved",[33] = "mlocked",[34] = "mappedtodisk",
	[35] = "private",[36] = "private_2",[37] = "owner_private",
	[38] = "arch",[39] = "uncached",[40] = "softdirty",[41] = "arch_2",
};

const char *
kmem_kpf_name(int bit)
{
	if (bit < 0 || bit > 63)
		return NULL;
	return kpf_names[bit];
}

int
kmem_kpf_decode(uint64_t flags, const char **names, int max)
{
	int			n = 0;

	for (int b = 0; b < 64 && n < max; b++)
		if (flags & (UINT64_C(1) << b))
			names[n++] = kpf_names[b] ? kpf_names[b] : "unknown";
	return n;
}

/* ---- maps / smaps / status -------------------------------------------------- */

static const char *const smaps_names[KSM_NFIELDS] = {
	[KSM_SIZE] = "Size",
	[KSM_KERNEL_PAGE_SIZE] = "KernelPageSize",
	[KSM_MMU_PAGE_SIZE] = "MMUPageSize",
	[KSM_RSS] = "Rss",
	[KSM_PSS] = "Pss",
	[KSM_PSS_DIRTY] = "Pss_Dirty",
	[KSM_SHARED_CLEAN] = "Shared_Clean",
	[KSM_SHARED_DIRTY] = "Shared_Dirty",
	[KSM_PRIVATE_CLEAN] = "Private_Clean",
	[KSM_PRIVATE_DIRTY] = "Private_Dirty",
	[KSM_REFERENCED] = "Referenced",
	[KSM_ANONYMOUS] = "Anonymous",
	[KSM_ANON_HUGE] = "AnonHugePages",
	[KSM_SHMEM_PMD] = "ShmemPmdMapped",
	[KSM_FILE_PMD] = "FilePmdMapped",
	[KSM_SHARED_HUGETLB] = "Shared_Hugetlb",
	[KSM_PRIVATE_HUGETLB] = "Private_Hugetlb",
	[KSM_SWAP] = "Swap",
	[KSM_SWAP_PSS] = "SwapPss",
	[KSM_LOCKED] = "Locked",
};

const char *
kmem_smaps_field_name(kmem_smaps_field f)
{
	return (f >= 0 && f < KSM_NFIELDS) ? smaps_names[f] : NULL;
}

/* Parses a maps header line; returns 1 if it is one. */
static int
parse_vma_line(const char *line, kmem_vma *v)
{
	unsigned long long start, end, off, ino;
	char		perms[8];
	char		dev[16];
	int			pathpos = 0;
	size_t		len;

	if (sscanf(line, "%llx-%llx %7s %llx %15s %llu %n",
			   &start, &end, perms, &off, dev, &ino, &pathpos) < 6)
		return 0;
	v->start = start;
	v->end = end;
	memcpy(v->perms, perms, sizeof(v->perms));
	v->offset = off;
	memcpy(v->dev, dev, sizeof(v->dev));
	v->inode = ino;
	v->path[0] = '\0';
	if (pathpos > 0)
	{
		snprintf(v->path, sizeof(v->path), "%s", line + pathpos);
		len = strlen(v->path);
		while (len > 0 && (v->path[len - 1] == '\n' || v->path[len - 1] == ' '))
			v->path[--len] = '\0';
	}
	return 1;
}

int
kmem_maps_lookup(pid_t pid, uint64_t addr, kmem_vma *out)
{
	char		path[64];
	char		line[KMEM_PATH_MAX + 128];
	FILE	   *f;
	int			found = 0;

	kmem_proc_path(path, sizeof(path), pid, "maps");
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
	{
		kmem_vma	v;

		if (!parse_vma_line(line, &v))
			continue;
		if (addr >= v.start && addr < v.end)
		{
			memset(out, 0, sizeof(*out));
			*out = v;
			out->nvmas = 1;
			out->vmflags[0] = '\0';
			memset(out->kb, 0, sizeof(out->kb));
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

int
kmem_smaps_range(pid_t pid, uint64_t start, uint64_t end, kmem_vma *out)
{
	char		path[64];
	char		line[KMEM_PATH_MAX + 128];
	FILE	   *f;
	bool		inside = false;
	kmem_vma	v;

	kmem_proc_path(path, sizeof(path), pid, "smaps");
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	while (fgets(line, sizeof(line), f))
	{
		char		key[64];
		unsigned long long val;

		if (parse_vma_line(line, &v))
		{
			inside = v.start < end && v.end > start;
			if (inside)
			{
				if (out->nvmas == 0)
				{
					out->start = v.start;
					memcpy(out->perms, v.perms, sizeof(out->perms));
					out->offset = v.offset;
					memcpy(out->dev, v.dev, sizeof(out->dev));
					out->inode = v.inode;
					memcpy(out->path, v.path, sizeof(out->path));
				}
				out->end = v.end;
				out->nvmas++;
			}
			else if (v.start >= end)
				break;			/* maps are sorted by address */
			continue;
		}
		if (!inside)
			continue;
		if (strncmp(line, "VmFlags:", 8) == 0)
		{
			if (out->nvmas == 1)
			{
				const char *s = line + 8;
				size_t		len;

				while (*s == ' ')
					s++;
				snprintf(out->vmflags, sizeof(out->vmflags), "%.255s", s);
				len = strlen(out->vmflags);
				while (len > 0 && (out->vmflags[len - 1] == '\n' || out->vmflags[len - 1] == ' '))
					out->vmflags[--len] = '\0';
			}
			continue;
		}
		if (sscanf(line, "%63[^:]: %llu kB", key, &val) == 2)
		{
			for (int i = 0; i < KSM_NFIELDS; i++)
				if (strcmp(key, smaps_names[i]) == 0)
				{
					/* page sizes are per VMA, not additive */
					if (i == KSM_KERNEL_PAGE_SIZE || i == KSM_MMU_PAGE_SIZE)
						out->kb[i] = val;
					else
						out->kb[i] += val;
					break;
				}
		}
	}
	if (ferror(f))
	{
		int			save = errno;

		fclose(f);
		errno = save;
		return -1;
	}
	fclose(f);
	return out->nvmas;
}

/*
 * Reads "Key:  N ..." lines from a /proc file of that form, in one pass:
 * the number of keys found (each absent one left 0), -1 on error.
 */
static int
proc_keys(const char *path, const char *const *keys, uint64_t *vals, int nkeys)
{
	char		line[256];
	FILE	   *f;
	int			found = 0;

	for (int k = 0; k < nkeys; k++)
		vals[k] = 0;
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (found < nkeys && fgets(line, sizeof(line), f))
	{
		for (int k = 0; k < nkeys; k++)
		{
			size_t		klen = strlen(keys[k]);
			unsigned long long v;

			if (strncmp(line, keys[k], klen) == 0 && line[klen] == ':' &&
				sscanf(line + klen + 1, " %llu", &v) == 1)
			{
				vals[k] = v;
				found++;
				break;
			}
		}
	}
	fclose(f);
	return found;
}

/* Reads "Key:  N ..." from a /proc file of that form.  1, 0 absent, -1. */
static int
proc_key_value(const char *path, const char *key, uint64_t *val)
{
	uint64_t	v;
	int			r = proc_keys(path, &key, &v, 1);

	if (r == 1)
		*val = v;
	return r;
}

int
kmem_status_kb(pid_t pid, const char *key, uint64_t *kb)
{
	char		path[64];

	kmem_proc_path(path, sizeof(path), pid, "status");
	return proc_key_value(path, key, kb);
}

int
kmem_meminfo(const char *key, uint64_t *val)
{
	return proc_key_value("/proc/meminfo", key, val);
}

int
kmem_meminfo_keys(const char *const *keys, uint64_t *vals, int nkeys)
{
	return proc_keys("/proc/meminfo", keys, vals, nkeys);
}

int
kmem_stat(pid_t pid, pid_t *ppid, uint64_t *minflt, uint64_t *majflt)
{
	char		path[64];
	char		buf[1024];
	char	   *p;
	int			fd;
	ssize_t		n;
	int			pp;
	unsigned long long mn,
				mj;

	kmem_proc_path(path, sizeof(path), pid, "stat");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
	{
		errno = ESRCH;
		return -1;
	}
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields restart after the last ')' */
	p = strrchr(buf, ')');
	if (p == NULL ||
		sscanf(p + 1, " %*c %d %*d %*d %*d %*d %*u %llu %*u %llu", &pp, &mn, &mj) != 3)
	{
		errno = EINVAL;
		return -1;
	}
	if (ppid)
		*ppid = pp;
	if (minflt)
		*minflt = mn;
	if (majflt)
		*majflt = mj;
	return 0;
}

/* ---- releasing memory ------------------------------------------------------ */

int
kmem_release(void *addr, size_t len)
{
	return madvise(addr, len, MADV_REMOVE);
}

int
kmem_drop_own(const struct iovec *iov, size_t n)
{
	static int	self = -2;		/* a pidfd of this process; -1: none */
	static pid_t self_pid;

	if (n == 0)
		return 0;
	/* a forked child has a pidfd of its parent: open one of its own */
	if (self == -2 || self_pid != getpid())
	{
#ifdef SYS_pidfd_open
		self = (int) syscall(SYS_pidfd_open, getpid(), 0);
#else
		self = -1;
#endif
		self_pid = getpid();
	}
#ifdef SYS_process_madvise
	/* at most IOV_MAX ranges per call */
	while (self >= 0 && n > 0)
	{
		size_t		k = n < 1024 ? n : 1024;
		ssize_t		r = syscall(SYS_process_madvise, self, iov, k, MADV_DONTNEED, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;				/* not this kernel's: one madvise per range */
		iov += k;
		n -= k;
	}
#endif
	for (size_t i = 0; i < n; i++)
		if (madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED) != 0)
			return -1;
	return 0;
}

/* ---- NUMA nodes ------------------------------------------------------------ */

int
kmem_page_nodes(pid_t pid, const uint64_t *addrs, size_t n, int *nodes)
{
#ifdef SYS_move_pages
	for (size_t done = 0; done < n;)
	{
		void	   *pages[KMEM_NODES_CHUNK];
		int			status[KMEM_NODES_CHUNK];
		size_t		k = n - done < KMEM_NODES_CHUNK ? n - done : KMEM_NODES_CHUNK;

		for (size_t i = 0; i < k; i++)
			pages[i] = (void *) (uintptr_t) addrs[done + i];
		/* no nodes: report where each page is, move nothing */
		if (syscall(SYS_move_pages, pid, (unsigned long) k, pages, NULL, status, 0) != 0)
		{
			int			err = errno;

			for (size_t i = done; i < n; i++)
				nodes[i] = KMEM_NODE_NONE;
			errno = err;
			return -1;
		}
		for (size_t i = 0; i < k; i++)
			nodes[done + i] = status[i] >= 0 ? status[i] :
				status[i] == -ENOENT ? KMEM_NODE_NONE :
				status[i] == -EFAULT ? KMEM_NODE_UNKNOWN : KMEM_NODE_NONE;
		done += k;
	}
	return 0;
#else
	for (size_t i = 0; i < n; i++)
		nodes[i] = KMEM_NODE_NONE;
	errno = ENOSYS;
	return -1;
#endif
}

/* ---- memory that can still be allocated ----------------------------------- */

/* v1 reports "no limit" as the largest page counter, about 2^63 */
#define KMEM_NO_LIMIT	(UINT64_C(1) << 62)

/* Reads the first number of a small file ("max" reads as no limit). */
static int
read_u64_file(const char *path, uint64_t *val)
{
	char		buf[64];
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t		n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (strncmp(buf, "max", 3) == 0)
		*val = UINT64_MAX;
	else
		*val = strtoull(buf, NULL, 10);
	return 0;
}

/*
 * Where this process's memory cgroup directory is: v1 (the hierarchy
 * with the memory controller) or else v2.  Returns 1 (dir filled, and the
 * mount point under which the walk up stops), 0 when there is none.
 */
static int
memcg_dir(char *dir, size_t dirlen, char *mnt, size_t mntlen, bool *v2)
{
	char		line[KMEM_PATH_MAX + 256];
	char		v1path[KMEM_PATH_MAX] = "";
	char		v2path[KMEM_PATH_MAX] = "";
	bool		have_v1 = false,
				have_v2 = false;
	FILE	   *f = fopen("/proc/self/cgroup", "re");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
	{
		char	   *c1 = strchr(line, ':');
		char	   *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		size_t		len;

		if (c2 == NULL)
			continue;
		*c1 = *c2 = '\0';
		len = strlen(c2 + 1);
		if (len > 0 && c2[len] == '\n')
			c2[len] = '\0';
		if (c1[1] == '\0' && strcmp(line, "0") == 0)
		{
			snprintf(v2path, sizeof(v2path), "%s", c2 + 1);
			have_v2 = true;
		}
		else
		{
			char		ctl[256];
			char	   *save;

			snprintf(ctl, sizeof(ctl), "%s", c1 + 1);
			for (char *t = strtok_r(ctl, ",", &save); t; t = strtok_r(NULL, ",", &save))
				if (strcmp(t, "memory") == 0)
				{
					snprintf(v1path, sizeof(v1path), "%s", c2 + 1);
					have_v1 = true;
				}
		}
	}
	fclose(f);

	/* the hierarchy's mount: "... root mountpoint ... - fstype source opts" */
	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
	{
		char		root[KMEM_PATH_MAX],
					point[KMEM_PATH_MAX],
					fstype[64],
					opts[512];
		char	   *dash = strstr(line, " - ");
		const char *path = NULL;
		size_t		rlen;

		if (dash == NULL ||
			sscanf(line, "%*d %*d %*s %4095s %4095s", root, point) != 2 ||
			sscanf(dash + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		if (have_v1 && strcmp(fstype, "cgroup") == 0 &&
			(strstr(opts, ",memory") || strncmp(opts, "memory", 6) == 0))
			path = v1path, *v2 = false;
		else if (!have_v1 && have_v2 && strcmp(fstype, "cgroup2") == 0)
			path = v2path, *v2 = true;
		if (path == NULL)
			continue;
		/* the cgroup's path is relative to the hierarchy's root */
		rlen = strcmp(root, "/") == 0 ? 0 : strlen(root);
		if (rlen > 0 && strncmp(path, root, rlen) != 0)
			continue;			/* not below this mount */
		snprintf(dir, dirlen, "%s%s", point, path + rlen);
		snprintf(mnt, mntlen, "%s", point);
		fclose(f);
		return 1;
	}
	fclose(f);
	return 0;
}

int
kmem_mem_headroom(kmem_headroom *h)
{
	char		dir[KMEM_PATH_MAX],
				mnt[KMEM_PATH_MAX];
	bool		v2 = false;
	uint64_t	avail_kb;

	if (kmem_meminfo("MemAvailable", &avail_kb) != 1)
		return -1;
	h->bytes = h->limit = avail_kb * 1024;
	h->usage = 0;
	snprintf(h->what, sizeof(h->what), "MemAvailable");

	if (!memcg_dir(dir, sizeof(dir), mnt, sizeof(mnt), &v2))
		return 0;
	/* from this process's cgroup up to the hierarchy's root */
	for (;;)
	{
		char		lpath[KMEM_PATH_MAX + 32],
					upath[KMEM_PATH_MAX + 32];
		uint64_t	limit,
					usage;
		char	   *slash;

		snprintf(lpath, sizeof(lpath), "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
		snprintf(upath, sizeof(upath), "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
		if (read_u64_file(lpath, &limit) == 0 && read_u64_file(upath, &usage) == 0 &&
			limit < KMEM_NO_LIMIT)
		{
			uint64_t	room = limit > usage ? limit - usage : 0;

			if (room < h->bytes)
			{
				size_t		mlen = strlen(mnt);

				h->bytes = room;
				h->limit = limit;
				h->usage = usage;
				snprintf(h->what, sizeof(h->what), "memory cgroup %s",
						 dir[mlen] ? dir + mlen : "/");
			}
		}
		if (strcmp(dir, mnt) == 0 || (slash = strrchr(dir, '/')) == NULL || slash == dir)
			break;
		*slash = '\0';
		if (strlen(dir) < strlen(mnt))
			break;
	}
	return 0;
}

int64_t
kmem_resident_pages(void *addr, size_t npages, unsigned char *vec, size_t vec_len)
{
	size_t		ps = kmem_page_size();
	int64_t		n = 0;

	if (vec_len == 0)
	{
		errno = EINVAL;
		return -1;
	}
	for (size_t done = 0; done < npages;)
	{
		size_t		k = npages - done < vec_len ? npages - done : vec_len;

		if (mincore((char *) addr + done * ps, k * ps, vec) != 0)
			return -1;
		for (size_t i = 0; i < k; i++)
			n += vec[i] & 1;
		done += k;
	}
	return n;
}
