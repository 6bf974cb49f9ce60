/*-------------------------------------------------------------------------
 *
 * without_syscall.c
 *	  Runs a command in which one system call fails with ENOSYS, as on a
 *	  kernel built without it: a seccomp filter that every child inherits
 *	  (the postmaster and its backends, when the command starts the server).
 *	  For the tests of what ptbm does on kernels without userfaultfd (write
 *	  tracking) or without NUMA (move_pages).
 *
 *	  without_syscall userfaultfd|move_pages COMMAND [ARG...]
 *
 * Copyright (c) 2026, ptbm developers
 *
 * IDENTIFICATION
 *	  test/without_syscall.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

int
main(int argc, char **argv)
{
	int			nr;

	if (argc < 3 ||
		(strcmp(argv[1], "userfaultfd") != 0 && strcmp(argv[1], "move_pages") != 0))
	{
		fprintf(stderr, "usage: %s userfaultfd|move_pages COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	nr = strcmp(argv[1], "userfaultfd") == 0 ? __NR_userfaultfd : __NR_move_pages;
	{
		struct sock_filter filter[] = {
			/* another architecture's calls: let them be */
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned) nr, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {
			.len = sizeof(filter) / sizeof(filter[0]),
			.filter = filter,
		};

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
			prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		{
			perror("without_syscall: seccomp");
			return 1;
		}
	}
	execvp(argv[2], argv + 2);
	perror("without_syscall: exec");
	return 1;
}
