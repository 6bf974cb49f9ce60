#!/usr/bin/env bash
# The per-backend picture: installs what is missing, builds and installs
# ptbm, starts a throw-away cluster with ptbm preloaded, lets three backends
# touch parts of the buffer-table region, and shows what each backend's page
# table holds, before and after evictions.  --keep leaves the cluster running.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
. scripts/common.sh

KEEP=no
[ "${1:-}" = "--keep" ] && KEEP=yes
PORT=${PTBM_DEMO_PORT:-5488}

ptbm_install_deps
ptbm_build_install

DIR=$(mktemp -d /tmp/ptbm-demo.XXXXXX)
chmod 755 "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
PGDATA=$DIR/data
cleanup() {
	for fd in 3 4 5; do eval "exec $fd>&-" 2>/dev/null || true; done
	if [ "$KEEP" = no ]; then
		as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT

echo "== a throw-away cluster in $DIR, port $PORT, with ptbm preloaded"
as_postgres "$PG_BIN/initdb" -D "$PGDATA" -A trust >/dev/null
cat >>"$PGDATA/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$DIR'
listen_addresses = ''
shared_preload_libraries = 'ptbm'
ptbm.region_size = '64MB'
ptbm.region_kind = 'shared_anon'
CONF
as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$DIR/server.log" -w start >/dev/null

PSQL=("$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -d postgres)
# frames_visible and soft_dirty in ptbm_region() say once what the kernel hides
sql() { PGOPTIONS='-c client_min_messages=warning' as_postgres "${PSQL[@]}" -c "$@"; }
say() { echo; printf -- '-- %s\n' "$@"; }

sql "CREATE EXTENSION ptbm; CREATE TABLE demo_done (who text, step int);"

# Three long-lived backends, driven through pipes: writer, reader, idle.
step=0
start_session() {				# name fd
	mkfifo "$DIR/$1.in"
	[ "$(id -u)" = 0 ] && chown postgres "$DIR/$1.in"
	PGAPPNAME=$1 as_postgres "${PSQL[@]}" -v ON_ERROR_STOP=1 -f "$DIR/$1.in" >"$DIR/$1.out" 2>&1 &
	eval "exec $2>\"$DIR/$1.in\""
}
in_session() {					# name fd sql: run and wait until done
	step=$((step + 1))
	echo "$3; INSERT INTO demo_done VALUES ('$1', $step);" >&"$2"
	for _ in $(seq 1 200); do
		[ "$(as_postgres "${PSQL[@]}" -At -c "SELECT count(*) FROM demo_done WHERE step = $step")" = 1 ] && return 0
		sleep 0.05
	done
	echo "session $1 did not finish step $step:" >&2
	tail -n 5 "$DIR/$1.out" >&2
	exit 1
}
start_session writer 3
start_session reader 4
start_session idle 5
in_session writer 3 "SET client_min_messages = warning"
in_session reader 4 "SET client_min_messages = warning"
in_session idle 5 "SET client_min_messages = warning"

say "The region: mapped once by the postmaster before it forked any backend." \
	"Every process inherits it at the same address; the kernel backs it with a shmem file."
sql "\\x on" -c "SELECT base, pg_size_pretty(size) AS size, pages, kind, backing, inode, vma_flags, pagemap_scan, soft_dirty, frames_visible FROM ptbm_region()"

say "Before anyone touches it: no process has a single PTE in the region (fork copies none)."
sql "SELECT pid, backend_type, application_name, present FROM ptbm_backends() ORDER BY pid"

in_session writer 3 "SELECT * FROM ptbm_touch(0, 4096, 'write')"
in_session reader 4 "SELECT * FROM ptbm_touch(2048, 4096, 'read')"
say "writer wrote pages 0-4095; reader read pages 2048-6143; idle did nothing." \
	"Each backend has PTEs only for what it touched itself: page tables are per process." \
	"exclusive = pages only this process maps; shared = pages another process maps too."
sql "SELECT pid, backend_type, application_name AS app, present, exclusive, shared,
            pg_size_pretty(rss) AS rss, pg_size_pretty(pss) AS pss,
            pg_size_pretty(shared_dirty) AS shared_dirty, pg_size_pretty(private_dirty) AS private_dirty,
            pg_size_pretty(page_table) AS page_table
     FROM ptbm_backends() WHERE present > 0 OR application_name = 'idle' ORDER BY pid"

say "The same as a map: one strip per process, '.' no PTE, ':' to '%' eighths present, '@' full."
sql "SELECT m.pid, coalesce(b.application_name, m.backend_type) AS process, m.map
     FROM ptbm_map(64) m JOIN ptbm_backends() b USING (pid)
     WHERE m.present > 0 OR b.application_name = 'idle' ORDER BY m.pid"

say "Page by page: who maps it, and whether it exists in the shmem file (page cache) at all." \
	"Page 10: writer only. 3000: both (same page of the shmem file). 5000: reader only." \
	"7000: nobody, and it does not exist yet: its first fault will create it."
sql "SELECT s.page, s.processes,
            (SELECT string_agg(b.application_name, ',' ORDER BY b.application_name)
               FROM ptbm_backends() b WHERE b.pid = ANY (s.pids)) AS mapped_by,
            s.in_page_cache
     FROM ptbm_sharing() s WHERE s.page IN (10, 3000, 5000, 7000) ORDER BY s.page"

say "idle reads page 3000: a minor fault finds the existing page through the shmem file;" \
	"fault-around maps neighbouring pages already in the page cache in the same fault."
in_session idle 5 "SELECT * FROM ptbm_touch(3000, 1, 'read')"
sql "SELECT b.application_name AS app, count(*) FILTER (WHERE p.present) AS present_near_3000
     FROM ptbm_backends() b, ptbm_pte(b.pid, 2992, 32) p
     WHERE b.application_name IN ('writer', 'reader', 'idle') GROUP BY 1 ORDER BY 1"

say "writer evicts pages 3000-3099 with MADV_DONTNEED: only writer's PTEs go, the data stays."
in_session writer 3 "SELECT * FROM ptbm_evict(3000, 100, 'dontneed')"
sql "SELECT s.page, s.processes,
            (SELECT string_agg(b.application_name, ',' ORDER BY b.application_name)
               FROM ptbm_backends() b WHERE b.pid = ANY (s.pids)) AS mapped_by,
            s.in_page_cache
     FROM ptbm_sharing(2999, 3) s ORDER BY s.page"

in_session writer 3 "SELECT ptbm_write(3001, 'hello')"
say "writer writes 'hello' into page 3001, then evicts pages 3000-3099 with MADV_REMOVE:" \
	"every backend's PTEs go, and the pages leave the shmem file: the data is gone."
in_session writer 3 "SELECT * FROM ptbm_evict(3000, 100, 'remove')"
sql "SELECT s.page, s.processes, s.pids, s.in_page_cache FROM ptbm_sharing(2999, 3) s ORDER BY s.page"
sql "SELECT ptbm_read(3001, 5) AS page_3001_after_remove"

say "The whole picture after the evictions."
sql "SELECT m.pid, coalesce(b.application_name, m.backend_type) AS process, m.present, m.map
     FROM ptbm_map(64) m JOIN ptbm_backends() b USING (pid)
     WHERE m.present > 0 OR b.application_name = 'idle' ORDER BY m.pid"

say "Per-backend dirty bits: writer and reader track their own writes (userfaultfd write-protect)." \
	"writer writes pages 100-104, reader writes 200-201 and reads 100-104:" \
	"each backend's written set holds only its own writes, though both map 100-104."
in_session writer 3 "SELECT tracking FROM ptbm_track_writes()"
in_session reader 4 "SELECT tracking FROM ptbm_track_writes()"
in_session writer 3 "SELECT * FROM ptbm_touch(100, 5, 'write')"
in_session reader 4 "SELECT * FROM ptbm_touch(200, 2, 'write')"
in_session reader 4 "SELECT * FROM ptbm_touch(100, 5, 'read')"
sql "SELECT b.application_name AS app, w.first_page, w.pages
     FROM ptbm_backends() b, ptbm_written(b.pid) w
     WHERE b.application_name IN ('writer', 'reader') ORDER BY 1, 2"

if [ "$KEEP" = yes ]; then
	echo
	echo "The cluster keeps running: psql -h $DIR -p $PORT postgres"
fi
