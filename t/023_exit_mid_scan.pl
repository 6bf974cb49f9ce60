
# Processes that exit while another backend scans them, and scans of a 1TB
# region.
#
# 1. pgbench -C opens a new connection for every transaction (each touches
#    and writes pages), so backends start and exit all the time, while one
#    session loops over every report that walks the processes of the
#    cluster, and over ptbm_pte() of the newest pgbench backends.  A process
#    that exits during a call is skipped: no error at all from the reports,
#    and from ptbm_pte only 22023 "not a process of this cluster" for a pid
#    already gone when it is called.  The server never restarts.
#
# 2. A 1TB region (268 million pages): ptbm_backends() and ptbm_map()
#    return; count(*) over ptbm_pte() and ptbm_sharing() of the whole region
#    is cut by statement_timeout, by pg_cancel_backend and by
#    temp_file_limit within a bounded time, and the backend's peak RSS
#    (VmHWM) stays bounded: the rows spill to disk under work_mem.
#
# 3. A cluster with more processes than a backend may hold files open for:
#    every report still answers.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PtbmTest;

my $node = ptbm_node('exits', 'ptbm.region_size' => '64MB');
$node->append_conf(
	'postgresql.conf', q{
max_connections = 40
log_connections = off
log_disconnections = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
my $pm_start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $pm_pid = postmaster_pid($node);
my $log_offset = -s $node->logfile;

# ---- 1. backends exiting during scans ----------------------------------------

my $sessions0 = $node->safe_psql('postgres',
	"SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'");
my $script = "${PostgreSQL::Test::Utils::tmp_check}/023_churn.sql";
open my $fh, '>', $script or die "could not write $script: $!";
print $fh <<'EOS';
\set p random(0, 16000)
SELECT pages FROM ptbm_touch(:p, 256, 'write');
EOS
close $fh;

my ($pgb_out, $pgb_err) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-C', '-c', '4', '-T', '600', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$pgb_out, '2>', \$pgb_err,
	# the TAP framework sets PGAPPNAME for every client: name these
	init => sub { $ENV{PGAPPNAME} = 'ptbm_churn' });

# wait until pgbench backends come and go
$node->poll_query_until('postgres',
	"SELECT sessions > $sessions0 + 10 FROM pg_stat_database WHERE datname = 'postgres'")
  or do { $pgbench->pump_nb; die "pgbench did not connect: $pgb_err" };

# One scanning session, its statements generated: each report, then
# ptbm_pte() of the newest pgbench backend (likely to exit meanwhile).
# :SQLSTATE and :LAST_ERROR_MESSAGE tell how each ended.
my $scan = "SET client_min_messages = warning;\n";
my @names = qw(ptbm_backends ptbm_map ptbm_sharing ptbm_pte skipped
  ptbm_shmem_backends ptbm_buffer_ptes);
my @kinds = (
	'SELECT count(*) FROM ptbm_backends()',
	'SELECT count(*) FROM ptbm_map(64)',
	'SELECT count(*) FROM ptbm_sharing(0, 4096)',
	q{SELECT count(*) FROM ptbm_pte((SELECT pid FROM pg_stat_activity
	   WHERE application_name = 'ptbm_churn' ORDER BY backend_start DESC LIMIT 1), 0, 16384)},
	# the processes it skipped: listed in the same snapshot, absent from the answer
	q{SELECT (SELECT count(*) FROM pg_stat_activity) + 1 - (SELECT count(*) FROM ptbm_backends()) AS n},
	q{SELECT count(*) FROM ptbm_shmem_backends()},
	q{SELECT count(*) FROM ptbm_buffer_ptes(NULL)});
# In batches of 10 rounds, one psql each, for at least 8 s and 30 rounds
# (at most 250): enough exits during scans, a bounded run time under load.
my ($out, $err) = ('', '');
my $rounds = 0;
my $t = time();
while ($rounds < 250 && ($rounds < 30 || time() - $t < 8))
{
	my $batch = $scan;
	for my $i (1 .. 10)
	{
		for my $k (0 .. $#kinds)
		{
			$batch .= $k == 4 ? "$kinds[$k] \\gset skip_\n" : "$kinds[$k] \\g /dev/null\n";
			$batch .= "\\echo R $k :SQLSTATE :'LAST_ERROR_MESSAGE'\n";
			$batch .= "\\echo S :skip_n\n" if $k == 4;
		}
	}
	my ($o, $e) = ('', '');
	$node->psql(
		'postgres', $batch,
		stdout => \$o,
		stderr => \$e,
		on_error_stop => 0,
		timeout => 120);
	$out .= "$o\n";
	$err .= $e;
	$rounds += 10;
}
my $iterations = $rounds;
my $scan_secs = time() - $t;
# pgbench turns SIGINT into a cancel request: TERM ends it
$pgbench->kill_kill(grace => 5);
my $sessions = $node->safe_psql('postgres',
	"SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'") - $sessions0;

my (%states, @unexpected, $skipped);
my $calls = 0;
foreach my $line (split /\n/, $out)
{
	if ($line =~ /^S (\d+)/)
	{
		$skipped += $1;
		next;
	}
	next unless $line =~ /^R (\d+) (\S+) ?(.*)$/;
	my ($k, $st, $msg) = ($1, $2, $3);
	$calls++;
	$states{"$k:$st"}++;
	next if $st eq '00000';
	# a pid that is gone by the time ptbm_pte is called
	next if $k == 3 && $st eq '22023' && $msg =~ /is not a process of this cluster/;
	push @unexpected, "$kinds[$k]: $st $msg";
}
note sprintf(
	'%d scans in %.1f s while %d sessions connected, touched pages and exited (pgbench -C)',
	$calls, $scan_secs, $sessions);
note '  ' . join(', ', map { my ($k, $s) = split /:/; "$names[$k] $s: $states{$_}" } sort keys %states);
note "processes listed in the snapshot but skipped by ptbm_backends (exited mid-call): " . ($skipped // 0);
is($calls, $iterations * @kinds, 'every scan ended (the session was never lost)');
my %by_msg;
foreach (@unexpected)
{
	(my $m = $_) =~ s/process \d+/process N/g;
	$by_msg{$m}++;
}
is(scalar(@unexpected), 0, 'no error but 22023 for a pid already gone')
  or diag(join("\n", map { "$by_msg{$_} x $_" } sort keys %by_msg));
cmp_ok($sessions, '>', 20, 'backends kept connecting and exiting meanwhile');
unlike($pgb_err, qr/ERROR|aborted|FATAL|server closed/, 'pgbench saw no error');

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$pm_start, 'the server did not restart');
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminated by signal|was terminated by exception|PANIC|TRAP/,
	'no crash in the server log');

# ---- 2. a 1TB region --------------------------------------------------------

ptbm_settings($node, 'ptbm.region_size' => '1TB');
$node->append_conf('postgresql.conf', "work_mem = '4MB'\n");
$node->restart;
$pm_start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
$log_offset = -s $node->logfile;
my $pages = $node->safe_psql('postgres', 'SELECT pages FROM ptbm_region()');
note "1TB region: $pages pages";

my $rss_bound_kb = 256 * 1024;
my $cancel_bound = 5;    # seconds past the deadline or the cancel

# A fresh backend per statement, so that VmHWM is that statement's peak.
sub bounded
{
	my ($what, $sql, %o) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	$bg->query_safe('SET client_min_messages = warning');
	$bg->query_safe($o{set}) if $o{set};
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	my $hwm0 = proc_status_kb($pid, 'VmHWM');

	my $t0 = time();
	my ($res, $cancel_at);
	if ($o{cancel_after})
	{
		# pg_cancel_backend from another session once it runs
		$bg->{stdin} .= "$sql;\n\\echo DONE :SQLSTATE\n";
		$bg->{run}->pump_nb;
		usleep($o{cancel_after} * 1e6);
		$cancel_at = time();
		$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
		pump_until($bg->{run}, $bg->{timeout}, \$bg->{stdout}, qr/DONE \S+/);
		($res) = $bg->{stdout} =~ /DONE (\S+)/;
		$bg->{stdout} = '';
		$bg->{stderr} = '';
	}
	else
	{
		my $out = $bg->query("$sql \\g /dev/null\n\\echo DONE :SQLSTATE");
		($res) = $out =~ /DONE (\S+)/;
	}
	my $secs = time() - $t0;
	my $latency = $cancel_at ? time() - $cancel_at : undef;
	my $hwm = proc_status_kb($pid, 'VmHWM');
	$bg->quit;

	note sprintf(
		'%s: %s after %.2f s%s; peak RSS %d kB -> %d kB (+%d kB)',
		$what, $res // '?', $secs,
		defined $latency ? sprintf(' (%.3f s after the cancel)', $latency) : '',
		$hwm0, $hwm, $hwm - $hwm0);
	return ($res, $secs, $latency, $hwm - $hwm0);
}

my ($res, $secs, $lat, $grew);

($res, $secs, undef, $grew) = bounded('ptbm_backends() over 1TB', 'SELECT count(*) FROM ptbm_backends()');
is($res, '00000', '1TB: ptbm_backends() returns');
cmp_ok($grew, '<', $rss_bound_kb, '1TB: ptbm_backends() peak RSS bounded');

($res, $secs, undef, $grew) = bounded('ptbm_map() over 1TB', 'SELECT count(*) FROM ptbm_map(10000)');
is($res, '00000', '1TB: ptbm_map() returns');
cmp_ok($grew, '<', $rss_bound_kb, '1TB: ptbm_map() peak RSS bounded');

foreach my $f ('ptbm_pte(pg_backend_pid(), 0, NULL)', 'ptbm_sharing(0, NULL)')
{
	my $name = (split /\(/, $f)[0];

	($res, $secs, undef, $grew) = bounded(
		"count(*) over $name, statement_timeout 3s",
		"SELECT count(*) FROM $f",
		set => "SET statement_timeout = '3s'");
	is($res, '57014', "1TB: $name is cut by statement_timeout");
	cmp_ok($secs, '<', 3 + $cancel_bound, "1TB: $name stops soon after the timeout");
	cmp_ok($grew, '<', $rss_bound_kb, "1TB: $name peak RSS bounded under statement_timeout");

	($res, $secs, $lat, $grew) = bounded(
		"count(*) over $name, pg_cancel_backend after 3s",
		"SELECT count(*) FROM $f",
		cancel_after => 3);
	is($res, '57014', "1TB: $name is cancelled by pg_cancel_backend");
	cmp_ok($lat, '<', $cancel_bound, "1TB: $name answers the cancel within ${cancel_bound}s");
	cmp_ok($grew, '<', $rss_bound_kb, "1TB: $name peak RSS bounded until the cancel");

	($res, $secs, undef, $grew) = bounded(
		"count(*) over $name, temp_file_limit 64MB",
		"SELECT count(*) FROM $f",
		set => "SET temp_file_limit = '64MB'; SET statement_timeout = '60s'");
	is($res, '53400', "1TB: $name stops at temp_file_limit (rows spill to disk)");
	cmp_ok($grew, '<', $rss_bound_kb, "1TB: $name peak RSS bounded up to temp_file_limit");
}

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$pm_start, '1TB: the server did not restart');
$log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminated by signal|was terminated by exception|PANIC|TRAP/,
	'1TB: no crash in the server log');

# ---- 3. more processes than a backend may hold files open for --------------

# With max_files_per_process = 64 a backend may hold about 16 files open
# through PostgreSQL's file API at once (1/3 of what is left of them); a
# report must still cover a cluster with more processes than that (the
# same happens at the default setting past about 330 processes).
ptbm_settings($node, 'ptbm.region_size' => '16MB');
$node->append_conf('postgresql.conf', "max_files_per_process = 64\n");
$node->restart;
my @idle = map { $node->background_psql('postgres') } 1 .. 24;
my $nprocs = 1 + $node->safe_psql('postgres', 'SELECT count(*) FROM pg_stat_activity');
note "$nprocs processes in the cluster, max_files_per_process = 64";
foreach my $r ('ptbm_backends()', 'ptbm_map(64)', 'ptbm_sharing(0, 64)',
	'ptbm_shmem_backends()', 'ptbm_buffer_ptes(NULL)')
{
	my ($rc, $o, $e) = $node->psql('postgres',
		"SET client_min_messages = warning;\n\\set VERBOSITY sqlstate\nSELECT count(*) FROM $r");
	is($rc, 0, "$r covers $nprocs processes with few file descriptors")
	  or diag($e);
}
$_->quit foreach @idle;

$node->stop;
done_testing();
