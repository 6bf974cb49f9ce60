#!/usr/bin/env bash
# Installs what is missing, builds and installs ptbm, and runs every suite:
# C unit tests of the kernel interface (as root, as postgres, and without
# NUMA), pg_regress, isolation (shared_anon and private_anon regions) and
# TAP.
# Ends with one line "ptbm: N passed, N failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
. scripts/common.sh

set -e
# postgres_exporter for t/041 (Debian's package; the test skips without it)
ptbm_install_deps prometheus-postgres-exporter
ptbm_build_install
RUN=$(ptbm_tree_for_postgres "$SRC")
set +e
LIMITS=$(mktemp -d /tmp/ptbm-limits.XXXXXX)
cleanup() {
	cd / && rm -rf "$RUN"
	if [ "$(id -u)" = 0 ]; then
		bash "$SRC/scripts/limits.sh" restore "$LIMITS"
		bash "$SRC/scripts/hugepages.sh" restore
	fi
	rmdir "$LIMITS" 2>/dev/null
}
trap cleanup EXIT
cd "$RUN"

# Huge pages for the hugetlb and THP tests, a small file system and a
# memory cgroup for the tests of what happens at their limits (root's
# knobs; restored on exit).  Without root those tests skip.
if [ "$(id -u)" = 0 ]; then
	bash "$SRC/scripts/hugepages.sh" reserve 600
	bash "$SRC/scripts/hugepages.sh" shmem-thp advise
	for v in $(bash "$SRC/scripts/limits.sh" prepare "$LIMITS"); do export "${v?}"; done
fi

passed=0
failed=0
count() {						# count PASSED FAILED
	passed=$((passed + $1))
	failed=$((failed + $2))
}

echo "== unit tests of the kernel interface"
as_postgres make -s -C test/unit >/dev/null
# and once more where move_pages fails as on a kernel without NUMA
as_postgres cc -O -o test/unit/without_syscall test/without_syscall.c
for who in root postgres no-numa; do
	if [ "$who" = root ] && [ "$(id -u)" != 0 ]; then continue; fi
	case $who in
	root) out=$(test/unit/test_kmem) ;;
	postgres) out=$(as_postgres test/unit/test_kmem) ;;
	no-numa) out=$(as_postgres test/unit/without_syscall move_pages test/unit/test_kmem) ;;
	esac
	echo "$out" | grep -E '^(not ok|ok .*# SKIP)' | sed "s/^/  [$who] /"
	line=$(echo "$out" | tail -n 1)
	echo "  [$who] $line"
	p=$(echo "$line" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')
	f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	count "${p:-0}" "${f:-1}"
done

# Each suite on its own, so that a failure in one does not hide the others.
suite() {						# name diffs make-arguments...
	local name=$1
	local diffs=$2
	shift 2
	echo "== $name (as postgres${WITH:-})"
	${RUNNER:-as_postgres} make "$@" >"$name.log" 2>&1
	local rc=$?
	grep -E '^(test |     )?[a-z_0-9]+ +\.\.\. |^t/.*\.\. |Result:' "$name.log" | sed 's/^/  /'
	count "$(grep -cE '\.\.\. ok' "$name.log")" "$(grep -cE '\.\.\. FAILED' "$name.log")"
	if [ $rc -ne 0 ]; then
		failed=$((failed + 1))
		echo "  -- $name failed (make exit $rc); its log:"
		[ -f "$diffs" ] && head -n 150 "$diffs" | sed 's/^/  | /'
		grep -E 'Dubious|Failed|Bailout|Error' "$name.log" | head -n 20 | sed 's/^/  | /'
		if [ "${name%%-*}" = tap ]; then
			for log in tmp_check/log/regress_log_*; do
				grep -q 'not ok\|Bailout' "$log" 2>/dev/null &&
					grep -B2 -A12 'not ok\|Bailout' "$log" | head -n 60 | sed "s#^#  | $(basename "$log"): #"
			done
		fi
	fi
	return 0
}

suite regress regression.diffs installcheck ISOLATION= TAP_TESTS=
suite isolation output_iso/regression.diffs installcheck REGRESS= TAP_TESTS=
suite isolation-private output_iso_private/regression.diffs installcheck-private
suite tap - installcheck REGRESS= ISOLATION=
# TAP: every assertion, from the per-test logs (each TAP run starts afresh)
count_tap() {
	for log in tmp_check/log/regress_log_*; do
		[ -f "$log" ] || continue
		count "$(grep -c '^\[[0-9:.]*\]([0-9.]*s) ok \|^ok ' "$log")" \
			"$(grep -c '^\[[0-9:.]*\]([0-9.]*s) not ok \|^not ok ' "$log")"
	done
}
count_tap

# Frame numbers: the kernel shows them only to processes with CAP_SYS_ADMIN,
# and /proc/kpagecount and /proc/kpageflags only to root (CAP_DAC_READ_SEARCH
# does it too).  Root hands these to the postgres user as ambient
# capabilities, so that the server started by the test has them, and t/015
# and t/031 (which skip in the run above) run twice: frames alone, then with
# both.
as_postgres_caps() {				# caps command...
	local caps=$1
	shift
	setpriv --reuid=postgres --regid=postgres --init-groups \
		--inh-caps="$caps" --ambient-caps="$caps" \
		env HOME="$(getent passwd postgres | cut -d: -f6)" "$@"
}
as_postgres_frames() { as_postgres_caps +sys_admin "$@"; }
as_postgres_kpage() { as_postgres_caps +sys_admin,+dac_read_search "$@"; }
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	RUNNER=as_postgres_frames WITH=" with CAP_SYS_ADMIN" suite tap-frames - \
		installcheck REGRESS= ISOLATION= PROVE_TESTS="t/015_frames_visible.pl t/031_pool_frames.pl"
	count_tap
	RUNNER=as_postgres_kpage WITH=" with CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH" suite tap-kpage - \
		installcheck REGRESS= ISOLATION= PROVE_TESTS="t/015_frames_visible.pl t/031_pool_frames.pl"
	count_tap
fi
# The Debian package: built, installed, checked in a fresh cluster and
# removed; scripts/package.sh puts back the ptbm installed above.
echo "== Debian package (scripts/package.sh)"
out=$(bash "$SRC/scripts/package.sh" 2>&1)
echo "$out" | grep -v '^package: ' | sed 's/^/  /'
line=$(echo "$out" | grep '^package: ' | tail -n 1)
echo "  ${line:-package: no summary line (interrupted?)}"
p=$(echo "$line" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')
f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
count "${p:-0}" "${f:-1}"

# The study in its quick form (bench/study.sh --quick, as root): a
# benchmark, and a check, since its pool runs verify every page they read
# and every lookup against SQL, and it fails if one disagrees.
if [ "$(id -u)" = 0 ]; then
	echo "== the study, quick (bench/study.sh --quick)"
	bash "$SRC/scripts/hugepages.sh" restore >/dev/null 2>&1
	if bash "$SRC/bench/study.sh" --quick >"$RUN/study.log" 2>&1; then
		count 1 0
		grep -E '^study: ' "$RUN/study.log" | sed 's/^/  /'
	else
		count 0 1
		echo "  -- the study failed; the end of its log:"
		tail -n 20 "$RUN/study.log" | sed 's/^/  | /'
	fi
fi

echo "ptbm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
