#!/usr/bin/env bash
# Prepares, as root, the limits some test suites run under, and removes them:
#
#   scripts/limits.sh prepare DIR   a small tmpfs at DIR/smallfs (96 MB) and a
#                                   memory cgroup with a 400 MB limit, both
#                                   usable by the postgres user; prints the
#                                   environment the tests read:
#                                   PTBM_TEST_SMALL_FS=... PTBM_TEST_MEMCG=...
#   scripts/limits.sh restore DIR   unmounts and removes what prepare made
#
# What the machine does not allow (no mount, no memory controller, a
# cgroup v2 parent that cannot delegate it) is left out with a note on
# stderr; the tests that need it then skip.
set -uo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 prepare|restore DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "limits.sh: needs root" >&2; exit 0; }

# this process's memory cgroup directory (v1 memory hierarchy, else v2)
memcg_parent() {
	local v1 v2
	v1=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
	if [ -n "$v1" ]; then
		local mnt
		mnt=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break }
			$(i + 1) == "cgroup" && $(i + 3) ~ /(^|,)memory(,|$)/ { print $5; exit }' /proc/self/mountinfo)
		[ -n "$mnt" ] && echo "$mnt$v1" && return
	fi
	v2=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
	local mnt2
	mnt2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break }
		$(i + 1) == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	[ -n "$mnt2" ] && grep -qw memory "$mnt2$v2/cgroup.controllers" 2>/dev/null && echo "$mnt2$v2"
}

case "$cmd" in
prepare)
	mkdir -p "$dir/smallfs"
	if mount -t tmpfs -o size=96m,mode=0700,uid="$(id -u postgres)" tmpfs "$dir/smallfs" 2>/dev/null; then
		echo "PTBM_TEST_SMALL_FS=$dir/smallfs"
	else
		echo "limits.sh: could not mount a tmpfs; the full-disk test skips" >&2
	fi
	parent=$(memcg_parent)
	cg=${parent:+$parent/ptbm-test-$$}
	if [ -n "$cg" ] && mkdir "$cg" 2>/dev/null; then
		if [ -f "$cg/memory.limit_in_bytes" ]; then
			echo $((400 * 1024 * 1024)) >"$cg/memory.limit_in_bytes"
		else
			echo +memory >"$parent/cgroup.subtree_control" 2>/dev/null
			echo $((400 * 1024 * 1024)) >"$cg/memory.max" 2>/dev/null
		fi
		if chown postgres "$cg/cgroup.procs" 2>/dev/null && { [ ! -f "$cg/tasks" ] || chown postgres "$cg/tasks"; }; then
			echo "$cg" >"$dir/memcg"
			echo "PTBM_TEST_MEMCG=$cg"
		else
			rmdir "$cg"
			echo "limits.sh: could not delegate a memory cgroup; the memory-limit test skips" >&2
		fi
	else
		echo "limits.sh: no memory cgroup to make one in; the memory-limit test skips" >&2
	fi
	;;
restore)
	if [ -f "$dir/memcg" ]; then
		cg=$(cat "$dir/memcg")
		# processes left in it (none, normally) go back to the parent
		for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do echo "$p" >"$(dirname "$cg")/cgroup.procs"; done
		rmdir "$cg" 2>/dev/null
		rm -f "$dir/memcg"
	fi
	mountpoint -q "$dir/smallfs" && umount "$dir/smallfs"
	rmdir "$dir/smallfs" 2>/dev/null
	;;
esac
exit 0
