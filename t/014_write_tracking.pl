# Per-backend write tracking across backend lifetimes.
#  - ptbm.track_writes = on: every client backend registers itself at start
#    (registration is per process; fork passes none on).
#  - a tracking backend that exits leaves nothing behind: no process of the
#    cluster keeps a write-protect registration of the region (VmFlags "uw").
#  - resetting another backend's set needs superuser, or EXECUTE on
#    ptbm_written_reset granted by one.
#  - what tracking costs follows what a backend maps, not the region's size:
#    on a 64 GB region, starting costs no page tables where the backend maps
#    nothing, and stopping gives back what touching built.
#  - a cancel (pg_cancel_backend, statement_timeout) stops a long start
#    within 100 ms and leaves the backend exactly as before.
#  - untouched write-protected pages are not reported swapped (uffd-wp PTE
#    markers look like swap entries in pagemap).
#  - DISCARD ALL and RESET ALL start the session's tracking again: the next
#    user of a pooled connection never sees the previous user's set.
#  - every region kind can be tracked (asynchronous write-protect allows
#    any memory, files of ordinary file systems included).
use strict;
use warnings;
no warnings "portable";    # hex() of 64-bit addresses
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use Time::HiRes qw(time usleep);
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ptbm_node('writes', 'ptbm.region_size' => '64GB');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
my ($mech) = $node->safe_psql('postgres', 'SELECT write_tracking FROM ptbm_region()');
plan skip_all => 'this kernel cannot track writes per process' if $mech eq '';

my ($base, $size) = split /\|/, $node->safe_psql('postgres', 'SELECT base, size FROM ptbm_region()');

sub uw_processes
{
	my @pids = split /\n/, $node->safe_psql('postgres', 'SELECT pid FROM ptbm_backends()');
	return grep { tracks_registration($_) } @pids;
}

# whether a process's region VMA is registered for write-protect
sub tracks_registration
{
	my ($pid) = @_;
	my $tracks = 0;
	if (open my $fh, '<', "/proc/$pid/smaps")
	{
		my $in = 0;
		while (my $l = <$fh>)
		{
			if ($l =~ /^([0-9a-f]+)-/) { $in = hex($1) == hex($base); next; }
			$tracks = 1 if $in && $l =~ /^VmFlags:.*\buw\b/;
		}
	}
	return $tracks;
}

sub written
{
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(first_page || '+' || pages, ',' ORDER BY first_page) FROM ptbm_written($pid)");
}

# ---- a backend that tracks, writes, and exits; what it costs ----------------
my $s = $node->background_psql('postgres');
my $spid = $s->query_safe('SELECT pg_backend_pid()');
my ($before, $after) = split /\|/, $s->query_safe(
	'SELECT page_table_before, page_table_after FROM ptbm_track_writes()');
my $whole = $size / 512;    # page tables of the whole region: 8 bytes per 4 kB page
note("tracking a $size-byte region: VmPTE $before -> $after bytes (the whole region's tables: $whole)");
cmp_ok($after - $before, '<', $whole / 1000,
	'starting to track costs almost no page tables where the backend maps nothing');
$s->query_safe("SELECT ptbm_write(7, 'x')");
is(written($spid), '7+1', 'another backend reads the tracking backend\'s set');
is(scalar(uw_processes()), 1, 'exactly one process of the cluster holds a registration');

# touching 2000 pages protects their chunks only
$s->query_safe(q{SELECT a.pages + b.pages FROM ptbm_touch(100000, 1000, 'write') a, ptbm_touch(5000000, 1000, 'read') b});
my $touched = proc_status_kb($spid, 'VmPTE') * 1024;
cmp_ok($touched - $before, '<', 64 * 1024,
	'touching 2000 pages in two places builds the tables of their chunks only');
is(written($spid), '7+1,100000+1000', 'the writes are tracked, the reads are not');

# ---- markers are not swap ----------------------------------------------------
my $swap_kb = (split /\s+/, `grep SwapTotal /proc/meminfo`)[1];
my ($sw, $pr) = split /\|/, $node->safe_psql('postgres',
	"SET client_min_messages = warning; SELECT count(*) FILTER (WHERE swapped), count(*) FILTER (WHERE present) FROM ptbm_pte($spid, 99000, 4000)");
is($pr, 1000, 'ptbm_pte of a tracking backend: the written pages are present');
if ($swap_kb == 0)
{
	is($sw, 0, 'no swap configured: no page is reported swapped (untouched protected pages hold markers)');
	is($node->safe_psql('postgres', "SELECT swapped FROM ptbm_backends() WHERE pid = $spid"),
		'0', 'and ptbm_backends() reports none swapped');
}
else
{
	cmp_ok($sw, '<=', region_smaps($spid, $base, $size)->{Swap} * 1024 / page_size(),
		'no more pages reported swapped than smaps counts swap entries');
	ok(1, 'swap configured');
}

# stopping gives back what protecting built where nothing is mapped
$s->query_safe(q{SELECT ptbm_evict(5000000, 1000, 'dontneed')});
my ($stop_before, $stop_after) = split /\|/, $s->query_safe(
	'SELECT page_table_before, page_table_after FROM ptbm_track_writes(false)');
note("stopping: VmPTE $stop_before -> $stop_after bytes");
cmp_ok($stop_after, '<', $stop_before, 'stopping gives page tables back');
ok(!tracks_registration($spid), 'and the registration');
$s->query_safe('SELECT tracking FROM ptbm_track_writes()');

# ---- resetting another backend's set needs superuser --------------------------
$node->safe_psql('postgres', 'CREATE ROLE wt_monitor IN ROLE pg_monitor');
my ($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE wt_monitor; SELECT * FROM ptbm_written($spid, true)");
like($err, qr/only superusers may reset/, 'pg_monitor may not reset another backend\'s set');
like($err, qr/HINT:.*ptbm_written_reset/, 'and is told of ptbm_written_reset');
$s->query_safe("SELECT ptbm_write(7, 'x')");
is($node->safe_psql('postgres', "SET ROLE wt_monitor; SELECT count(*) FROM ptbm_written($spid)"),
	'1', 'pg_monitor may read it');
($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE wt_monitor; SELECT * FROM ptbm_written_reset($spid)");
like($err, qr/permission denied for function ptbm_written_reset/,
	'ptbm_written_reset: not without a grant');
$node->safe_psql('postgres', 'GRANT EXECUTE ON FUNCTION ptbm_written_reset(integer) TO wt_monitor');
is($node->safe_psql('postgres',
		"SET ROLE wt_monitor; SELECT string_agg(first_page || '+' || pages, ',') FROM ptbm_written_reset($spid)"),
	'7+1', 'ptbm_written_reset with a grant: returns the set as it resets it');
is(written($spid), '', 'the set is empty after the reset');
$s->query_safe("SELECT ptbm_write(9, 'y'), ptbm_write(7, 'z')");
is(written($spid), '7+1,9+1', 'writes after the reset are tracked again');
$s->query_safe('SELECT tracking FROM ptbm_track_writes(true)');
is(written($spid), '', 'ptbm_track_writes() while tracking resets the own set');

$s->quit;
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $spid");
is(scalar(uw_processes()), 0, 'after it exits, no process keeps a registration');

# ---- DISCARD ALL and RESET ALL: a pooled connection starts clean -------------
foreach my $reset ('DISCARD ALL', 'RESET ALL')
{
	my $p = $node->background_psql('postgres');
	my $ppid = $p->query_safe('SELECT pg_backend_pid()');
	$p->query_safe(q{SELECT tracking FROM ptbm_track_writes(); SELECT ptbm_write(11, 'u')});
	is(written($ppid), '11+1', "$reset: the first user's write is tracked");
	$p->query_safe($reset);
	($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM ptbm_written($ppid)");
	like($err, qr/process $ppid does not track writes/,
		"$reset with ptbm.track_writes off: the session no longer tracks");
	ok(!tracks_registration($ppid), "$reset: and holds no registration");
	$p->quit;
}

# ---- ptbm.track_writes: every new client backend tracks from its start ------
$node->append_conf('postgresql.conf', "ptbm.track_writes = on\n");
$node->reload;
my $t = $node->background_psql('postgres');
my $tpid = $t->query_safe('SELECT pg_backend_pid()');
$t->query_safe('SELECT pages FROM ptbm_touch(100, 3, \'write\')');
is(written($tpid), '100+3', 'ptbm.track_writes: a new backend tracks from its start');
cmp_ok(proc_status_kb($tpid, 'VmPTE') * 1024, '<', 4 * 1024 * 1024,
	'the login path paid no page tables for the 64 GB region');
$t->query_safe('DISCARD ALL');
is(written($tpid), '', 'DISCARD ALL with ptbm.track_writes on: tracking again, the set empty');
$t->query_safe("SELECT ptbm_write(12, 'v')");
is(written($tpid), '12+1', 'and the next user\'s writes are tracked');
$t->quit;
$node->stop;

# ---- a cancel stops a long start, and leaves the backend as it was -----------
# A private region's zero-page mappings make a backend map 4 GB without
# allocating it; starting to track then protects 2048 chunks (about 70 ms
# here).  The cancel is honoured between chunks; undoing the registration
# then costs what the kernel's unregister costs, a walk of every PTE the
# backend maps in the region (about 18 ms per GB mapped, bench/).
my $big = ptbm_node('cancel', 'ptbm.region_size' => '8GB', 'ptbm.region_kind' => 'private_anon');
$big->start;
$big->safe_psql('postgres', 'CREATE EXTENSION ptbm');
foreach my $how ('pg_cancel_backend', 'statement_timeout')
{
	my ($in, $o, $e) = ('', '', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-d', $big->connstr('postgres') ],
		'<', \$in, '>', \$o, '2>', \$e);
	$in .= "SET application_name = 'canceled'; SET client_min_messages = warning;\n"
	  . "SELECT pages FROM ptbm_touch(0, 1048576, 'read') \\g /dev/null\n"
	  . "SELECT 'VmPTE' || pg_backend_pid();\n";
	$h->pump until $o =~ /VmPTE(\d+)/;
	my $pid = $1;
	my $pte0 = proc_status_kb($pid, 'VmPTE');
	$in .= ($how eq 'statement_timeout' ? "SET statement_timeout = '20ms';\n" : '')
	  . "SELECT tracking FROM ptbm_track_writes();\nRESET statement_timeout;\n\\echo AFTER\n";
	$h->pump_nb;
	my $t0;
	if ($how eq 'pg_cancel_backend')
	{
		$big->poll_query_until('postgres',
			"SELECT state = 'active' FROM pg_stat_activity WHERE pid = $pid AND query LIKE '%ptbm_track_writes%'");
		$t0 = time();
		$big->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	}
	else
	{
		$t0 = time() + 0.02;
	}
	$h->pump until $o =~ /AFTER/;
	my $ms = (time() - $t0) * 1000;
	like($e, qr/ERROR:  canceling statement due to (user request|statement timeout)/,
		"$how: the start was cancelled");
	note(sprintf('%s: the call ended %.0f ms after the cancel', $how, $ms));
	cmp_ok($ms, '<', 100 + 100, "$how: within 100 ms (and a scheduling margin)");
	ok(!tracks_registration($pid), "$how: no registration left");
	($rc, $out, $err) = $big->psql('postgres', "SELECT * FROM ptbm_written($pid)");
	like($err, qr/does not track writes/, "$how: the backend does not track");
	cmp_ok(abs(proc_status_kb($pid, 'VmPTE') - $pte0), '<=', 64, "$how: its page tables are as before");
	$in .= "\\q\n";
	$h->finish;
}
$big->stop;

# ---- every kind can be tracked -------------------------------------------------
foreach my $kind (qw(shared_anon private_anon shared_memfd shared_file private_file))
{
	my $k = ptbm_node("kind_$kind", 'ptbm.region_size' => '16MB', 'ptbm.region_kind' => $kind);
	$k->start;
	$k->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	my $r = $k->safe_psql('postgres', q{
		SELECT tracking FROM ptbm_track_writes();
		SELECT ptbm_write(5, 'a'), ptbm_write(6, 'b'), ptbm_read(9, 1);
		SELECT string_agg(first_page || '+' || pages, ',') FROM ptbm_written()});
	is((split /\n/, $r)[-1], '5+2', "$kind: the written set is the two written pages");
	$k->stop;
}

done_testing();
