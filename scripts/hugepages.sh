#!/usr/bin/env bash
# Prepares the kernel's huge pages for the test suites, as root, and puts
# them back afterwards.  The tests that need huge pages run as postgres and
# cannot change these knobs; without them, those tests skip.
#
#   scripts/hugepages.sh reserve N      make at least N huge pages free: raise
#                                       vm.nr_hugepages by the shortfall
#   scripts/hugepages.sh shmem-thp MODE set transparent_hugepage/shmem_enabled
#                                       (always, within_size, advise, never)
#   scripts/hugepages.sh restore        put back what reserve and shmem-thp
#                                       changed
#   scripts/hugepages.sh status         print the pool and the shmem THP mode
#
# The first change saves the previous values in $PTBM_HUGEPAGES_STATE
# (default /run/ptbm-hugepages.state); restore writes them back and removes
# the file, so calls may repeat and restore always returns to the state
# before the first one.  reserve exits 0 even when the kernel could not find
# enough contiguous memory (the tests then skip); it says so on stderr.
set -euo pipefail

NR=/proc/sys/vm/nr_hugepages
THP=/sys/kernel/mm/transparent_hugepage/shmem_enabled
STATE=${PTBM_HUGEPAGES_STATE:-/run/ptbm-hugepages.state}
[ -d "$(dirname "$STATE")" ] || STATE=/tmp/ptbm-hugepages.state

meminfo() {						# meminfo KEY: the number after "KEY:"
	awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo
}

free_pages() {					# free and not reserved by a mapping yet
	echo $(($(meminfo HugePages_Free) - $(meminfo HugePages_Rsvd)))
}

thp_mode() {					# the bracketed word of shmem_enabled
	sed -n 's/.*\[\(.*\)\].*/\1/p' "$THP"
}

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "hugepages.sh: $1 needs root" >&2
		exit 1
	fi
}

# saved KEY: the value saved for KEY, empty if none
saved() {
	[ -f "$STATE" ] && sed -n "s/^$1=//p" "$STATE" || true
}

save_once() {					# save_once KEY VALUE
	if [ -z "$(saved "$1")" ]; then
		echo "$1=$2" >>"$STATE"
	fi
}

status() {
	echo "vm.nr_hugepages=$(cat "$NR") free=$(meminfo HugePages_Free)" \
		"reserved=$(meminfo HugePages_Rsvd) size=$(meminfo Hugepagesize)kB" \
		"shmem_thp=$([ -r "$THP" ] && thp_mode || echo none)"
}

case "${1:-}" in
reserve)
	need_root reserve
	n=${2:-}
	if ! [[ "$n" =~ ^[0-9]+$ ]]; then
		echo "usage: $0 reserve N" >&2
		exit 2
	fi
	save_once nr_hugepages "$(cat "$NR")"
	# a few tries: memory may need compacting, and a running server with
	# huge_pages = try may reserve some of the new pages meanwhile
	for _ in 1 2 3; do
		short=$((n - $(free_pages)))
		[ "$short" -gt 0 ] || break
		[ -w /proc/sys/vm/compact_memory ] && echo 1 >/proc/sys/vm/compact_memory
		echo $(($(cat "$NR") + short)) >"$NR"
	done
	if [ "$(free_pages)" -lt "$n" ]; then
		echo "hugepages.sh: asked for $n free huge pages, the kernel found $(free_pages);" \
			"the tests that need them will skip" >&2
	fi
	status
	;;
shmem-thp)
	need_root shmem-thp
	mode=${2:-}
	case "$mode" in
	always | within_size | advise | never | deny | force) ;;
	*)
		echo "usage: $0 shmem-thp always|within_size|advise|never" >&2
		exit 2
		;;
	esac
	if [ ! -w "$THP" ]; then
		echo "hugepages.sh: $THP is not writable: no shmem THP here" >&2
		exit 0
	fi
	save_once shmem_enabled "$(thp_mode)"
	echo "$mode" >"$THP"
	status
	;;
restore)
	need_root restore
	if [ -f "$STATE" ]; then
		nr=$(saved nr_hugepages)
		thp=$(saved shmem_enabled)
		if [ -n "$nr" ]; then
			echo "$nr" >"$NR"
			if [ "$(cat "$NR")" != "$nr" ]; then
				echo "hugepages.sh: vm.nr_hugepages is $(cat "$NR"), not $nr:" \
					"huge pages still in use" >&2
			fi
		fi
		if [ -n "$thp" ] && [ -w "$THP" ]; then
			echo "$thp" >"$THP"
		fi
		rm -f "$STATE"
	fi
	status
	;;
status)
	status
	;;
*)
	echo "usage: $0 reserve N | shmem-thp MODE | restore | status" >&2
	exit 2
	;;
esac
