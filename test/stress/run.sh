#!/usr/bin/env bash
# ptbm stress run: one command.
#
#   test/stress/run.sh [seconds per kind, default 60] [clients, default 16]
#
# Starts a throw-away cluster (as the postgres OS user when run as root;
# unix socket in its own directory under /tmp, no TCP), and for each region
# kind runs pgbench with the scripts of this directory mixed (own.sql,
# scratch.sql, touch.sql, evict.sql, report.sql, track.sql) for the given
# time.  Then reports, per kind: transactions, errors by type (from the
# server log, which lists every error a client saw), crashes (server log,
# postmaster start time), the checksum of the clients' own pages against
# the transactions pgbench counted, and the sentinel pages.
#
# Environment:
#   STRESS_KINDS    region kinds (default: shared_anon private_anon shared_memfd shared_file)
#   STRESS_CHURN    transactions/s of an extra pgbench -C client whose
#                   backends keep exiting during the scans (default 0: off)
#   STRESS_WORKDIR  directory for the cluster and logs (default: mktemp;
#                   removed after a clean run, kept after a failure)
#   PG_CONFIG       pg_config of the PostgreSQL 15 to use
#
# Prints one line per kind that starts with "RESULT " (key=value pairs, for
# t/021_stress.pl) and ends with "stress: PASS" or "stress: FAIL"; exits 0
# only on PASS.
set -uo pipefail

SECS=${1:-60}
CLIENTS=${2:-16}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" = 0 ]; then
	# the server refuses root: the same command as postgres
	exec runuser -u postgres -- env \
		STRESS_KINDS="${STRESS_KINDS:-}" STRESS_CHURN="${STRESS_CHURN:-}" \
		STRESS_WORKDIR="${STRESS_WORKDIR:-}" PG_CONFIG="${PG_CONFIG:-}" \
		bash "$HERE/run.sh" "$SECS" "$CLIENTS"
fi

KINDS=${STRESS_KINDS:-"shared_anon private_anon shared_memfd shared_file"}
CHURN=${STRESS_CHURN:-0}
if [ -z "${PG_CONFIG:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	else
		PG_CONFIG=pg_config
	fi
fi
BIN=$("$PG_CONFIG" --bindir)

if [ "$CLIENTS" -lt 1 ] || [ "$CLIENTS" -gt 64 ]; then
	echo "clients must be 1..64 (each owns page 16 + id and 64 scratch pages)" >&2
	exit 2
fi

if [ -n "${STRESS_WORKDIR:-}" ]; then
	WORK=$STRESS_WORKDIR
	mkdir -p "$WORK"
	KEEP=1
else
	WORK=$(mktemp -d /tmp/ptbm-stress.XXXXXX)
	KEEP=0
fi
DATA=$WORK/data
LOG=$WORK/server.log
SOCK=$(mktemp -d /tmp/ptbm-s.XXXXXX)   # short: a socket path has a length limit
PORT=5432                              # no TCP; the socket lives in $SOCK
export PGHOST=$SOCK PGPORT=$PORT PGDATABASE=postgres

psql_q() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
	"$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$SOCK"
}
trap cleanup EXIT

rm -rf "$DATA"
"$BIN/initdb" -D "$DATA" -A trust -N >"$WORK/initdb.log" 2>&1 || {
	echo "initdb failed; see $WORK/initdb.log" >&2
	exit 2
}
cat >>"$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
max_connections = $((CLIENTS + 30))
shared_buffers = 32MB
fsync = off
log_line_prefix = '%m [%p] %e '
log_min_messages = warning
include_if_exists = 'ptbm_stress.conf'
EOF

PSZ=$(getconf PAGESIZE)
REGION_PAGES=16384             # 64MB of 4 kB pages; scripts use the first 4224
SCRIPTS="-f $HERE/own.sql@4 -f $HERE/scratch.sql@4 -f $HERE/touch.sql@2 -f $HERE/evict.sql@1 -f $HERE/report.sql@3 -f $HERE/track.sql@1"

fail=0
total_tx=0
total_err=0
total_crash=0
echo "ptbm stress: $SECS s per kind, $CLIENTS clients, kinds: $KINDS, churn: $CHURN tx/s, in $WORK"

for kind in $KINDS; do
	case $kind in shared_*) shared=1 ;; *) shared=0 ;; esac
	printf "shared_preload_libraries = 'ptbm'\nptbm.region_size = '%dkB'\nptbm.region_kind = '%s'\n" \
		$((REGION_PAGES * PSZ / 1024)) "$kind" >"$DATA/ptbm_stress.conf"
	"$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w restart >/dev/null 2>&1 ||
		"$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w start >/dev/null 2>&1 || {
		echo "RESULT kind=$kind started=no"
		echo "server did not start; tail of $LOG:" >&2
		tail -n 20 "$LOG" >&2
		fail=1
		continue
	}
	log_from=$(($(stat -c %s "$LOG") + 1))
	psql_q -f "$HERE/setup.sql" >/dev/null || { echo "setup failed" >&2; fail=1; continue; }
	pm_start=$(psql_q -c 'SELECT pg_postmaster_start_time()')
	pm_pid=$(head -n 1 "$DATA/postmaster.pid")

	churn_pid=
	if [ "$CHURN" -gt 0 ]; then
		"$BIN/pgbench" -n -C -c 2 -R "$CHURN" -T "$SECS" -f "$HERE/churn.sql" \
			>"$WORK/churn-$kind.out" 2>&1 &
		churn_pid=$!
	fi
	# shellcheck disable=SC2086
	"$BIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECS" -P "$((SECS > 10 ? 10 : SECS))" \
		-D counter=0 -D shared=$shared -D psz="$PSZ" $SCRIPTS \
		>"$WORK/pgbench-$kind.out" 2>"$WORK/pgbench-$kind.err"
	pgbench_rc=$?
	[ -n "$churn_pid" ] && wait "$churn_pid"

	out="$WORK/pgbench-$kind.out"
	tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | head -n 1)
	own_tx=$(awk '/^SQL script [0-9]+: .*own\.sql/ {s=1; next} s && / - [0-9]+ transactions/ {print $2; exit}' "$out")
	aborted=$(grep -c 'aborted in command' "$WORK/pgbench-$kind.err")

	# errors by type: every ERROR the server logged while pgbench ran
	errors_by_type=$(tail -c +"$log_from" "$LOG" | sed -n 's/^.*\] \([0-9A-Z]\{5\}\) ERROR:  \(.*\)$/\1 \2/p' |
		sed -E 's/([^0-9A-Z])[0-9]+/\1N/g' | sort | uniq -c | sort -rn)
	nerr=$(tail -c +"$log_from" "$LOG" | grep -c ' ERROR: ')
	crashes=$(tail -c +"$log_from" "$LOG" | grep -cE 'terminated by signal|was terminated by exception|PANIC|TRAP:|all server processes terminated')
	now_start=$(psql_q -c 'SELECT pg_postmaster_start_time()' 2>/dev/null || echo gone)
	now_pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || echo gone)
	[ "$now_start" = "$pm_start" ] && [ "$now_pid" = "$pm_pid" ] || crashes=$((crashes + 1))
	gone=$(psql_q -c 'SELECT last_value - 1 + is_called::int FROM stress_gone' 2>/dev/null || echo '?')
	unsup=$(psql_q -c 'SELECT last_value - 1 + is_called::int FROM stress_unsupported' 2>/dev/null || echo '?')

	# checksum: the clients' own pages hold (client_id, counter), and the
	# counters add up to the transactions of own.sql (a transaction cut by
	# the end of the run may have written without being counted: at most
	# one per client).  Sentinels unchanged.  Shared kinds only: a private
	# page is seen by its own backend alone (checked in-run there).
	if [ "$shared" = 1 ]; then
		read -r ids_ok sum_counters <<<"$(psql_q -F ' ' -c "
			SELECT bool_and(c = 0 OR ('x' || encode(substr(b, 1, 8), 'hex'))::bit(64)::bigint = c),
			       coalesce(sum(('x' || encode(substr(b, 9, 8), 'hex'))::bit(64)::bigint), 0)
			FROM (SELECT c, ptbm_read(16 + c, 16, 0) b FROM generate_series(0, $CLIENTS - 1) c) s")"
		sentinels=$(psql_q -c "SELECT count(*) FROM generate_series(0, 15) p
			WHERE ptbm_read(p, $PSZ, 0) <> decode(repeat(md5('sentinel' || p), $((PSZ / 16))), 'hex')")
		if [ "$ids_ok" = t ] && [ "$sentinels" = 0 ] && [ -n "$own_tx" ] &&
			[ "$sum_counters" -ge "$own_tx" ] && [ "$sum_counters" -le $((own_tx + CLIENTS)) ]; then
			checksum=ok
		else
			checksum=bad
		fi
	else
		sum_counters=-
		sentinels=-
		checksum=in-run
	fi

	verdict=ok
	{ [ "$pgbench_rc" != 0 ] || [ "$aborted" != 0 ] || [ "$nerr" != 0 ] || [ "$crashes" != 0 ] ||
		[ "$checksum" = bad ] || [ -z "$tx" ] || [ "${tx:-0}" = 0 ]; } && verdict=FAIL
	[ "$verdict" = FAIL ] && fail=1
	total_tx=$((total_tx + ${tx:-0}))
	total_err=$((total_err + nerr))
	total_crash=$((total_crash + crashes))

	echo "== $kind: $verdict"
	echo "   transactions $tx (tps $tps), own.sql $own_tx, clients aborted $aborted, pgbench exit $pgbench_rc"
	echo "   errors $nerr, crashes $crashes, expected: pid gone $gone, tracking unsupported $unsup"
	echo "   checksum $checksum (own-page counters $sum_counters vs own.sql transactions $own_tx; sentinels changed $sentinels)"
	if [ -n "$errors_by_type" ]; then
		echo "   errors by type:"
		echo "$errors_by_type" | head -n 20 | sed 's/^/     /'
	fi
	if [ "$aborted" != 0 ]; then
		grep 'aborted in command' "$WORK/pgbench-$kind.err" | head -n 5 | sed 's/^/     /'
	fi
	echo "RESULT kind=$kind verdict=$verdict tx=${tx:-0} tps=${tps:-0} own_tx=${own_tx:-0} aborted=$aborted errors=$nerr crashes=$crashes checksum=$checksum counters=$sum_counters sentinels_changed=$sentinels pid_gone=$gone tracking_unsupported=$unsup pgbench_rc=$pgbench_rc"
done

echo "stress total: $total_tx transactions, $total_err errors, $total_crash crashes"
if [ "$fail" = 0 ]; then
	echo "stress: PASS"
	[ "$KEEP" = 0 ] && { cleanup; trap - EXIT; rm -rf "$WORK"; }
	exit 0
fi
echo "stress: FAIL (logs in $WORK)"
exit 1
