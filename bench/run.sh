#!/usr/bin/env bash
# ptbm benchmark: one command, as root.
#
#   bash bench/run.sh           full run (~10 min): writes bench/RESULTS.md and bench/scaling.png
#   bash bench/run.sh --quick   smaller sizes, fewer repetitions (~1 min); CI-safe;
#                               writes bench/out/RESULTS-quick.md and bench/out/scaling-quick.png
#   bash bench/run.sh --report  only redo bench/RESULTS.md and bench/scaling.png from the
#                               raw results of the last full run (bench/out/results-full.txt)
#
# Installs what is missing (apt-get), builds and installs ptbm (make && make
# install in the repository root), builds the baseline (bench/kscan.c) and the
# driver (bench/bdrv.c), starts throw-away clusters as the postgres OS user
# under /tmp (unix sockets only, no TCP), measures, and stops and removes
# them.  Every figure is a median over alternating runs in this same run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/common.sh

QUICK=no
REPORT_ONLY=no
case "${1:-}" in
	--quick) QUICK=yes ;;
	--report) REPORT_ONLY=yes ;;	# redo RESULTS.md and scaling.png from bench/out/results-full.txt
	"") ;;
	*) echo "usage: bash bench/run.sh [--quick | --report]" >&2; exit 2 ;;
esac

if [ "$QUICK" = yes ]; then
	REPS=3            # alternating repetitions per figure
	REPS1=3           # the same for figure 1 (each repetition takes seconds)
	REPS2=5           # the same for figure 2 (each takes a tenth of a second)
	BIG=8GB           # region of figure 1 (and the middle point of figure 5)
	BIG_PAGES=$((8 * 262144))
	STEPS_N="1 10 20" # backends of figure 5
	PGB_T=2; PGB_RUNS=3
	CONN_RUNS=3; CONN_PER=20
	CANCELS=3
	OUTMD=bench/out/RESULTS-quick.md; OUTPNG=bench/out/scaling-quick.png
else
	REPS=7
	REPS1=5
	REPS2=21
	BIG=64GB
	BIG_PAGES=$((64 * 262144))
	STEPS_N="1 10 50 100"
	PGB_T=1; PGB_RUNS=45  # many short runs: the median of the ratios gets a narrower interval
	CONN_RUNS=7; CONN_PER=50
	CANCELS=9
	OUTMD=bench/RESULTS.md; OUTPNG=bench/scaling.png
fi
mkdir -p bench/out

machine() {
	printf 'nproc %s; %s MiB memory; kernel %s; %s; CPU %s' "$(nproc)" \
		"$(awk '/^MemTotal:/ {printf "%d", $2/1024}' /proc/meminfo)" "$(uname -r)" \
		"$("$PG_BIN/postgres" --version)" "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
}
# bench/study.sh's section of RESULTS.md (between its markers) is kept, at the end
STUDY_SECTION=$(mktemp)
[ -f "$OUTMD" ] && sed -n '/^<!-- study:/,/^<!-- \/study -->/p' "$OUTMD" >"$STUDY_SECTION"
keep_study() {
	if [ -s "$STUDY_SECTION" ]; then
		echo >>"$OUTMD"
		cat "$STUDY_SECTION" >>"$OUTMD"
	fi
	rm -f "$STUDY_SECTION"
}
if [ "$REPORT_ONLY" = yes ]; then
	DAT=$(mktemp)
	perl bench/report.pl bench/out/results-full.txt "$(machine)" "$OUTMD" "$DAT" no "$(basename "$OUTPNG")"
	gnuplot -e "datafile='$DAT'; outfile='$OUTPNG'" bench/scaling.gp
	rm -f "$DAT"
	keep_study
	echo "== wrote $OUTMD and $OUTPNG from bench/out/results-full.txt"
	exit 0
fi

[ "$(id -u)" = 0 ] || { echo "run as root (it installs packages and runs the servers as postgres)" >&2; exit 1; }

# ---- what is needed ----------------------------------------------------------
ptbm_install_deps postgresql-contrib gnuplot-nox libpq-dev
ptbm_build_install

WORK=$(mktemp -d /tmp/ptbm-bench.XXXXXX)
chmod 755 "$WORK"
chown postgres "$WORK"
CFLAGS="-O2 -Wall -Wextra -I$ROOT/src"
gcc $CFLAGS -o "$WORK/kscan" bench/kscan.c
gcc $CFLAGS -I"$($PG_CONFIG --includedir)" -DKSCAN_NO_MAIN -o "$WORK/bdrv" bench/bdrv.c bench/kscan.c \
	-L"$($PG_CONFIG --libdir)" -lpq -lm
RES=$WORK/results.txt
: >"$RES"
chown postgres "$RES"

CLUSTERS=()
cleanup() {
	for c in "${CLUSTERS[@]}"; do
		as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null 2>&1 || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

# start_cluster NAME PORT [conf lines...]
start_cluster() {
	local name=$1 port=$2
	shift 2
	as_postgres "$PG_BIN/initdb" -D "$WORK/$name" -A trust -N >/dev/null
	{
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$WORK'"
		echo "max_connections = 130"
		echo "fsync = off"
		echo "log_min_messages = warning"
		printf '%s\n' "$@"
	} >>"$WORK/$name/postgresql.conf"
	as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$name" -l "$WORK/$name.log" -w -t 120 start >/dev/null
	CLUSTERS+=("$name")
}
stop_cluster() {
	as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$1" -m fast -w stop >/dev/null
}
conn() { echo "host=$WORK port=$1 dbname=postgres"; }
psql_c() {	# port sql
	as_postgres "$PG_BIN/psql" -X -q -At -h "$WORK" -p "$1" -d postgres -c "SET client_min_messages = warning" -c "$2"
}
bdrv() { as_postgres "$WORK/bdrv" "$@" | tee -a "$RES"; }
evict_all() { psql_c "$1" "SELECT pages FROM ptbm_evict(0, NULL, 'remove')" >/dev/null; }

# ---- memory plan -------------------------------------------------------------
# Touched pages are shmem pages (one copy however many backends map them) and
# each backend pays its own page tables: about 4 kB per 2 MB slice of the
# region it touched at all.  Scale down what does not fit in MemAvailable - 4 GB.
avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
need_mb() {	# backends pages_each region_pages
	awk -v n="$1" -v t="$2" -v r="$3" 'BEGIN {
		slices = r / 512; pt = slices * (1 - exp(-t / slices)) * 4096;
		printf "%d", n * (t * 4096 + pt + 16 * 1048576) / 1048576 }'
}
budget_mb=$((avail_kb / 1024 - 4096))
T1=$((BIG_PAGES / 100))    # figure 1: 1% of the region per backend
while [ "$(need_mb 20 $T1 $BIG_PAGES)" -gt "$budget_mb" ] && [ $T1 -gt 1024 ]; do T1=$((T1 * 3 / 4)); done
nmax=${STEPS_N##* }
T5=$([ "$QUICK" = yes ] && echo 2048 || echo 8192)   # figure 5: pages per backend
while [ "$(need_mb "$nmax" $T5 $BIG_PAGES)" -gt "$budget_mb" ] && [ $T5 -gt 256 ]; do T5=$((T5 / 2)); done
echo "== memory: $((avail_kb / 1024)) MB available; figure 1: 20 backends x $T1 pages of $BIG" \
	"(needs ~$(need_mb 20 $T1 $BIG_PAGES) MB); figure 5: $T5 pages per backend (needs ~$(need_mb "$nmax" $T5 $BIG_PAGES) MB at $nmax)"
echo "PLAN quick=$QUICK big=$BIG big_pages=$BIG_PAGES t1=$T1 t5=$T5 reps=$REPS reps1=$REPS1 reps2=$REPS2 pgb_runs=$PGB_RUNS pgb_t=$PGB_T" \
	"conn_runs=$CONN_RUNS conn_per=$CONN_PER avail_mb=$((avail_kb / 1024)) load_start=$(cut -d' ' -f1 /proc/loadavg)" \
	"build=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src ptbm--1.0.sql 2>/dev/null || echo +uncommitted-src)" >>"$RES"

PORT0=56400
# ---- 1, 4, 5: the big region ---------------------------------------------------
echo "== cluster with a $BIG region: summary scan (1), cancel (4), backends curve (5)"
start_cluster big $((PORT0 + 1)) "shared_preload_libraries = 'ptbm'" "ptbm.region_size = '$BIG'"
psql_c $((PORT0 + 1)) "CREATE EXTENSION ptbm"
bdrv scale -c "$(conn $((PORT0 + 1)))" -t fig1 -r $REPS1 -k $CANCELS "20:$T1"
evict_all $((PORT0 + 1))
steps=()
for n in $STEPS_N; do steps+=("$n:$T5"); done
bdrv scale -c "$(conn $((PORT0 + 1)))" -t "n_$BIG" -r $REPS "${steps[@]}"
evict_all $((PORT0 + 1))
stop_cluster big

# ---- 2, 5: 1 GB region, shared_buffers = 2GB ------------------------------------
echo "== cluster with a 1GB region and shared_buffers = 2GB: region curve (5), row output (2)"
start_cluster g1 $((PORT0 + 2)) "shared_preload_libraries = 'ptbm'" "ptbm.region_size = '1GB'" "shared_buffers = '2GB'"
psql_c $((PORT0 + 2)) "CREATE EXTENSION ptbm"
bdrv scale -c "$(conn $((PORT0 + 2)))" -t region_1GB -r $REPS "10:$T5"
evict_all $((PORT0 + 2))
# as the issue states it (default work_mem: both results spill to a temporary file) ...
bdrv pte -c "$(conn $((PORT0 + 2)))" -t default -r $REPS2
# ... with both results in memory (no temporary file) ...
bdrv pte -c "$(conn $((PORT0 + 2))) options='-c work_mem=1GB'" -t work_mem_1GB -r $REPS2
# ... and with every buffer in use (pg_buffercache's rows are then not mostly NULL):
# one 1000-byte row per 8 kB page (fillfactor 10), then pg_prewarm.
if [ "$QUICK" = no ]; then
	psql_c $((PORT0 + 2)) "CREATE EXTENSION pg_prewarm;
		CREATE UNLOGGED TABLE fill (x text) WITH (fillfactor = 10, autovacuum_enabled = off);
		INSERT INTO fill SELECT repeat('x', 1000) FROM generate_series(1, 262144);
		SELECT pg_prewarm('fill')" >/dev/null
	bdrv pte -c "$(conn $((PORT0 + 2)))" -t buffers_in_use -r $REPS2
fi
stop_cluster g1

# ---- 3, 5: 1 TB region, and no ptbm at all --------------------------------------
echo "== clusters with a 1TB region and without ptbm: region curve (5), connection set-up (3)"
# none and none2 are the same cluster twice: comparing them (A/A) shows how
# much of a ratio this machine's other load alone produces in this run.
start_cluster none $((PORT0 + 3))
start_cluster none2 $((PORT0 + 6))
start_cluster t1 $((PORT0 + 4)) "shared_preload_libraries = 'ptbm'" "ptbm.region_size = '1TB'"
psql_c $((PORT0 + 4)) "CREATE EXTENSION ptbm"
bdrv scale -c "$(conn $((PORT0 + 4)))" -t region_1TB -r $REPS "10:$T5"
evict_all $((PORT0 + 4))
# a: without ptbm, b: with the 1 TB region, a2: without ptbm again (control)
bdrv connect -c "$(conn $((PORT0 + 3)))" -C "$(conn $((PORT0 + 4)))" -D "$(conn $((PORT0 + 6)))" -r $CONN_RUNS -m $CONN_PER
stop_cluster t1

# ---- 3: pgbench -S with ptbm preloaded (default region) and without --------------
echo "== pgbench -S: ptbm preloaded (default region, untouched) vs not loaded"
start_cluster dflt $((PORT0 + 5)) "shared_preload_libraries = 'ptbm'"
for p in $((PORT0 + 3)) $((PORT0 + 6)) $((PORT0 + 5)); do
	as_postgres "$PG_BIN/pgbench" -q -i -s 5 -h "$WORK" -p $p postgres >/dev/null 2>&1
	psql_c $p "VACUUM ANALYZE" >/dev/null
done
# The three clusters (without ptbm, with ptbm, without ptbm again) run
# pgbench one after another, one client, the order rotated from run to run
# so that none always goes first; a run's ratios compare runs seconds apart.
# The client and its backend share one CPU: a one-client pgbench is a
# ping-pong, and on this kind of virtual machine waking the other CPU for
# every message costs more than the query (measured: 3500-8100 TPS across
# two CPUs, 37700-44900 on one).  Running the clusters at the same time
# instead measured the scheduler more than ptbm (A/A from 0.65 to 1.53).
# The without/without ratio (A/A) is the control: it says how finely this
# run can resolve a ratio at all.
PIN_CPU=$(($(nproc) - 1))
for c in none dflt none2; do
	taskset -cp "$PIN_CPU" "$(head -1 "$WORK/$c/postmaster.pid")" >/dev/null	# backends forked from now on
done
pgb_one() {	# port seconds -> tps
	as_postgres taskset -c "$PIN_CPU" "$PG_BIN/pgbench" -n -S -M prepared -c 1 -j 1 -T "$2" -h "$WORK" -p "$1" postgres 2>/dev/null |
		awk '/^tps = / {print $3; exit}'
}
pgb_run() {	# seconds rotation -> "without_tps with_tps without2_tps"
	local t=$1 rot=$2 k
	local ports=($((PORT0 + 3)) $((PORT0 + 5)) $((PORT0 + 6)))
	local tps=(0 0 0)
	for k in 0 1 2; do
		tps[$(((k + rot) % 3))]=$(pgb_one "${ports[$(((k + rot) % 3))]}" "$t")
	done
	echo "${tps[0]} ${tps[1]} ${tps[2]}"
}
pgb_run 1 0 >/dev/null
for i in $(seq 1 $PGB_RUNS); do
	read -r a b a2 < <(pgb_run $PGB_T $((i % 3)))
	echo "RESULT kind=pgbench run=$i without_tps=$a with_tps=$b without2_tps=$a2" | tee -a "$RES"
done
stop_cluster dflt
stop_cluster none
stop_cluster none2

# ---- write tracking: one process, no server ------------------------------------------
echo "== write tracking (bench/write_tracking.c)"
cc -O2 -Isrc -DKSCAN_NO_MAIN -o "$WORK/write_tracking" bench/write_tracking.c bench/kscan.c src/kmem.c
WT_MB=$([ "$QUICK" = yes ] && echo 256 || echo 1024)
as_postgres "$WORK/write_tracking" "$WT_MB" "$([ "$QUICK" = yes ] && echo 3 || echo 5)" >"$WORK/write_tracking.md"
cat "$WORK/write_tracking.md"

# ---- report ------------------------------------------------------------------------
echo "PLAN load_end=$(cut -d' ' -f1 /proc/loadavg) seconds=$SECONDS" >>"$RES"
cp "$RES" bench/out/results-$([ "$QUICK" = yes ] && echo quick || echo full).txt
perl bench/report.pl "$RES" "$(machine)" "$OUTMD" "$WORK/scaling.dat" "$QUICK" "$(basename "$OUTPNG")"
gnuplot -e "datafile='$WORK/scaling.dat'; outfile='$OUTPNG'" bench/scaling.gp
{
	echo
	echo "## Per-backend write tracking (userfaultfd async write-protect)"
	echo
	echo "Measured in one unprivileged process with ptbm's kernel interface, no server; the"
	echo "untracked write to a mapped page is the baseline of the same run."
	echo
	cat "$WORK/write_tracking.md"
} >>"$OUTMD"
keep_study
echo
cat "$OUTMD"
echo
echo "== wrote $OUTMD and $OUTPNG"
