#!/usr/bin/env bash
# Installs what is missing, builds and installs ptbm, and runs every suite:
# C unit tests of the kernel interface (as root and as postgres), pg_regress,
# isolation (shared_anon and private_anon regions) and TAP.
# Ends with one line "ptbm: N passed, N failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
. scripts/common.sh

set -e
ptbm_install_deps
ptbm_build_install
RUN=$(ptbm_tree_for_postgres "$SRC")
set +e
trap 'rm -rf "$RUN"' EXIT
cd "$RUN"

passed=0
failed=0
count() {						# count PASSED FAILED
	passed=$((passed + $1))
	failed=$((failed + $2))
}

echo "== unit tests of the kernel interface"
as_postgres make -s -C test/unit >/dev/null
for who in root postgres; do
	if [ "$who" = root ] && [ "$(id -u)" != 0 ]; then continue; fi
	if [ "$who" = root ]; then out=$(test/unit/test_kmem); else out=$(as_postgres test/unit/test_kmem); fi
	echo "$out" | grep -E '^(not ok|ok .*# SKIP)' | sed "s/^/  [$who] /"
	line=$(echo "$out" | tail -n 1)
	echo "  [$who] $line"
	p=$(echo "$line" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')
	f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	count "${p:-0}" "${f:-1}"
done

echo "== pg_regress, isolation and TAP suites (as postgres)"
as_postgres make -k installcheck installcheck-private >suites.log 2>&1
grep -E '^(test |     )?[a-z_0-9]+ +\.\.\. |^t/|Result:|Files=' suites.log | sed 's/^/  /'
p=$(grep -cE '\.\.\. ok' suites.log)
f=$(grep -cE '\.\.\. FAILED' suites.log)
count "$p" "$f"
# TAP: every assertion, from the per-test logs
for log in tmp_check/log/regress_log_*; do
	[ -f "$log" ] || continue
	count "$(grep -c '^ok ' "$log")" "$(grep -c '^not ok ' "$log")"
done
if grep -qE 'Result: FAIL|Dubious|Error [0-9]' suites.log; then
	failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ]; then
	echo "== failures"
	grep -E 'Dubious|Failed|Error' suites.log | sed 's/^/  /'
	for d in regression.diffs output_iso/regression.diffs output_iso_private/regression.diffs; do
		[ -f "$d" ] && { echo "-- $d"; head -n 200 "$d"; }
	done
	for log in tmp_check/log/regress_log_*; do
		grep -q '^not ok' "$log" 2>/dev/null && { echo "-- $log"; grep -B2 -A12 '^not ok' "$log" | head -n 80; }
	done
fi
echo "ptbm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
