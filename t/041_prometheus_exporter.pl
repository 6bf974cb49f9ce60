# ptbm's metrics through prometheus-postgres-exporter
# (prometheus/ptbm_queries.yaml, docs/monitoring.md).
#  - the exporter, connected as a login role that is only a member of
#    pg_monitor, loads the queries file and scrapes without an error: its
#    own default metrics and every ptbm query work under that role.
#  - every metric the file declares is in /metrics, with its TYPE (gauge, or
#    counter for a _total), named ptbm_..., in bytes where it is a size,
#    with the labels the file declares and no other (pid, backend_type,
#    application_name, and the exporter's own "server").
#  - every scraped value equals what the same SQL (the file's query, run by
#    that role) returns just before and just after the scrape: between the
#    two reads for everything, exactly for the idle sessions the test
#    opened, within a stated tolerance for the three connections that run
#    queries during the scrape (the exporter's two and the test's reader).
#  - the values mean what they say: a session that read a table's blocks
#    through the buffer pool has them present in the region, the pool counts
#    them resident and loaded once each, one that read a table maps it in shared_buffers, an
#    idle session maps nothing of the region, and its page-table bytes are
#    the VmPTE of its /proc/PID/status.
#  - with --auto-discover-databases and ptbm in two databases, each process
#    is still reported once ("master: true").
# The exporter is a Debian package that the postgres user cannot install:
# without /usr/bin/prometheus-postgres-exporter the test skips
# (scripts/test.sh installs it as root).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use CPAN::Meta::YAML;
use HTTP::Tiny;
use IPC::Run;
use Time::HiRes qw(usleep);
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $exporter_bin = '/usr/bin/prometheus-postgres-exporter';
plan skip_all => "$exporter_bin is missing (apt-get install prometheus-postgres-exporter, as root)"
  unless -x $exporter_bin;

my $queries_file = "$FindBin::RealBin/../prometheus/ptbm_queries.yaml";

# The file's namespaces: query, labels and value columns (with their usage).
my $yaml = CPAN::Meta::YAML->read($queries_file)
  or BAIL_OUT("cannot parse $queries_file: " . CPAN::Meta::YAML->errstr);
my %ns;
foreach my $name (sort keys %{ $yaml->[0] })
{
	my $spec = $yaml->[0]{$name};
	my (@labels, @values, %usage);
	foreach my $m (@{ $spec->{metrics} })
	{
		my ($col, $opt) = %$m;
		if ($opt->{usage} eq 'LABEL') { push @labels, $col; }
		else { push @values, $col; $usage{$col} = $opt->{usage}; }
	}
	$ns{$name} = { query => $spec->{query}, master => $spec->{master},
		labels => \@labels, values => \@values, usage => \%usage };
}
my @metrics = map { my $n = $_; map { "${n}_$_" } @{ $ns{$n}{values} } } sort keys %ns;
note(scalar(@metrics) . " metrics in " . scalar(keys %ns) . " namespaces: @metrics");

# ---- the file follows the conventions ---------------------------------------
my %allowed_label = map { $_ => 1 } qw(pid backend_type application_name);
foreach my $n (sort keys %ns)
{
	like($n, qr/^ptbm_[a-z_]+$/, "namespace $n: prefixed ptbm_");
	is($ns{$n}{master}, 'true', "namespace $n: master: true (once per server)");
	my @bad = grep { !$allowed_label{$_} } @{ $ns{$n}{labels} };
	is("@bad", '', "namespace $n: labels only among pid, backend_type, application_name");
	foreach my $col (@{ $ns{$n}{values} })
	{
		my $u = $ns{$n}{usage}{$col};
		if ($col =~ /_total$/)
		{
			is($u, 'COUNTER', "${n}_$col: a _total is a COUNTER");
		}
		else
		{
			is($u, 'GAUGE', "${n}_$col: not a _total, a GAUGE");
			like($col, qr/(_bytes|^processes|^generation|_relations)$/,
				"${n}_$col: a size in bytes, or a count");
		}
	}
	# every function call and operator named in its schema (SQL keywords
	# that take parentheses aside)
	(my $q = $ns{$n}{query}) =~ s/'[^']*'//g;
	my @calls = grep { !/^(COALESCE|OPERATOR|FROM|JOIN|LATERAL)$/i }
	  ($q =~ /(?<![.\w])(\w+)\s*\(/g);
	is("@calls", '', "namespace $n: every function schema-qualified");
	my @casts = $q =~ /::(?!pg_catalog\.)(\w+)/g;
	is("@casts", '', "namespace $n: every cast to a pg_catalog type");
	$q =~ s/OPERATOR\(pg_catalog\.[^)]+\)//g;
	$q =~ s/\(\*\)//g;    # count(*)
	$q =~ s/SELECT \*//g;   # a select list of every column
	$q =~ s/:://g;          # casts
	my @ops = $q =~ m{([-+*/=<>!~|&^%#@]+)}g;
	is("@ops", '', "namespace $n: every operator OPERATOR(pg_catalog.*)");
}

# ---- a node, a monitoring role, sessions that map things ---------------------
my $node = ptbm_node('prom', 'ptbm.region_size' => '64MB', 'ptbm.pool_size' => '8MB');
# no autovacuum worker comes or goes between the reads and the scrape
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION ptbm;
	CREATE ROLE prom_monitor LOGIN IN ROLE pg_monitor;
	CREATE TABLE prom_t AS SELECT g, pg_catalog.repeat('x', 100) AS pad
	                       FROM pg_catalog.generate_series(1, 20000) g;});
is($node->safe_psql('postgres', q{
	SELECT pg_catalog.string_agg(b.rolname, ',' ORDER BY b.rolname)
	FROM pg_catalog.pg_auth_members m
	     JOIN pg_catalog.pg_roles r ON r.oid = m.member
	     JOIN pg_catalog.pg_roles b ON b.oid = m.roleid
	WHERE r.rolname = 'prom_monitor'}), 'pg_monitor',
	'the exporter\'s role is a member of pg_monitor only');
my $table_bytes = $node->safe_psql('postgres', q{SELECT pg_catalog.pg_relation_size('prom_t')});

my ($writer, $writer_pid) = ptbm_session($node, 'prom_writer');
# (with the pool on, the region is the pool's: the writer maps it by
# reading a table's blocks through the pool)
my $table_blocks = $node->safe_psql('postgres', q{
	SELECT pg_catalog.count(*) FROM ptbm_pool_attach('prom_t');
	SELECT pg_catalog.pg_relation_size('prom_t') / 8192});
$table_blocks = (split /\n/, $table_blocks)[-1];
$writer->query_safe(q{SELECT pg_catalog.count(ptbm_pool_read('prom_t', b))
	FROM pg_catalog.generate_series(0, pg_catalog.pg_relation_size('prom_t') / 8192 - 1) b});
my ($reader, $reader_pid) = ptbm_session($node, 'prom_reader');
$reader->query_safe('SELECT pg_catalog.count(*) FROM prom_t');
my ($idle, $idle_pid) = ptbm_session($node, 'prom_idle');
my %idle_pids = map { $_ => 1 } ($writer_pid, $reader_pid, $idle_pid);

# The test's own reads run the file's queries as prom_monitor, from one
# session that stays connected (so it is one process in every read).
my $sql = $node->background_psql('postgres', on_error_stop => 1,
	extra_params => [ '-U', 'prom_monitor' ]);
$sql->query_safe(q{SET application_name = 'prom_sql'; SET client_min_messages = warning});
my $sql_pid = $sql->query_safe('SELECT pg_catalog.pg_backend_pid()');

# ---- the exporter ---------------------------------------------------------------
# Started with the role's DSN on a free loopback port; every exporter the
# test starts is stopped by the test, also when it dies on the way.
my @exporters;
END
{
	foreach my $e (@exporters)
	{
		next unless $e->{h}->pumpable;
		$e->{h}->signal('TERM');
		eval { $e->{h}->finish; 1 } or $e->{h}->kill_kill;
	}
}
my $http = HTTP::Tiny->new(timeout => 30);

sub start_exporter
{
	my ($name, $app, @flags) = @_;
	my %e = (port => PostgreSQL::Test::Cluster::get_free_port(),
		log => "$PostgreSQL::Test::Utils::log_path/041_$name.log");
	$e{url} = "http://127.0.0.1:$e{port}/metrics";
	my $dsn = sprintf('host=%s port=%d user=prom_monitor dbname=postgres sslmode=disable application_name=%s',
		$node->host, $node->port, $app);
	my @cmd = ($exporter_bin, "--web.listen-address=127.0.0.1:$e{port}",
		"--extend.query-path=$queries_file", '--log.level=info', @flags);
	note("DATA_SOURCE_NAME='$dsn' @cmd");
	{
		local $ENV{DATA_SOURCE_NAME} = $dsn;
		$e{h} = IPC::Run::start(\@cmd, '<', \undef, '>', $e{log}, '2>&1');
	}
	$e{pid} = $e{h}{KIDS}[0]{PID};
	push @exporters, \%e;
	my $ready = 0;
	foreach (1 .. 200)
	{
		if ($http->get($e{url})->{success}) { $ready = 1; last; }
		die "the exporter exited; its log: " . slurp_file($e{log}) unless $e{h}->pumpable;
		usleep(100_000);
	}
	ok($ready, "$name serves $e{url}");
	return \%e;
}

sub stop_exporter
{
	my ($e, $name) = @_;
	$e->{h}->signal('TERM');
	$e->{h}->finish;
	ok(!kill(0, $e->{pid}), "$name stopped");
}

sub scrape
{
	my ($e) = @_;
	my $r = $http->get($e->{url});
	die "GET $e->{url}: $r->{status} $r->{reason}\n$r->{content}" unless $r->{success};
	return $r->{content};
}

my $exporter = start_exporter('exporter', 'prom_exporter');
my $exporter_log = $exporter->{log};

# The text exposition format: metric name, labels, value; HELP and TYPE.
sub parse_metrics
{
	my ($text) = @_;
	my (%samples, %type);
	foreach my $line (split /\n/, $text)
	{
		if ($line =~ /^# TYPE (\S+) (\S+)/) { $type{$1} = $2; next; }
		next if $line =~ /^#/ || $line !~ /\S/;
		$line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
		  or die "cannot parse exposition line: $line";
		my ($name, $labels, $value) = ($1, $2 // '', $3);
		my %l;
		while ($labels =~ /\G\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gc)
		{
			my ($k, $v) = ($1, $2);
			$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
			$l{$k} = $v;
		}
		die "cannot parse labels of: $line" if (pos($labels) // 0) != length($labels);
		push @{ $samples{$name} }, { labels => \%l, value => $value + 0 };
	}
	return (\%samples, \%type);
}

# One read of every namespace by the same SQL, as prom_monitor: per
# namespace, rows keyed by their label values.
sub read_sql
{
	my %r;
	foreach my $n (sort keys %ns)
	{
		my $out = $sql->query_safe($ns{$n}{query});
		my $nl = scalar @{ $ns{$n}{labels} };
		foreach my $line (split /\n/, $out)
		{
			my @f = split /\|/, $line, -1;
			die "namespace $n: unexpected row '$line'"
			  unless @f == $nl + @{ $ns{$n}{values} };
			my $key = join('|', @f[ 0 .. $nl - 1 ]);
			die "namespace $n: two rows for $key" if exists $r{$n}{$key};
			$r{$n}{$key} = { map { $ns{$n}{values}[$_] => $f[ $nl + $_ ] } 0 .. $#{ $ns{$n}{values} } };
		}
	}
	return \%r;
}

# the exporter connects on its first scrape: one before the reads, so that
# its connections are processes of the cluster in all three
scrape($exporter);
my @exporter_pids = split /\n/, $sql->query_safe(
	q{SELECT pid FROM pg_catalog.pg_stat_activity WHERE application_name = 'prom_exporter' ORDER BY pid});
note("exporter's connections: @exporter_pids; the test's reader: $sql_pid; idle sessions: "
	  . join(' ', sort keys %idle_pids));
ok(scalar(@exporter_pids) >= 1, 'the exporter is connected as prom_monitor');
is($node->safe_psql('postgres',
		q{SELECT pg_catalog.string_agg(DISTINCT usename, ',') FROM pg_catalog.pg_stat_activity
		  WHERE application_name = 'prom_exporter'}),
	'prom_monitor', 'every connection of the exporter is prom_monitor\'s');

my $vmpte_idle = proc_status_kb($idle_pid, 'VmPTE') * 1024;
my $before = read_sql();
my $text = scrape($exporter);
my $after = read_sql();
my $vmpte_idle_after = proc_status_kb($idle_pid, 'VmPTE') * 1024;
my ($samples, $type) = parse_metrics($text);

# ---- the exporter ran everything without an error ----------------------------
sub one_value
{
	my ($name, %want) = @_;
	my @s = grep {
		my $l = $_->{labels};
		!grep { ($l->{$_} // '') ne $want{$_} } keys %want
	} @{ $samples->{$name} // [] };
	return @s == 1 ? $s[0]{value} : undef;
}
is(one_value('pg_up'), 1, 'pg_up 1: the exporter reaches the server as prom_monitor');
is(one_value('pg_exporter_user_queries_load_error', filename => $queries_file), 0,
	'pg_exporter_user_queries_load_error 0: the queries file loads');
is(one_value('pg_exporter_last_scrape_error'), 0,
	'pg_exporter_last_scrape_error 0: every query (the default ones and ptbm\'s) ran as prom_monitor');
foreach my $s (@{ $samples->{pg_scrape_collector_success} // [] })
{
	is($s->{value}, 1, "pg_scrape_collector_success{collector=\"$s->{labels}{collector}\"} 1");
}
my $log = slurp_file($exporter_log);
unlike($log, qr/level=error|Error running query|permission denied/i, 'the exporter logged no error');

# ---- every declared metric, and only those ------------------------------------
my %declared = map { $_ => 1 } @metrics;
my @undeclared = grep { /^ptbm_/ && !$declared{$_} } sort keys %$samples;
is("@undeclared", '', 'no ptbm_ metric that the file does not declare (no untyped column)');

# Tolerances, for the connections that run queries while the scrape reads
# them; everything else must lie between the two reads.
my %busy_pid = map { $_ => 1 } (@exporter_pids, $sql_pid);
my %tolerance = (
	page_table_bytes => 64 * 1024,
	segment_page_table_bytes => 16 * 1024,
	segment_mapped_bytes => 2 * 1024 * 1024,
	shared_buffers_mapped_bytes => 2 * 1024 * 1024,
	present_bytes => 0,
	region_present_bytes => 0);

foreach my $n (sort keys %ns)
{
	my @labels = @{ $ns{$n}{labels} };
	my $per_process = grep { $_ eq 'pid' } @labels;
	foreach my $col (@{ $ns{$n}{values} })
	{
		my $name = "${n}_$col";
		my $want_type = $ns{$n}{usage}{$col} eq 'COUNTER' ? 'counter' : 'gauge';
		is($type->{$name}, $want_type, "$name: present, TYPE $want_type");
		my $got = $samples->{$name} // [];

		# labels: the declared ones and the exporter's server
		my @bad = grep {
			join(',', sort keys %{ $_->{labels} }) ne join(',', sort(@labels, 'server'))
		} @$got;
		is(scalar(@bad), 0, "$name: labels {" . join(',', @labels, 'server') . '}');

		my %scraped;
		foreach my $s (@$got)
		{
			$scraped{ join('|', map { $s->{labels}{$_} // '' } @labels) } = $s->{value};
		}
		# what could the scrape reasonably differ by
		my $tol = 0;
		if (!$per_process && $n eq 'ptbm_cluster')
		{
			$tol = ($tolerance{$col} // 0) * scalar(keys %busy_pid);
		}
		my @keys = sort keys %{ $before->{$n} };
		is(join(',', sort keys %scraped), join(',', @keys),
			"$name: one series per row of the query" . ($per_process ? ' (per process)' : ''));
		my (@outside, $loose);
		foreach my $k (@keys)
		{
			my ($r1, $r2, $v) = ($before->{$n}{$k}{$col}, $after->{$n}{$k}{$col}, $scraped{$k});
			next unless defined $v && defined $r2;
			my $t = $tol;
			my ($pid) = $per_process ? split(/\|/, $k) : ();
			$t = $tolerance{$col} // 0 if defined $pid && $busy_pid{$pid};
			my ($lo, $hi) = $r1 < $r2 ? ($r1, $r2) : ($r2, $r1);
			if ($v < $lo - $t || $v > $hi + $t)
			{
				push @outside, "$k: scraped $v, SQL $r1 then $r2 (tolerance $t)";
			}
			$loose++ if defined $pid && $idle_pids{$pid} && ($v != $r1 || $v != $r2);
			note("$name {$k}: SQL $r1, scraped $v, SQL $r2") if $r1 != $r2 || $v != $r1;
		}
		is(join('; ', @outside), '', "$name: every value as the same SQL returns it around the scrape");
		if ($per_process)
		{
			is($loose // 0, 0, "$name: the three idle sessions' values equal both reads exactly");
		}
	}
}

# ---- the values mean what they say ---------------------------------------------
sub scraped
{
	my ($name, $pid) = @_;
	return one_value($name, pid => $pid);
}
my ($region_page) = $node->safe_psql('postgres', 'SELECT page_size FROM ptbm_region()');
cmp_ok(scraped('ptbm_backend_region_present_bytes', $writer_pid), '>=', $table_blocks * 8192,
	"the writer maps the $table_blocks blocks it read through the pool");
is(one_value('ptbm_pool_resident_bytes'), $table_blocks * 8192, 'ptbm_pool_resident_bytes: those blocks');
is(one_value('ptbm_pool_misses_total'), $table_blocks, 'ptbm_pool_misses_total: one load each');
is(one_value('ptbm_pool_budget_bytes'), 8 * 1024 * 1024, 'ptbm_pool_budget_bytes: ptbm.pool_size');
is(one_value('ptbm_pool_attached_relations'), 1, 'ptbm_pool_attached_relations: prom_t');
is(scraped('ptbm_backend_region_present_bytes', $idle_pid), 0, 'the idle session maps none of the region');
cmp_ok(scraped('ptbm_backend_shared_buffers_mapped_bytes', $reader_pid), '>=', $table_bytes,
	"the reader maps at least its table ($table_bytes bytes) of shared_buffers");
SKIP:
{
	# with huge pages (huge_pages = try finds some reserved) every fault maps
	# 2 MB, and a session that touched a few catalog buffers maps megabytes
	my $seg_page = one_value('ptbm_segment_page_size_bytes');
	skip("the segment is mapped with $seg_page-byte pages", 1) if $seg_page > page_size();
	cmp_ok(scraped('ptbm_backend_shared_buffers_mapped_bytes', $idle_pid), '<', $table_bytes,
		'the idle session maps less of shared_buffers than the table the reader read');
}

# the idle sessions against the view ptbm_backend_memory and the kernel's
# smaps of the region: the file's arithmetic, checked by other means
my ($base, $size) = split /\|/, $node->safe_psql('postgres', 'SELECT base, size FROM ptbm_region()');
foreach my $pid (sort keys %idle_pids)
{
	my ($shmem, $buffers, $shmem_pt, $pt) = split /\|/, $node->safe_psql('postgres',
		"SELECT shmem_mapped, buffers_mapped, shmem_page_table, page_table FROM ptbm_backend_memory WHERE pid = $pid");
	is(join(' ', map { scraped($_, $pid) // 'none' } qw(ptbm_backend_segment_mapped_bytes
			ptbm_backend_shared_buffers_mapped_bytes ptbm_backend_segment_page_table_bytes
			ptbm_backend_page_table_bytes)),
		"$shmem $buffers $shmem_pt $pt",
		"pid $pid: segment, shared_buffers, segment page tables, page tables as ptbm_backend_memory has them");
	is(scraped('ptbm_backend_region_present_bytes', $pid), region_smaps($pid, $base, $size)->{Rss} * 1024,
		"pid $pid: region present bytes are the Rss of its region VMA in smaps");
}
is(scraped('ptbm_backend_page_table_bytes', $idle_pid), $vmpte_idle,
	"the idle session's page-table bytes are the VmPTE of its /proc status ($vmpte_idle)");
is($vmpte_idle_after, $vmpte_idle, 'and its VmPTE did not move meanwhile');
is(one_value('ptbm_backend_page_table_bytes', backend_type => 'postmaster') // -1,
	proc_status_kb(postmaster_pid($node), 'VmPTE') * 1024,
	'the postmaster is reported, labelled backend_type="postmaster"');
is(one_value('ptbm_backend_page_table_bytes', pid => $writer_pid, application_name => 'prom_writer',
		backend_type => 'client backend') // -1,
	scraped('ptbm_backend_page_table_bytes', $writer_pid),
	'a session is labelled with its application_name and backend_type');
is(one_value('ptbm_cluster_processes'), scalar(@{ $samples->{ptbm_backend_page_table_bytes} }),
	'ptbm_cluster_processes counts the per-process series');
is(one_value('ptbm_region_size_bytes'), 64 * 1024 * 1024, 'ptbm_region_size_bytes: ptbm.region_size');
is(one_value('ptbm_region_generation'), 1, 'ptbm_region_generation 1 after the start');
is(one_value('ptbm_region_crash_resets_total'), 0, 'ptbm_region_crash_resets_total 0 after the start');
my $sum = 0;
$sum += $_->{value} foreach @{ $samples->{ptbm_backend_region_present_bytes} };
is(one_value('ptbm_cluster_region_present_bytes'), $sum,
	'ptbm_cluster_region_present_bytes is the sum of the per-process series');

# ---- with --auto-discover-databases: still once per server ---------------------
# A second database with ptbm: a query without "master: true" would run in
# both and report every process twice under the same labels, and the
# exporter would answer the whole scrape with HTTP 500.
$node->safe_psql('postgres', 'CREATE DATABASE prom_other');
$node->safe_psql('prom_other', 'CREATE EXTENSION ptbm');
my $discover = start_exporter('exporter_discover', 'prom_discover', '--auto-discover-databases');
my ($dsamples) = parse_metrics(scrape($discover));
is($dsamples->{pg_exporter_last_scrape_error}[0]{value}, 0,
	'--auto-discover-databases: no query failed in any database');
my %per_pid;
$per_pid{ $_->{labels}{pid} }++ foreach @{ $dsamples->{ptbm_backend_page_table_bytes} // [] };
ok(%per_pid && !grep({ $_ != 1 } values %per_pid),
	'--auto-discover-databases: each process reported once ('
	  . scalar(keys %per_pid) . ' processes)');
is(scalar(@{ $dsamples->{ptbm_region_size_bytes} // [] }), 1,
	'--auto-discover-databases: one ptbm_region_size_bytes');
stop_exporter($discover, 'the exporter with --auto-discover-databases');

# ---- the pool's namespace on a server without the pool -----------------------------
# no row, and no error that would fail the scrape
my $nopool = ptbm_node('prom_nopool', 'ptbm.region_size' => '16MB');
$nopool->start;
$nopool->safe_psql('postgres', 'CREATE EXTENSION ptbm');
my ($prc, $pout, $perr) = $nopool->psql('postgres', $ns{ptbm_pool}{query});
is("$prc|$pout|$perr", '0||', 'ptbm_pool where the pool is off: no row, no error');
$nopool->stop;

# ---- the exporters stop with the test --------------------------------------------
stop_exporter($exporter, 'the exporter');
$node->poll_query_until('postgres',
	q{SELECT pg_catalog.count(*) = 0 FROM pg_catalog.pg_stat_activity
	  WHERE application_name IN ('prom_exporter', 'prom_discover')})
  or diag('the exporters\' connections are still there');

$_->quit foreach ($writer, $reader, $idle, $sql);
$node->stop;
done_testing();
