#!/usr/bin/env bash
# ptbm's metrics over a pgbench run, as prometheus-postgres-exporter serves
# them: one command, as root.
#
#   bash prometheus/sample.sh [--installed] [seconds] [clients]
#
# Installs what is missing (apt-get: the exporter, gnuplot-nox), builds and
# installs ptbm (--installed: uses the ptbm already installed), starts a
# throw-away cluster with ptbm preloaded as the postgres OS user under /tmp
# (unix socket only), a login role in pg_monitor only, and the exporter on a
# free loopback port with prometheus/ptbm_queries.yaml; scrapes /metrics
# every second while pgbench (scale 10, default 8 clients for 60 s) runs,
# plots the per-backend page tables and shared_buffers mapped over time
# with prometheus/metrics.gp into docs/metrics.png, and stops and removes
# everything.  The scraped samples stay in prometheus/out/ (not versioned).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

BUILD=yes
if [ "${1:-}" = --installed ]; then
	BUILD=no
	shift
fi
SECS=${1:-60}
CLIENTS=${2:-8}
SCALE=10
SHARED_BUFFERS=512MB
BEFORE=5	# seconds scraped before pgbench starts
AFTER=5		# and after it ends
[ "$(id -u)" = 0 ] || { echo "run as root (it installs packages and runs the server as postgres)" >&2; exit 1; }

ptbm_install_deps prometheus-postgres-exporter gnuplot-nox
[ "$BUILD" = yes ] && ptbm_build_install
EXPORTER=/usr/bin/prometheus-postgres-exporter

WORK=$(mktemp -d /tmp/ptbm-prom.XXXXXX)
chmod 755 "$WORK"
chown postgres "$WORK"
OUT=prometheus/out
mkdir -p docs
mkdir -p "$OUT"
EXPORTER_PID=
SCRAPER=
cleanup() {
	set +e
	[ -z "$SCRAPER" ] || kill "$SCRAPER" 2>/dev/null || true
	if [ -n "$EXPORTER_PID" ]; then
		kill "$EXPORTER_PID" 2>/dev/null
		wait "$EXPORTER_PID" 2>/dev/null
	fi
	as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# A free port: one the kernel gives to a socket bound to port 0.
free_port() {
	perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}
PGPORT=$(free_port)
HTTP_PORT=$(free_port)

echo "== cluster: shared_buffers $SHARED_BUFFERS, ptbm preloaded; pgbench -i -s $SCALE"
as_postgres "$PG_BIN/initdb" -D "$WORK/data" -A trust -N >/dev/null
cat >>"$WORK/data/postgresql.conf" <<EOF
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$WORK'
shared_preload_libraries = 'ptbm'
ptbm.region_size = '64MB'
shared_buffers = '$SHARED_BUFFERS'
huge_pages = off
max_connections = 40
fsync = off
log_min_messages = warning
EOF
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w -t 120 start >/dev/null
psql_c() { as_postgres "$PG_BIN/psql" -X -q -At -h "$WORK" -p "$PGPORT" -d postgres -c "$1"; }
psql_c "CREATE EXTENSION ptbm"
psql_c "CREATE ROLE ptbm_exporter LOGIN IN ROLE pg_monitor"
as_postgres "$PG_BIN/pgbench" -h "$WORK" -p "$PGPORT" -i -q -s "$SCALE" postgres >/dev/null 2>&1

echo "== exporter on 127.0.0.1:$HTTP_PORT as ptbm_exporter (pg_monitor)"
cp prometheus/ptbm_queries.yaml "$WORK/ptbm_queries.yaml"
# setpriv and env exec: $! is the exporter itself
setpriv --reuid=postgres --regid=postgres --init-groups \
	env DATA_SOURCE_NAME="host=$WORK port=$PGPORT user=ptbm_exporter dbname=postgres sslmode=disable application_name=postgres_exporter" \
	"$EXPORTER" --web.listen-address="127.0.0.1:$HTTP_PORT" \
	--extend.query-path="$WORK/ptbm_queries.yaml" >"$WORK/exporter.log" 2>&1 &
EXPORTER_PID=$!

# Scrapes every second for the given seconds; one line per sample of the
# metrics plotted: seconds since start, metric, pid, application_name, value.
SAMPLES=$OUT/samples.tsv
TOTAL=$((BEFORE + SECS + AFTER))
perl -MHTTP::Tiny -MTime::HiRes=time,sleep -e '
	my ($url, $total, $file) = @ARGV;
	my $http = HTTP::Tiny->new(timeout => 10);
	for (1 .. 100) { last if $http->get($url)->{success}; sleep 0.1; }
	open my $out, ">", $file or die "$file: $!";
	my $t0 = time;
	for (my $i = 0; $i <= $total; $i++)
	{
		my $now = time;
		sleep($t0 + $i - $now) if $t0 + $i > $now;
		my $t = time - $t0;
		my $r = $http->get($url);
		die "GET $url: $r->{status} $r->{reason}\n" unless $r->{success};
		foreach (split /\n/, $r->{content})
		{
			next unless /^(ptbm_backend_page_table_bytes|ptbm_backend_shared_buffers_mapped_bytes|ptbm_backend_segment_page_table_bytes|ptbm_cluster_\w+|pg_exporter_last_scrape_duration_seconds|pg_exporter_last_scrape_error)(?:\{(.*)\})? (\S+)$/;
			my ($name, $l, $v) = ($1, $2 // "", $3);
			my ($pid) = $l =~ /pid="(\d+)"/;
			my ($app) = $l =~ /application_name="([^"]*)"/;
			printf $out "%.3f\t%s\t%s\t%s\t%s\n", $t, $name, $pid // "-", $app // "-", $v;
		}
	}' "http://127.0.0.1:$HTTP_PORT/metrics" "$TOTAL" "$SAMPLES" &
SCRAPER=$!

sleep "$BEFORE"
echo "== pgbench: $CLIENTS clients, $SECS s, scraping every second"
if ! as_postgres "$PG_BIN/pgbench" -h "$WORK" -p "$PGPORT" -c "$CLIENTS" -j 2 -T "$SECS" -P 10 postgres \
	>"$WORK/pgbench.out" 2>&1; then
	echo "pgbench failed:" >&2
	tail -n 5 "$WORK/pgbench.out" >&2
	exit 1
fi
TPS=$(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$WORK/pgbench.out" | head -n 1)
sed -n 's/^progress/  progress/p' "$WORK/pgbench.out"
wait "$SCRAPER"
SCRAPER=
kill "$EXPORTER_PID"
wait "$EXPORTER_PID" 2>/dev/null || true
EXPORTER_PID=
if grep -q 'level=error' "$WORK/exporter.log"; then
	echo "== the exporter logged errors:" >&2
	grep 'level=error' "$WORK/exporter.log" | head -n 5 >&2
fi

# gnuplot data: one block per pgbench backend (columns: seconds, page tables,
# shared_buffers mapped, segment page tables, all in bytes), then one block
# of the cluster's sums (seconds, page tables, shared_buffers mapped).
DAT=$OUT/metrics.dat
perl -e '
	my ($samples, $dat) = @ARGV;
	my (%b, %c, @dur, $err);
	open my $in, "<", $samples or die;
	while (<$in>)
	{
		chomp;
		my ($t, $name, $pid, $app, $v) = split /\t/;
		if ($name =~ /^ptbm_backend_(\w+)_bytes$/) { $b{$pid}{$t}{$1} = $v if $app eq "pgbench"; }
		elsif ($name =~ /^ptbm_cluster_(\w+)$/) { $c{$t}{$1} = $v; }
		elsif ($name eq "pg_exporter_last_scrape_duration_seconds") { push @dur, $v; }
		elsif ($name eq "pg_exporter_last_scrape_error") { $err += $v; }
	}
	open my $out, ">", $dat or die;
	my @pids = sort { $a <=> $b } keys %b;
	foreach my $pid (@pids)
	{
		print $out "\"pid $pid\"\n";
		foreach my $t (sort { $a <=> $b } keys %{ $b{$pid} })
		{
			my $s = $b{$pid}{$t};
			print $out join(" ", $t, map { $s->{$_} // "NaN" } qw(page_table shared_buffers_mapped segment_page_table)), "\n";
		}
		print $out "\n\n";
	}
	print $out "\"cluster\"\n";
	foreach my $t (sort { $a <=> $b } keys %c)
	{
		print $out join(" ", $t, map { $c{$t}{$_} // "NaN" } qw(page_table_bytes shared_buffers_mapped_bytes processes)), "\n";
	}
	@dur = sort { $a <=> $b } @dur;
	printf STDERR "%d pgbench backends; %d scrapes; scrape duration median %.0f ms, max %.0f ms; scrapes with an error: %d\n",
	  scalar(@pids), scalar(@dur), 1000 * $dur[$#dur / 2], 1000 * $dur[-1], $err // 0;
	print scalar(@pids), "\n";' "$SAMPLES" "$DAT" >"$WORK/nseries" 2>"$WORK/summary"
cat "$WORK/summary"
NSERIES=$(cat "$WORK/nseries")
echo "== pgbench: $TPS tps"
TITLE="pgbench -s $SCALE, $CLIENTS clients, $SECS s ($TPS tps), shared\\_buffers = $SHARED_BUFFERS, 4 kB pages: scraped every second through prometheus-postgres-exporter"
gnuplot -e "datafile='$DAT'; outfile='docs/metrics.png'; nseries=$NSERIES; plottitle='$TITLE'; before=$BEFORE; secs=$SECS; after=$AFTER" \
	prometheus/metrics.gp
echo "== wrote docs/metrics.png (samples: $SAMPLES, $DAT)"
