#!/usr/bin/env bash
# The study: the page-table buffer pool against PostgreSQL's buffer manager,
# the same access loops (src/ptbm_study.c) on the same relation data in the
# same run.  One command, as root.
#
#   bash bench/study.sh           full run (~15 min): the section "The study"
#                                 of bench/RESULTS.md, bench/study-*.png
#   bash bench/study.sh --quick   ~2 min, smaller data, fewer repetitions (CI):
#                                 bench/out/STUDY-quick.md and its pictures
#
# Workloads (every figure a median over alternating runs of the paths):
#   1 hits       random blocks of pgbench_accounts, which fits shared_buffers
#                and the pool's budget: ns per access, 1 and 2 backends
#   2 lookups    B-tree descents from the metapage of pgbench_accounts_pkey
#                and the heap tuple by TID, a sample checked against SQL
#   3 scans      every heap page, counting line pointers
#   4 first      a fresh backend's first pass over resident blocks: minor
#                faults per block, time, and the second pass
#   5 eviction   a budget of a tenth of the table, N busy backends reading:
#                evictions/s, reads/s, TLB shootdowns per evicted block, for
#                remove and cooperative, batch sizes 1 8 64 256
#   6 memory     page-table bytes per backend after workloads 1 and 4, and
#                for 1..8 backends that each read the whole table
#   7 huge pages workloads 1, 4 and 5 again with ptbm.huge_pages = hugetlb
#                (and PostgreSQL's huge_pages = on), where huge pages can be
#                reserved
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/common.sh

QUICK=no
[ "${1:-}" = --quick ] && QUICK=yes
if [ "$QUICK" = yes ]; then
	SCALE=4; REPS=3; T=0.5; NS="1 2"; EVNS="1 2"; BATCHES="8 64"; PT_NS="1 2 4"
	OUT=bench/out/STUDY-quick.md; PNG=bench/out/study-quick
else
	SCALE=20; REPS=7; T=2; NS="1 2"; EVNS="1 2 3"; BATCHES="1 8 64 256"; PT_NS="1 2 4 8"
	OUT=bench/RESULTS.md; PNG=bench/study
fi
mkdir -p bench/out
[ "$(id -u)" = 0 ] || { echo "run as root (it installs packages, reserves huge pages and runs the servers as postgres)" >&2; exit 1; }

ptbm_install_deps postgresql-contrib gnuplot-nox
ptbm_build_install

WORK=$(mktemp -d /tmp/ptbm-study.XXXXXX)
chmod 755 "$WORK"
chown postgres "$WORK"
RES=$WORK/results.txt
: >"$RES"
CLUSTERS=()
HUGE_RESERVED=no
cleanup() {
	for c in "${CLUSTERS[@]}"; do
		as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null 2>&1 || true
	done
	[ "$HUGE_RESERVED" = yes ] && bash scripts/hugepages.sh restore >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- clusters -----------------------------------------------------------------
start_cluster() {	# name port conf-lines...
	local name=$1 port=$2
	shift 2
	as_postgres "$PG_BIN/initdb" -D "$WORK/$name" -A trust -N >/dev/null
	{
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$WORK'"
		echo "max_connections = 40"
		echo "fsync = off"
		echo "autovacuum = off"
		echo "log_min_messages = warning"
		echo "shared_preload_libraries = 'ptbm'"
		printf '%s\n' "$@"
	} >>"$WORK/$name/postgresql.conf"
	as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$name" -l "$WORK/$name.log" -w -t 120 start >/dev/null
	CLUSTERS+=("$name")
}
stop_cluster() { as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$1" -m fast -w stop >/dev/null; }
q() {	# port sql: one session, unaligned, tuples only
	as_postgres "$PG_BIN/psql" -X -q -At -F ' ' -h "$WORK" -p "$1" -d postgres \
		-c "SET client_min_messages = warning" -c "$2"
}
result() { echo "RESULT $*" | tee -a "$RES"; }
tlb() { awk '/TLB shootdowns/ { s = 0; for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s }' /proc/interrupts; }

# Loads pgbench_accounts and its key, and makes them resident in both
# shared_buffers and the pool.
setup_data() {	# port
	as_postgres "$PG_BIN/pgbench" -i -s "$SCALE" -q -h "$WORK" -p "$1" postgres >/dev/null 2>&1
	q "$1" "CREATE EXTENSION ptbm; CREATE EXTENSION pg_prewarm" >/dev/null
	q "$1" "VACUUM ANALYZE pgbench_accounts" >/dev/null
	q "$1" "CHECKPOINT" >/dev/null
	q "$1" "SELECT * FROM ptbm_pool_attach('pgbench_accounts') a, ptbm_pool_attach('pgbench_accounts_pkey') b" >/dev/null
}
warm() {	# port
	q "$1" "SELECT pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey'),
	        ptbm_pool_prewarm('pgbench_accounts'), ptbm_pool_prewarm('pgbench_accounts_pkey')" >/dev/null
}

# N concurrent sessions, each one call of sql with :seed replaced by its
# number; prints one output line per session.
parallel() {	# port n sql
	local port=$1 n=$2 sql=$3 i
	for i in $(seq 1 "$n"); do
		q "$port" "${sql//:seed/$i}" >"$WORK/par.$i" &
	done
	wait
	for i in $(seq 1 "$n"); do cat "$WORK/par.$i"; done
}

# the paths in the order of repetition r: rotated, so none is always first
paths() {	# r
	case $(($1 % 3)) in 0) echo pool bufmgr recent ;; 1) echo bufmgr recent pool ;; *) echo recent pool bufmgr ;; esac
}

# ---- workloads 1-3 and 6: hits, lookups, scans, page tables -----------------------
hits_lookups_scans() {	# port pagesize-label
	local port=$1 pg=$2 r n p
	local naccounts=$((SCALE * 100000))
	for r in $(seq 1 "$REPS"); do
		for n in $NS; do
			for p in $(paths "$r"); do
				parallel "$port" "$n" "SELECT accesses, ns_per_access, minor_faults
					FROM ptbm_bench_hits('pgbench_accounts', '$p', 1000000000, :seed, $T)" |
					while read -r acc ns minf; do
						result "w=hits pg=$pg path=$p n=$n rep=$r accesses=$acc ns=$ns minflt=$minf"
					done
				parallel "$port" "$n" "SELECT lookups, lookups_per_s, pages, found, verified, mismatches
					FROM ptbm_bench_lookups('pgbench_accounts_pkey', 'pgbench_accounts', '$p', 1000000000,
					                        :seed, $T, $naccounts)" |
					while read -r lk lps pages found ver mis; do
						result "w=lookups pg=$pg path=$p n=$n rep=$r lookups=$lk lps=$lps pages=$pages found=$found verified=$ver mismatches=$mis"
					done
			done
		done
		# the same loop with every page verified (checksum, each tuple's own
		# TID), untimed: two backends at once, so a torn read would show
		for p in pool bufmgr; do
			parallel "$port" 2 "SELECT accesses, failures
				FROM ptbm_bench_hits('pgbench_accounts', '$p', 1000000000, :seed, $T, verify => true)" |
				while read -r acc fail; do
					result "w=verify pg=$pg path=$p rep=$r accesses=$acc failures=$fail"
				done
		done
		for p in $(paths "$r"); do
			q "$port" "SELECT pages, pages_per_s, line_pointers FROM ptbm_bench_scan('pgbench_accounts', '$p', 3)" |
				while read -r pages pps lps; do
					result "w=scan pg=$pg path=$p rep=$r pages=$pages pps=$pps line_pointers=$lps"
				done
		done
	done
}

# Workload 4 (and 6): a fresh backend's first pass over resident blocks, then
# its second; its page tables after the first.
first_access() {	# port pagesize-label
	local port=$1 pg=$2 r p
	for r in $(seq 1 "$REPS"); do
		for p in $(paths "$r"); do
			[ "$p" = recent ] && continue
			q "$port" "SELECT (SELECT page_table FROM ptbm_shmem_backends() WHERE pid = pg_backend_pid()) AS pt0;
			           SELECT pages, elapsed_ms, minor_faults FROM ptbm_bench_scan('pgbench_accounts', '$p', 1);
			           SELECT (SELECT page_table FROM ptbm_shmem_backends() WHERE pid = pg_backend_pid());
			           SELECT elapsed_ms, minor_faults FROM ptbm_bench_scan('pgbench_accounts', '$p', 1)" \
				>"$WORK/first.out"
			local pt0 pages ms1 f1 pt1 ms2 f2
			read -r pt0 pages ms1 f1 pt1 ms2 f2 <<<"$(tr '\n' ' ' <"$WORK/first.out")"
			result "w=first pg=$pg path=$p rep=$r pages=$pages ms1=$ms1 minflt1=$f1 ms2=$ms2 minflt2=$f2 pt_before=$pt0 pt_after=$pt1"
		done
	done
}

# Workload 6: 1..8 backends, each reading the whole table, held open
# together; the sum of their page tables, and of as many idle backends.
page_tables_vs_backends() {	# port pagesize-label
	local port=$1 pg=$2 n p
	for p in idle pool bufmgr; do
		local read="SELECT pages FROM ptbm_bench_scan('pgbench_accounts', '$p', 1)"
		[ "$p" = idle ] && read="SELECT 1"	# the baseline: backends that read nothing
		for n in $PT_NS; do
			local i pids=()
			for i in $(seq 1 "$n"); do
				as_postgres "$PG_BIN/psql" -X -q -At -h "$WORK" -p "$port" -d postgres \
					-c "$read" \
					-c "SELECT pg_sleep(3)" >/dev/null &
				pids+=($!)
			done
			sleep 2
			q "$port" "SELECT count(*), sum(page_table), sum(segment_page_table) FROM ptbm_shmem_backends()
			           WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" |
				while read -r cnt pt spt; do
					result "w=pt pg=$pg path=$p n=$n backends=$cnt page_table=$pt segment_page_table=$spt"
				done
			wait "${pids[@]}"
		done
	done
}

# Workload 5: a budget of a tenth of the table, N busy backends reading random
# blocks: what eviction costs with each method and batch size.
eviction() {	# port pagesize-label
	local port=$1 pg=$2 m b n r
	for r in $(seq 1 "$REPS"); do
		for m in remove cooperative; do
			for b in $BATCHES; do
				q "$port" "ALTER SYSTEM SET ptbm.pool_eviction = '$m'" >/dev/null
				q "$port" "ALTER SYSTEM SET ptbm.pool_evict_batch = $b" >/dev/null
				q "$port" "SELECT pg_reload_conf()" >/dev/null
				sleep 0.2
				for n in $EVNS; do
					local s0 s1 t0 t1 acc
					s0=$(q "$port" "SELECT evicted_blocks, eviction_batches, eviction_ms, cooperative_timeouts, reader_waits FROM ptbm_pool_stats()")
					t0=$(tlb)
					acc=$(parallel "$port" "$n" "SELECT accesses FROM ptbm_bench_hits('pgbench_accounts', 'pool', 1000000000, :seed, $T)" |
						awk '{ s += $1 } END { print s }')
					t1=$(tlb)
					s1=$(q "$port" "SELECT evicted_blocks, eviction_batches, eviction_ms, cooperative_timeouts, reader_waits FROM ptbm_pool_stats()")
					read -r e0 b0 ms0 to0 w0 <<<"$s0"
					read -r e1 b1 ms1 to1 w1 <<<"$s1"
					result "w=evict pg=$pg method=$m batch=$b n=$n rep=$r seconds=$T accesses=$acc evicted=$((e1 - e0)) batches=$((b1 - b0)) evict_ms=$(awk -v a="$ms1" -v b="$ms0" 'BEGIN{print a-b}') timeouts=$((to1 - to0)) reader_waits=$((w1 - w0)) tlb=$((t1 - t0))"
				done
			done
		done
	done
}

machine() {
	printf 'nproc %s; %s MiB memory; kernel %s; %s; CPU %s' "$(nproc)" \
		"$(awk '/^MemTotal:/ {printf "%d", $2/1024}' /proc/meminfo)" "$(uname -r)" \
		"$("$PG_BIN/postgres" --version)" "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
}
PERF=$(perf stat -e cycles true 2>&1 | grep -q 'not supported' && echo no || { command -v perf >/dev/null && echo yes || echo no; })
echo "PLAN quick=$QUICK scale=$SCALE reps=$REPS seconds=$T perf_cycles=$PERF build=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" | tee -a "$RES"

# ---- 4 kB pages --------------------------------------------------------------------
echo "== 4 kB pages: shared_buffers 1GB, region 16GB, pool 1GB (scale $SCALE)"
start_cluster base 55431 "shared_buffers = 1GB" "huge_pages = off" \
	"ptbm.region_size = 16GB" "ptbm.pool_size = 1GB"
setup_data 55431
warm 55431
hits_lookups_scans 55431 4k
first_access 55431 4k
page_tables_vs_backends 55431 4k
ACCOUNTS_MB=$(q 55431 "SELECT pg_relation_size('pgbench_accounts') / 1048576")
stop_cluster base

echo "== eviction: a budget of a tenth of pgbench_accounts (${ACCOUNTS_MB} MB)"
start_cluster evict 55432 "shared_buffers = 128MB" "huge_pages = off" \
	"ptbm.region_size = 16GB" "ptbm.pool_size = $((ACCOUNTS_MB * 1024 / 10))kB" "ptbm.pool_cooperative_wait = 10ms"
setup_data 55432
eviction 55432 4k
stop_cluster evict

# ---- huge pages ---------------------------------------------------------------------
need=$((1024 + 1024 + 64))	# shared_buffers 1GB (2MB pages), a 2GB region, slack
if bash scripts/hugepages.sh reserve "$need" >/dev/null 2>&1 &&
	[ "$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)" -ge "$need" ]; then
	HUGE_RESERVED=yes
	echo "== hugetlb: PostgreSQL huge_pages = on, ptbm.huge_pages = hugetlb (2GB region, 1GB aligned)"
	start_cluster huge 55433 "shared_buffers = 1GB" "huge_pages = on" \
		"ptbm.region_size = 2GB" "ptbm.huge_pages = hugetlb" "ptbm.pool_size = 1GB"
	setup_data 55433
	warm 55433
	SAVE_NS=$NS; NS="1 2"
	hits_lookups_scans 55433 hugetlb
	first_access 55433 hugetlb
	page_tables_vs_backends 55433 hugetlb
	stop_cluster huge
	start_cluster hugeev 55434 "shared_buffers = 128MB" "huge_pages = on" \
		"ptbm.region_size = 2GB" "ptbm.huge_pages = hugetlb" "ptbm.pool_size = $(((ACCOUNTS_MB / 10 + 16) / 2 * 2))MB"
	setup_data 55434
	BATCHES_SAVE=$BATCHES; BATCHES="256 1024"	# in blocks: 1 and 4 huge pages
	eviction 55434 hugetlb
	BATCHES=$BATCHES_SAVE; NS=$SAVE_NS
	stop_cluster hugeev
else
	echo "== hugetlb: fewer than $need free huge pages could be reserved: skipped"
	echo "PLAN hugetlb=skipped" >>"$RES"
fi

cp "$RES" "bench/out/study-$([ "$QUICK" = yes ] && echo quick || echo full).txt"
perl bench/study_report.pl "$RES" "$(machine)" "$OUT" "$PNG" "$QUICK" "$WORK"
for g in bench/study_*.gp; do
	gnuplot -e "datadir='$WORK'; outprefix='$PNG'; batches='$BATCHES'" "$g" 2>"$WORK/gnuplot.err" ||
		echo "study: $g drew nothing: $(head -1 "$WORK/gnuplot.err")" >&2
done
echo "== wrote $OUT and $PNG-*.png"
# the correctness checks that stayed on while measuring
if ! grep -q '^RESULT w=verify' "$RES" || ! grep -q '^RESULT w=lookups' "$RES"; then
	echo "study: the verifying runs are missing" >&2
	exit 1
fi
if grep -qE 'failures=[1-9]|mismatches=[1-9]' "$RES"; then
	echo "study: a page failed verification or a lookup disagreed with SQL" >&2
	exit 1
fi
echo "study: every verified page and every checked lookup agreed"
