#!/usr/bin/env bash
# Regenerates the sample outputs of README.md and docs/: builds and installs
# ptbm, starts throw-away clusters (as scripts/demo.sh does), runs the
# queries behind each sample and prints each sample under a line
#
#   ==== sample: NAME
#
# where NAME says which document and which sample it is.  Pids, addresses,
# inodes and timings are the kernel's and differ from run to run; the
# shapes and the relations between the numbers are what the docs rely on.
#
#   bash scripts/docs-samples.sh              every group below
#   bash scripts/docs-samples.sh GROUP...     only those groups:
#     demo         scripts/demo.sh itself (README.md, docs/findings.md)
#     reference    ptbm_region(), ptbm_pte(), ptbm_shmem_segment() (README.md)
#     pagetables   "Why is PageTables so large?": 2 GB of shared_buffers, a
#                  1.6 GB table, six sessions, ptbm_buffer_ptes() (README.md);
#                  the same segment in hugetlb pages (docs/huge-pages.md)
#     scaling      backends x touched shared_buffers -> page tables, with
#                  huge_pages off and on (README.md; up to 16 backends each
#                  reading 1.6 GB; about 2 minutes)
#     region-huge  hugetlb and THP regions (docs/huge-pages.md)
#     writes       per-backend write tracking (docs/write-tracking.md)
#
# All of them take about five minutes.
#
# As root: huge pages and the shmem THP mode are root's knobs; they are
# reserved here (scripts/hugepages.sh, a state file of this script's own)
# and put back at the end.  Without root the groups that need them say so
# and skip.  The clusters listen on a unix socket only, ports from
# PTBM_SAMPLES_PORT (default 5520) up.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
. scripts/common.sh

GROUPS_ALL="demo reference pagetables scaling region-huge writes"
GROUPS_RUN=${*:-$GROUPS_ALL}
PORT=${PTBM_SAMPLES_PORT:-5520}

ptbm_install_deps
ptbm_build_install >/dev/null

WORK=$(mktemp -d /tmp/ptbm-samples.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" = 0 ] && chown postgres "$WORK"
export PTBM_HUGEPAGES_STATE=$WORK/hugepages.state
CLUSTERS=()
declare -A SESSION_FD SESSION_CL SESSION_STEP CPORT
cleanup() {
	set +e
	for fd in "${SESSION_FD[@]}"; do eval "exec $fd>&-" 2>/dev/null; done
	for c in "${CLUSTERS[@]}"; do
		as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null 2>&1
	done
	[ "$(id -u)" = 0 ] && [ -f "$PTBM_HUGEPAGES_STATE" ] &&
		bash "$SRC/scripts/hugepages.sh" restore >/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

wants() { [[ " $GROUPS_RUN " == *" $1 "* ]]; }
sample() { printf '\n==== sample: %s\n' "$1"; }
note() { printf -- '---- %s\n' "$*"; }

# ---- clusters -----------------------------------------------------------------
cluster_start() {				# name setting...
	local name=$1
	shift
	PORT=$((PORT + 1))
	CPORT[$name]=$PORT
	as_postgres "$PG_BIN/initdb" -D "$WORK/$name" -A trust >/dev/null
	{
		echo "port = $PORT"
		echo "unix_socket_directories = '$WORK'"
		echo "listen_addresses = ''"
		echo "shared_preload_libraries = 'ptbm'"
		echo "fsync = off"
		echo "huge_pages = off"
		printf '%s\n' "$@"
	} >>"$WORK/$name/postgresql.conf"
	CLUSTERS+=("$name")
	if ! as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$name" -l "$WORK/$name.log" -w start >/dev/null; then
		echo "docs-samples: cluster $name did not start:" >&2
		tail -n 5 "$WORK/$name.log" >&2
		exit 1
	fi
	q "$name" -c 'CREATE EXTENSION ptbm'
}
cluster_stop() {				# name
	as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$1" -m fast -w stop >/dev/null
	local c keep=()
	for c in "${CLUSTERS[@]}"; do [ "$c" = "$1" ] || keep+=("$c"); done
	CLUSTERS=("${keep[@]}")
}
# psql in a cluster, as the superuser; NOTICEs (frames hidden) left out
q() {							# cluster psql-arguments...
	local c=$1
	shift
	PGOPTIONS='-c client_min_messages=warning' as_postgres "$PG_BIN/psql" -X -q \
		-h "$WORK" -p "${CPORT[$c]}" -d postgres "$@"
}
qv() { q "$1" -At -c "$2"; }	# one value
# a psql session read from stdin that shows each query before its result
session() {						# cluster
	q "$1" -e -f -
}
# a sample that shows its query, then what psql prints for it
shown() {						# cluster sql
	printf '%s\n\n' "$2"
	q "$1" -c "$2"
}

# ---- long-lived sessions, driven through pipes ----------------------------------
STEP=0
session_open() {				# cluster name
	local c=$1 name=$2 fd
	mkfifo "$WORK/$name.in"
	[ "$(id -u)" = 0 ] && chown postgres "$WORK/$name.in"
	PGAPPNAME=$name PGOPTIONS='-c client_min_messages=warning' as_postgres "$PG_BIN/psql" \
		-X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "${CPORT[$c]}" -d postgres \
		-f "$WORK/$name.in" >"$WORK/$name.out" 2>&1 &
	exec {fd}>"$WORK/$name.in"
	SESSION_FD[$name]=$fd
	SESSION_CL[$name]=$c
	wait_for "$c" "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$name'" "$name"
}
# send sql to a session without waiting; session_wait waits for it
session_send() {				# name sql
	STEP=$((STEP + 1))
	printf '%s;\nSELECT /* sample step %s */ 1;\n' "$2" "$STEP" >&"${SESSION_FD[$1]}"
	SESSION_STEP[$1]=$STEP
}
session_wait() {				# name
	wait_for "${SESSION_CL[$1]}" "SELECT count(*) FROM pg_stat_activity
		WHERE application_name = '$1' AND state = 'idle'
		  AND query LIKE '%sample step ${SESSION_STEP[$1]} %'" "$1"
}
in_session() { session_send "$1" "$2"; session_wait "$1"; }
session_close() {				# name...
	local name c
	for name in "$@"; do
		eval "exec ${SESSION_FD[$name]}>&-"
		unset "SESSION_FD[$name]"
	done
	for name in "$@"; do
		c=${SESSION_CL[$name]}
		wait_for "$c" "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = '$name'" "$name" t
		rm -f "$WORK/$name.in"
	done
}
wait_for() {					# cluster sql what [expected, default 1]
	local i
	for i in $(seq 1 3000); do
		[ "$(qv "$1" "$2")" = "${4:-1}" ] && return 0
		sleep 0.1
	done
	echo "docs-samples: gave up waiting for $3; its output:" >&2
	tail -n 5 "$WORK/$3.out" >&2 2>/dev/null
	exit 1
}

# ---- huge pages ---------------------------------------------------------------
huge_reserve() {				# pages: 0 when they could not be had
	if [ "$(id -u)" != 0 ]; then
		echo 0
		return
	fi
	bash "$SRC/scripts/hugepages.sh" reserve "$1" >/dev/null 2>&1 || true
	local free
	free=$(($(awk '$1 == "HugePages_Free:" { print $2 }' /proc/meminfo) -
		$(awk '$1 == "HugePages_Rsvd:" { print $2 }' /proc/meminfo)))
	if [ "$free" -ge "$1" ]; then echo "$1"; else echo 0; fi
}

# ---- the samples --------------------------------------------------------------

if wants demo; then
	sample 'README.md and docs/findings.md: scripts/demo.sh'
	PTBM_DEMO_PORT=$((PORT + 100)) bash scripts/demo.sh | grep -v '^== building'
fi

if wants reference; then
	cluster_start ref "ptbm.region_size = '64MB'"
	sample 'README.md, SQL reference: ptbm_region()'
	q ref -c 'SELECT * FROM ptbm_region()' -x | sed '1s/^/SELECT * FROM ptbm_region();\n/'
	sample 'README.md, SQL reference: ptbm_pte() after this backend wrote pages 0 and 1'
	echo "SELECT * FROM ptbm_pte(page_count => 3);"
	q ref -c '\o /dev/null' -c "SELECT ptbm_touch(0, 2, 'write')" -c '\o' \
		-c 'SELECT * FROM ptbm_pte(page_count => 3)'
	sample 'README.md, SQL reference: ptbm_shmem_segment(), shared_buffers = 128MB'
	q ref -c 'SELECT * FROM ptbm_shmem_segment()' -x | sed '1s/^/SELECT * FROM ptbm_shmem_segment();\n/'
	cluster_stop ref
fi

# A table of 1.6 GB (205,556 blocks of 8 kB) and a small one of 444 blocks,
# frozen, written out and read into shared_buffers.
make_tables() {					# cluster
	q "$1" -c "CREATE EXTENSION pg_buffercache; CREATE EXTENSION pg_prewarm;
		BEGIN;
		CREATE TABLE big (id int, pad text);
		INSERT INTO big SELECT g, repeat('x', 780) FROM generate_series(1, 1850000) g;
		CREATE TABLE small (id int, pad text);
		INSERT INTO small SELECT g, repeat('y', 780) FROM generate_series(1, 3996) g;
		COMMIT;" -c 'VACUUM (FREEZE, ANALYZE) big, small'
	# a restart writes every page out clean, and no process keeps page
	# tables for the load; then one backend reads both tables into
	# shared_buffers and exits
	as_postgres "$PG_BIN/pg_ctl" -D "$WORK/$1" -m fast -w restart >/dev/null
	prewarm "$1"
}
# the catalogs first, so that later connections find theirs in the buffers
# before big's, then big and small
prewarm() {						# cluster
	q "$1" -c '\o /dev/null' -c "SELECT pg_prewarm(oid) FROM pg_class
		WHERE relnamespace = 'pg_catalog'::regnamespace AND relkind IN ('r', 'i', 't')" \
		-c "SELECT pg_prewarm('big'), pg_prewarm('small')"
}
BIGCONF=("shared_buffers = 2GB" "jit = off" "wal_level = minimal" "max_wal_senders = 0"
	"max_connections = 40" "autovacuum = off" "max_parallel_workers_per_gather = 0")
BACKEND_MEMORY="SELECT pid, backend_type, application_name AS app, state, page_kind,
       pg_size_pretty(shmem_mapped) AS shmem_mapped,
       pg_size_pretty(buffers_mapped) AS buffers_mapped,
       buffers_mapped_pct AS pct,
       pg_size_pretty(shmem_page_table) AS shmem_pt,
       pg_size_pretty(page_table) AS page_table
FROM ptbm_backend_memory;"

if wants pagetables; then
	cluster_start pt "${BIGCONF[@]}" "huge_pages = off"
	make_tables pt
	nblocks=$(qv pt "SELECT pg_relation_size('big') / 8192")
	note "big: $nblocks blocks, small: $(qv pt "SELECT pg_relation_size('small') / 8192") blocks"
	for s in report etl dash app1 app2 idle; do session_open pt "$s"; done
	session_send report 'SELECT count(*) FROM big'
	session_send etl 'SELECT count(*) FROM big'
	session_send dash "SELECT count(*) FROM big WHERE ctid < '($((nblocks / 4)),0)'"
	session_send app1 'SELECT count(*) FROM small'
	session_send app2 'SELECT count(*) FROM small'
	for s in report etl dash app1 app2; do session_wait "$s"; done
	sample 'README.md, Why is PageTables so large?: ptbm_backend_memory'
	shown pt "$BACKEND_MEMORY"
	sample 'README.md, Buffer by buffer: the relations whose buffers are mapped'
	shown pt "SELECT c.relname,
       count(*) AS buffers,
       count(*) FILTER (WHERE p.processes > 0) AS mapped,
       max(p.processes) AS max_processes,
       round(avg(p.processes), 1) AS avg_processes
FROM pg_buffercache b
     JOIN ptbm_buffer_ptes() p USING (bufferid)
     JOIN pg_class c ON c.relfilenode = b.relfilenode
WHERE b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY c.relname
ORDER BY sum(p.processes) DESC
LIMIT 5;"
	sample 'README.md, Buffer by buffer: the buffers one backend (dash) maps'
	shown pt "SELECT c.relname, count(*) AS buffers_mapped
FROM pg_buffercache b
     JOIN ptbm_buffer_ptes((SELECT pid FROM pg_stat_activity WHERE application_name = 'dash')) p
       USING (bufferid)
     JOIN pg_class c ON c.relfilenode = b.relfilenode
WHERE p.present > 0
  AND b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY c.relname
ORDER BY 2 DESC
LIMIT 3;"
	sample 'README.md, Buffer by buffer: timings (2 GB of shared_buffers, these sessions)'
	for i in 1 2 3; do
		q pt -e -c '\timing on' -c 'SELECT count(*) FROM ptbm_buffer_ptes()' \
			-c 'SELECT count(*) FROM pg_buffercache'
	done
	session_close report etl dash app1 app2 idle
	cluster_stop pt
	cluster_start pt16 "shared_buffers = 16GB" "huge_pages = off"
	sample 'README.md, Buffer by buffer: timings (16 GB of shared_buffers, unused, no session)'
	for i in 1 2 3; do
		q pt16 -e -c 'CREATE EXTENSION IF NOT EXISTS pg_buffercache' -c '\timing on' \
			-c 'SELECT count(*) FROM ptbm_buffer_ptes()' -c 'SELECT count(*) FROM pg_buffercache'
	done
	cluster_stop pt16
fi

# N backends each read the table (all of it or its first quarter) and stay
# connected: their page tables, summed.
scaling_row() {					# cluster label n all|quarter
	local c=$1 label=$2 n=$3 part=$4 i before after pt0 pt1 nblocks where='' size
	nblocks=$(qv "$c" "SELECT pg_relation_size('big') / 8192")
	size=$(qv "$c" "SELECT pg_size_pretty(pg_relation_size('big'))")
	if [ "$part" = quarter ]; then
		where=" WHERE ctid < '($((nblocks / 4)),0)'"
		size=$(qv "$c" "SELECT pg_size_pretty(pg_relation_size('big') / 4)")
	fi
	for i in $(seq 1 "$n"); do session_open "$c" "m$i"; done
	before=$(qv "$c" "SELECT sum(page_table) FROM ptbm_backend_memory WHERE application_name LIKE 'm%'")
	pt0=$(awk '$1 == "PageTables:" { print $2 }' /proc/meminfo)
	for i in $(seq 1 "$n"); do session_send "m$i" "SELECT count(*) FROM big$where"; done
	for i in $(seq 1 "$n"); do session_wait "m$i"; done
	pt1=$(awk '$1 == "PageTables:" { print $2 }' /proc/meminfo)
	after=$(qv "$c" "SELECT sum(page_table) FROM ptbm_backend_memory WHERE application_name LIKE 'm%'")
	qv "$c" "SELECT '| $label | $n | $size ($part) | '
			|| pg_size_pretty(sum(buffers_mapped)) || ' | ' || pg_size_pretty(sum(shmem_page_table))
			|| ' | ' || pg_size_pretty(sum(page_table)) || ' | ' || pg_size_pretty($after::bigint - $before)
			|| ' | ' || pg_size_pretty(($pt1::bigint - $pt0) * 1024) || ' |'
		FROM ptbm_backend_memory WHERE application_name LIKE 'm%'"
	session_close $(for i in $(seq 1 "$n"); do echo "m$i"; done)
}
scaling_rows() {				# cluster label
	local spec
	for spec in "1 all" "4 all" "16 all" "16 quarter"; do
		# shellcheck disable=SC2086
		scaling_row "$1" "$2" $spec
	done
}

# the hugetlb pages a 2 GB shared_buffers segment needs, and some
HUGE_SEGMENT_PAGES=1200

if wants scaling; then
	sample 'README.md, Backends x touched shared_buffers -> page tables'
	echo "| huge_pages | backends | read by each | shared_buffers mapped (sum) | shmem_pt (sum) | VmPTE (sum) | VmPTE growth | PageTables growth (machine) |"
	echo "|---|---|---|---|---|---|---|---|"
	cluster_start sc "${BIGCONF[@]}" "huge_pages = off"
	make_tables sc
	scaling_rows sc off
	cluster_stop sc
	if [ "$(huge_reserve $HUGE_SEGMENT_PAGES)" = 0 ]; then
		echo "(huge_pages = on skipped: $HUGE_SEGMENT_PAGES free huge pages needed, as root)"
	else
		cluster_start sch "${BIGCONF[@]}" "huge_pages = on"
		make_tables sch
		scaling_rows sch "on ($(qv sch "SELECT page_size / 1048576 FROM ptbm_shmem_segment()") MB hugetlb)"
		cluster_stop sch
	fi
	echo "read by each: the table big, all of it or its first quarter, from shared_buffers"
fi

if wants pagetables; then
	if [ "$(huge_reserve $HUGE_SEGMENT_PAGES)" = 0 ]; then
		sample 'docs/huge-pages.md: with huge pages, mapped is no longer touched'
		echo "(skipped: $HUGE_SEGMENT_PAGES free huge pages needed, as root)"
	else
		cluster_start pth "${BIGCONF[@]}" "huge_pages = on"
		make_tables pth
		# A whole, 1 GB aligned range of the segment (its page tables are
		# shared) that holds buffers of big and nothing B touches when it
		# connects; where it falls depends on the segment's address, which
		# changes with every start: up to five starts
		for try in 1 2 3 4 5; do
			session_open pth B
			layout=$(qv pth "
			WITH s AS (SELECT ('x' || lpad(substr(base, 3), 16, '0'))::bit(64)::bigint AS base,
			                  ('x' || lpad(substr(buffers_base, 3), 16, '0'))::bit(64)::bigint AS bb,
			                  size FROM ptbm_shmem_segment()),
			     g AS (SELECT lo, lo + 1073741824 AS hi FROM s,
			                  generate_series(((s.base + 1073741823) / 1073741824) * 1073741824,
			                                  s.base + s.size - 1073741824, 1073741824) AS lo),
			     b AS (SELECT p.bufferid, s.bb + (p.bufferid - 1) * 8192::bigint AS addr, p.present
			           FROM s, ptbm_buffer_ptes((SELECT pid FROM pg_stat_activity WHERE application_name = 'B')) p),
			     r AS (SELECT g.lo, g.hi,
			                  min(c.relblocknumber) FILTER (WHERE c.relfilenode = pg_relation_filenode('big')) AS first_block,
			                  max(c.relblocknumber) FILTER (WHERE c.relfilenode = pg_relation_filenode('big')) AS last_block,
			                  sum(b.present) AS b_present
			           FROM g JOIN b ON b.addr >= g.lo AND b.addr + 8192 <= g.hi
			                JOIN pg_buffercache c USING (bufferid)
			           GROUP BY g.lo, g.hi)
			SELECT first_block || ' ' || last_block FROM r
			WHERE b_present = 0 AND last_block - first_block > 60000
			ORDER BY lo LIMIT 1")
			[ -n "$layout" ] && break
			session_close B
			as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pth" -m fast -w restart >/dev/null
			prewarm pth
		done
		sample 'docs/huge-pages.md: with huge pages, mapped is no longer touched'
		if [ -z "$layout" ]; then
			echo "(skipped: no start put a whole 1 GB range of the segment where B had touched nothing)"
		else
			read -r first last <<<"$layout"
			upto=$((first + (last - first) * 6 / 10))
			pick=$((last - 100))
			session_open pth A
			in_session A "SELECT count(*) FROM big WHERE ctid < '($upto,0)'"
			HUGE_Q="SELECT application_name AS app, page_kind, pg_size_pretty(buffers_mapped) AS buffers_mapped,
       pg_size_pretty(shmem_page_table) AS shmem_pt, pg_size_pretty(page_table) AS page_table
FROM ptbm_backend_memory WHERE application_name IN ('A', 'B') ORDER BY 1;"
			note "blocks $first-$last of big lie in a whole 1 GB range of the segment;" \
				"A read blocks 0-$((upto - 1)) of $(qv pth "SELECT pg_relation_size('big') / 8192"); B reads block $pick"
			q pth -c "$HUGE_Q" | sed '1s/^/-- before B reads one block\n/'
			in_session B "SELECT count(*) FROM big WHERE ctid = '($pick,1)'"
			q pth -c "$HUGE_Q" | sed '1s/^/-- after B read block '"$pick"'\n/'
			session_close A
		fi
		session_close B
		cluster_stop pth
	fi
fi

if wants region-huge; then
	HUGE_PTE="SELECT b.application_name, p.page, p.present, p.huge, p.touched, p.via
FROM ptbm_backends() b, ptbm_pte(b.pid) p
WHERE b.application_name IN ('A', 'B') AND p.page IN (0, 1, 511)
ORDER BY 1, 2;"
	# B reads the last page of the first GB, then A reads page 0; then ten
	# backends each read the whole region
	region_sequence() {			# cluster
		local c=$1 i last
		last=$(qv "$c" 'SELECT pages - 1 FROM ptbm_region()')
		session_open "$c" B
		session_open "$c" A
		in_session B "SELECT pages FROM ptbm_touch($last)"
		in_session A 'SELECT pages FROM ptbm_touch(0)'
		shown "$c" "$(echo "$HUGE_PTE" | sed "s/511/$last/")"
		session_close A B
		for i in $(seq 1 10); do
			session_open "$c" "r$i"
			session_send "r$i" 'SELECT pages FROM ptbm_touch(0, NULL)'
		done
		for i in $(seq 1 10); do session_wait "r$i"; done
		q "$c" -c "SELECT string_agg((page_table / 1024)::text, ' ' ORDER BY pid) AS vmpte_kb_of_10_backends,
		                  min(present) AS each_has_present
		           FROM ptbm_backends() WHERE application_name LIKE 'r%'"
		session_close r1 r2 r3 r4 r5 r6 r7 r8 r9 r10
	}
	if [ "$(huge_reserve 520)" = 0 ]; then
		sample 'docs/huge-pages.md: a hugetlb region shares its page tables'
		echo "(skipped: 520 free huge pages needed, as root)"
	else
		cluster_start hr "ptbm.huge_pages = 'hugetlb'" "ptbm.region_size = '1GB'"
		sample 'docs/huge-pages.md: a hugetlb region shares its page tables'
		q hr -x -c 'SELECT page_size, pages, kernel_page_size, page_table_sharing FROM ptbm_region()'
		region_sequence hr
		cluster_stop hr
	fi
	cluster_start br "ptbm.region_size = '1GB'"
	sample 'docs/huge-pages.md: the same with 4 kB pages'
	region_sequence br
	cluster_stop br
	if [ "$(id -u)" = 0 ] && [ -w /sys/kernel/mm/transparent_hugepage/shmem_enabled ]; then
		bash "$SRC/scripts/hugepages.sh" shmem-thp advise >/dev/null
		cluster_start thp "ptbm.huge_pages = 'thp'" "ptbm.region_size = '64MB'"
		sample 'docs/huge-pages.md: a THP region, one write in the first 2 MB'
		session_open thp w
		in_session w "SELECT ptbm_write(3, 'one write')"
		shown thp "SELECT count(*) FILTER (WHERE present) AS present, count(*) FILTER (WHERE huge) AS huge,
       count(*) FILTER (WHERE via = 'own access') AS own_access,
       count(*) FILTER (WHERE via = 'huge mapping') AS huge_mapping
FROM ptbm_pte((SELECT pid FROM pg_stat_activity WHERE application_name = 'w'), 0, 512);"
		pid=$(qv thp "SELECT pid FROM pg_stat_activity WHERE application_name = 'w'")
		base=$(qv thp 'SELECT substr(base, 3) FROM ptbm_region()')
		awk -v b="$base" '$1 ~ "^"b"-" { on = 1; next } /^[0-9a-f]+-/ { on = 0 } on && /ShmemPmdMapped/' \
			"/proc/$pid/smaps" | sed 's/^/smaps of w: /'
		session_close w
		cluster_stop thp
	else
		sample 'docs/huge-pages.md: a THP region, one write in the first 2 MB'
		echo "(skipped: the shmem THP mode is root's)"
	fi
fi

if wants writes; then
	cluster_start wt "ptbm.region_size = '64MB'"
	session_open wt a
	session_open wt b
	in_session a 'SELECT tracking FROM ptbm_track_writes()'
	in_session b 'SELECT tracking FROM ptbm_track_writes()'
	in_session a "SELECT pages FROM ptbm_touch(1010, 10, 'write')"
	in_session b "SELECT (ptbm_touch(1020, 10, 'write')).pages, (ptbm_touch(1010, 10, 'read')).pages"
	sample 'docs/write-tracking.md: a wrote 1010-1019; b wrote 1020-1029 and read 1010-1019'
	shown wt "SELECT b.application_name AS backend, w.first_page, w.pages
FROM ptbm_backends() b, ptbm_written(b.pid) w
WHERE b.application_name IN ('a', 'b') ORDER BY 1;"
	shown wt "SELECT b.application_name AS backend,
       count(*) FILTER (WHERE p.present) AS present,
       count(*) FILTER (WHERE p.written) AS written
FROM ptbm_backends() b, ptbm_pte(b.pid, 1010, 20) p
WHERE b.application_name IN ('a', 'b') GROUP BY 1 ORDER BY 1;"
	session_close a b
	cluster_stop wt

	cluster_start wt64 "ptbm.region_size = '64GB'"
	sample 'docs/write-tracking.md: starting to track on a 64 GB region, then touching 2,000 pages'
	session wt64 <<'SQL'
SELECT tracking, mechanism, page_table_before, page_table_after, round(elapsed_ms::numeric, 2) AS elapsed_ms
FROM ptbm_track_writes();
SELECT (ptbm_touch(100000, 1000, 'write')).pages AS written, (ptbm_touch(5000000, 1000, 'read')).pages AS read;
SELECT page_table FROM ptbm_backends() WHERE pid = pg_backend_pid();
SELECT * FROM ptbm_written();
SQL
	cluster_stop wt64
fi
echo
echo "==== end"
