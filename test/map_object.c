/*-------------------------------------------------------------------------
 *
 * map_object.c
 *	  A process outside the cluster maps a file (a region's backing
 * object) with MAP_SHARED and prints bytes of it; optionally writes first.
 *
 *   map_object PATH OFFSET LENGTH [TEXT]
 *
 * Used by t/011_claim08_outside_process.pl.  Prints the bytes read as text,
 * with NUL bytes shown as '.'.
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  test/map_object.c
 *
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	int			fd;
	long		off,
				len,
				pg = sysconf(_SC_PAGESIZE);
	long		base;
	char	   *p;

	if (argc < 4)
	{
		fprintf(stderr, "usage: map_object PATH OFFSET LENGTH [TEXT]\n");
		return 2;
	}
	off = atol(argv[2]);
	len = atol(argv[3]);
	fd = open(argv[1], argc > 4 ? O_RDWR : O_RDONLY);
	if (fd < 0)
	{
		perror("open");
		return 1;
	}
	base = off - off % pg;
	p = mmap(NULL, off - base + len, argc > 4 ? PROT_READ | PROT_WRITE : PROT_READ,
			 MAP_SHARED, fd, base);
	if (p == MAP_FAILED)
	{
		perror("mmap");
		return 1;
	}
	if (argc > 4)
		memcpy(p + (off - base), argv[4], strlen(argv[4]));
	for (long i = 0; i < len; i++)
		putchar(p[off - base + i] ? p[off - base + i] : '.');
	putchar('\n');
	return 0;
}
