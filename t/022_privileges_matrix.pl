
# The privilege model, as a matrix: every function of the extension (found
# in the catalog, so a new function cannot escape the matrix) called with
# valid arguments by
#   nobody     a login role with no grant at all
#   monitor    a member of pg_monitor
#   granted    a role given EXECUTE on two memory-changing functions only
#   frames     a member of pg_monitor and pg_read_server_files
#   superuser  the bootstrap superuser
# Reports are for pg_monitor; touch, write, read and evict for superusers
# and explicit grants; frame numbers and kernel page flags (pfn, mapcount,
# flags, same_frame) are NULL for everyone but superusers and members of
# pg_read_server_files, and NULL for them too when the kernel hides frames
# from the server.
#
# Then the pid rule: a process of the same OS user that is not part of the
# cluster (a sleep the test starts, the test's own perl) is refused with
# 22023 by every function that takes a pid, and, where strace can attach,
# no /proc file of it is opened; every /proc file the reports open belongs
# to a process of the cluster, also in a transaction whose snapshot of
# pg_stat_activity still lists a backend that has exited since (its pid
# may belong to any process by then).

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PtbmTest;

my $node = ptbm_node('privs', 'ptbm.region_size' => '16MB');
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION ptbm;
	CREATE ROLE ptbm_nobody LOGIN;
	CREATE ROLE ptbm_monitor LOGIN IN ROLE pg_monitor;
	CREATE ROLE ptbm_granted LOGIN;
	GRANT EXECUTE ON FUNCTION ptbm_touch(bigint, bigint, text) TO ptbm_granted;
	GRANT EXECUTE ON FUNCTION ptbm_evict(bigint, bigint, text) TO ptbm_granted;
	GRANT EXECUTE ON FUNCTION ptbm_written_reset(integer) TO ptbm_granted;
	-- the study's loops check superuser themselves: a grant does not open them
	GRANT EXECUTE ON FUNCTION ptbm_bench_hits(regclass, text, bigint, integer, double precision, bigint, boolean) TO ptbm_granted;
	CREATE ROLE ptbm_frames LOGIN IN ROLE pg_monitor, pg_read_server_files;});

# a backend with PTEs on pages 0-63, for the calls that show frames
my $holder = $node->background_psql('postgres');
$holder->query_safe('SET client_min_messages = warning');
$holder->query_safe(q{SELECT pages FROM ptbm_touch(0, 64, 'write')});
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
# and tracks its writes, where the kernel can (ptbm_written reads them)
$holder->query('SELECT tracking FROM ptbm_track_writes(true)');

my $frames_visible =
  $node->safe_psql('postgres', 'SELECT frames_visible FROM ptbm_region()') eq 't';
note "the kernel shows frame numbers to the server: "
  . ($frames_visible ? 'yes' : 'no (pfn, mapcount, flags are NULL for every role)');

# Every function of the extension, from the catalog, with the names of its
# input arguments.
my @procs = split /\n/, $node->safe_psql(
	'postgres', q{
	SELECT p.proname || '|' || p.oid::regprocedure || '|' ||
	       coalesce((SELECT string_agg(a.name, ',')
	                 FROM unnest(p.proargnames) WITH ORDINALITY a(name, i)
	                 WHERE coalesce(p.proargmodes[a.i], 'i') IN ('i', 'b', 'v')), '')
	FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	                 AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ptbm'
	ORDER BY 1});

# A valid call of each function; report => granted to pg_monitor; frames =>
# the second output column counts non-NULL frame columns; also => SQLSTATEs
# that still mean "allowed" (the kernel may lack a feature).
my %calls = (
	ptbm_region => { sql => 'SELECT count(*) FROM ptbm_region()', report => 1 },
	ptbm_pte => {
		sql => "SELECT count(*), count(pfn) + count(mapcount) + count(flags) FROM ptbm_pte($holder_pid, 0, 64)",
		report => 1,
		frames => 1
	},
	ptbm_backends => { sql => 'SELECT count(*) FROM ptbm_backends()', report => 1 },
	ptbm_map => { sql => 'SELECT count(*) FROM ptbm_map(16)', report => 1 },
	ptbm_sharing => {
		sql => 'SELECT count(*), count(same_frame) + count(mapcount) FROM ptbm_sharing(0, 64)',
		report => 1,
		frames => 1
	},
	ptbm_touch => { sql => q{SELECT pages FROM ptbm_touch(0, 4, 'read')} },
	ptbm_write => { sql => q{SELECT ptbm_write(1, '\x01'::bytea, 0)} },
	ptbm_read => { sql => 'SELECT ptbm_read(1, 1, 0)' },
	ptbm_evict => { sql => q{SELECT pages FROM ptbm_evict(2, 1, 'dontneed')} },
	ptbm_track_writes => {
		sql => 'SELECT tracking FROM ptbm_track_writes(true)',
		also => ['0A000']
	},
	ptbm_written => {
		sql => "SELECT count(*) FROM ptbm_written($holder_pid, false)",
		report => 1,
		also => ['55000']
	},
	ptbm_written_reset => {
		sql => "SELECT count(*) FROM ptbm_written_reset($holder_pid)",
		also => ['55000']
	},
	ptbm_shmem_segment => { sql => 'SELECT count(*) FROM ptbm_shmem_segment()', report => 1 },
	ptbm_shmem_backends => { sql => 'SELECT count(*) FROM ptbm_shmem_backends()', report => 1 },
	ptbm_buffer_ptes => {
		sql => "SELECT count(*), sum(present) FROM ptbm_buffer_ptes($holder_pid)",
		report => 1
	},
	ptbm_numa_nodes => { sql => 'SELECT count(*) FROM ptbm_numa_nodes()', report => 1 },
	# the pool is off here: allowed calls end in 55000 (t/030 runs them with it on)
	ptbm_pool_attach => { sql => q{SELECT count(*) FROM ptbm_pool_attach('pg_class')}, also => ['55000'] },
	ptbm_pool_detach => { sql => q{SELECT ptbm_pool_detach('pg_class')}, also => ['55000'] },
	ptbm_pool_read => { sql => q{SELECT length(ptbm_pool_read('pg_class', 0))}, also => ['55000'] },
	ptbm_pool_prewarm => { sql => q{SELECT ptbm_pool_prewarm('pg_class')}, also => ['55000'] },
	ptbm_pool_evict => { sql => q{SELECT ptbm_pool_evict('pg_class')}, also => ['55000'] },
	ptbm_pool_stats => { sql => 'SELECT count(*) FROM ptbm_pool_stats()', report => 1, also => ['55000'] },
	ptbm_pool_blocks => {
		sql => q{SELECT count(*) FROM ptbm_pool_blocks('pg_class')},
		report => 1,
		also => ['55000']
	},
	# the study's loops: superusers only, even with a grant
	ptbm_bench_hits => { sql => q{SELECT accesses FROM ptbm_bench_hits('pg_class', 'bufmgr', 10)}, superuser_only => 1 },
	ptbm_bench_scan => { sql => q{SELECT pages FROM ptbm_bench_scan('pg_class', 'bufmgr')}, superuser_only => 1 },
	ptbm_bench_lookups => {
		sql => q{SELECT lookups FROM ptbm_bench_lookups('pg_class_oid_index', 'pg_class', 'bufmgr', 10)},
		superuser_only => 1,
		also => ['42809']
	},);
# Rows of the matrix that are not one function's plain call.
my @extra = (
	[
		'ptbm_written(reset => true) of another backend',
		{
			sql => "SELECT count(*) FROM ptbm_written($holder_pid, true)",
			superuser_only => 1,
			also => ['55000']
		}
	],
	[
		'view ptbm_backend_memory',
		{ sql => 'SELECT count(*) FROM ptbm_backend_memory', report => 1, view => 1 }
	]);
my %granted = (ptbm_touch => 1, ptbm_evict => 1, ptbm_written_reset => 1);
my @roles = (
	[ nobody => 'ptbm_nobody' ],
	[ monitor => 'ptbm_monitor' ],
	[ granted => 'ptbm_granted' ],
	[ frames => 'ptbm_frames' ],
	[ superuser => $superuser ]);

sub expected
{
	my ($role, $f, $c) = @_;
	return 'allowed' if $role eq 'superuser';
	return 'denied' if $c->{superuser_only};
	return $c->{report} ? 'allowed' : 'denied'
	  if $role eq 'monitor' || $role eq 'frames';
	return $granted{$f} ? 'allowed' : 'denied' if $role eq 'granted';
	return 'denied';
}

# frame columns: non-NULL only where the kernel shows frames and the role
# may see them
sub frames_expected
{
	my ($role) = @_;
	return ($frames_visible && ($role eq 'superuser' || $role eq 'frames')) ? 'shown' : 'NULL';
}

sub matrix_row
{
	my ($name, $label, $c) = @_;
	my @cells;
	foreach my $r (@roles)
	{
		my ($role, $login) = @$r;
		my ($rc, $out, $err) = $node->psql(
			'postgres',
			"SET client_min_messages = warning;\n\\set VERBOSITY sqlstate\n$c->{sql}",
			extra_params => [ '-U', $login ]);
		my ($state) = $err =~ /ERROR:\s+(\w{5})/;
		my $got =
		    $rc == 0 ? 'allowed'
		  : !defined $state ? "error: $err"
		  : $state eq '42501' ? 'denied'
		  : (grep { $_ eq $state } @{ $c->{also} // [] }) ? 'allowed'
		  : "error $state";
		my $exp = expected($role, $name, $c);
		is($got, $exp, "$label as $role: $exp");
		my $cell = $got;
		$cell .= " ($state)" if $got eq 'allowed' && $rc != 0;
		if ($c->{frames} && $got eq 'allowed')
		{
			my ($rows, $nonnull) = split /\|/, $out;
			my $fr = $nonnull > 0 ? 'shown' : 'NULL';
			is($fr, frames_expected($role), "$label as $role: frame columns " . frames_expected($role));
			$cell .= ", frames $fr";
		}
		push @cells, $cell;
	}
	return [ $label, @cells ];
}

my (@matrix, %pid_takers);
foreach my $row (@procs)
{
	my ($name, $sig, $argnames) = split /\|/, $row, 3;
	ok($calls{$name}, "$sig is in the privilege matrix")
	  or next;    # a new function: give it a call and an expectation above
	$pid_takers{$name} = $sig if grep { $_ eq 'pid' } split /,/, $argnames;
	push @matrix, matrix_row($name, $sig, $calls{$name});
}
push @matrix, matrix_row('', $_->[0], $_->[1]) foreach @extra;

# the catalog says the same as the calls
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM pg_proc p
		JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
		JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ptbm'
		WHERE has_function_privilege('public', p.oid, 'EXECUTE')}),
	0,
	'no function of ptbm is executable by PUBLIC');

my $w = 0;
$w = length($_->[0]) > $w ? length($_->[0]) : $w foreach @matrix;
my $cw = 22;
note sprintf("%-${w}s | %s", 'function', join(' | ', map { sprintf("%-${cw}s", $_->[0]) } @roles));
note sprintf("%-${w}s | %s", $_->[0], join(' | ', map { sprintf("%-${cw}s", $_) } @{$_}[ 1 .. $#$_ ]))
  foreach @matrix;

# ---- pids of processes outside the cluster ----------------------------------

my $sleep_pid = fork() // die "fork: $!";
if ($sleep_pid == 0)
{
	exec 'sleep', '600' or die "exec sleep: $!";
}
my $pm_pid = postmaster_pid($node);
my $exited = $node->safe_psql('postgres', 'SELECT pg_backend_pid()');
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $exited");

ok(scalar(keys %pid_takers) > 0, 'some function takes a pid: '
	  . join(', ', map { $pid_takers{$_} } sort keys %pid_takers));
my %outsiders = (
	"a sleep of the same OS user ($sleep_pid)" => $sleep_pid,
	"the test's own perl ($$)" => $$,
	"an exited backend ($exited)" => $exited,
	'pid 1' => 1);
foreach my $f (sort keys %pid_takers)
{
	foreach my $what (sort keys %outsiders)
	{
		my $pid = $outsiders{$what};
		# and a role that may call it: pg_monitor, or the explicit grant
		foreach my $login ($superuser, $calls{$f}{report} ? 'ptbm_monitor' : 'ptbm_granted')
		{
			my ($rc, $out, $err) = $node->psql(
				'postgres',
				"\\set VERBOSITY sqlstate\nSELECT count(*) FROM $f(pid => $pid)",
				extra_params => [ '-U', $login ]);
			like($err, qr/ERROR:\s+22023/,
				"$f refuses $what with 22023, called by $login");
		}
	}
	my (undef, undef, $err) = $node->psql('postgres', "SELECT count(*) FROM $f(pid => $sleep_pid)");
	like($err, qr/process $sleep_pid is not a process of this cluster/,
		"$f says why it refuses the pid");
}

# ---- strace: no /proc file of an outsider is opened ---------------------------

my $strace = `command -v strace 2>/dev/null`;
chomp $strace;
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_safe('SET client_min_messages = warning');
my $bpid = $bg->query_safe('SELECT pg_backend_pid()');
my $trace = "${PostgreSQL::Test::Utils::tmp_check}/strace_022.out";
my ($st_out, $st_err) = ('', '');
my $st;
if ($strace)
{
	$st = IPC::Run::start(
		[ $strace, '-q', '-e', 'trace=open,openat,openat2', '-o', $trace, '-p', $bpid ],
		'>', \$st_out, '2>', \$st_err);
	# attached once an open of the backend shows in the trace (ptbm_region
	# opens /proc/self/smaps)
	foreach (1 .. 100)
	{
		$bg->query_safe('SELECT count(*) FROM ptbm_region()');
		$st->pump_nb if $st->pumpable;
		last if -s $trace || !$st->pumpable;
		usleep(50_000);
	}
}
my $attached = $st && -s $trace && $st->pumpable;
$st->kill_kill if $st && !$attached && $st->pumpable;

SKIP:
{
	skip "strace cannot attach to the backend here ($st_err)", 6
	  unless $attached;

	# a positive control: the postmaster's pagemap is opened
	$bg->query_safe("SELECT count(*) FROM ptbm_pte($pm_pid, 0, 1)");
	foreach my $f (sort keys %pid_takers)
	{
		foreach my $pid ($sleep_pid, $$, $exited, 1)
		{
			$bg->query("SELECT count(*) FROM $f(pid => $pid)");
		}
	}
	my $cluster_pids = $bg->query(
		"SELECT string_agg(pid::text, ',') FROM (SELECT pid FROM pg_stat_activity UNION SELECT $pm_pid) s"
	);
	$bg->query('SELECT count(*) FROM ptbm_backends()');
	$bg->query('SELECT count(*) FROM ptbm_map(64)');
	$bg->query('SELECT count(*) FROM ptbm_sharing(0, 64)');
	$bg->query('SELECT count(*) FROM ptbm_region()');
	$bg->query('SELECT 1');

	# A transaction's snapshot of backend status can outlive a backend, and
	# its pid can then belong to any process: a report in that transaction
	# must not open /proc files of a pid that has left the cluster.
	my $leaver = $node->background_psql('postgres');
	my $leaver_pid = $leaver->query_safe('SELECT pg_backend_pid()');
	$bg->query('BEGIN');
	$bg->query("SELECT count(*) FROM pg_stat_activity WHERE pid = $leaver_pid");
	$leaver->quit;
	$node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $leaver_pid)");
	foreach my $r ('ptbm_backends()', 'ptbm_map(64)', 'ptbm_sharing(0, 64)',
		'ptbm_shmem_backends()', 'ptbm_buffer_ptes(NULL)', 'ptbm_numa_nodes()')
	{
		(my $name = $r) =~ s/\(.*//;
		$bg->query("SELECT count(*) FROM $r") if $calls{$name};
	}
	$bg->query('COMMIT');
	usleep(200_000);
	kill 'INT', $st->{KIDS}[0]{PID};
	$st->finish;

	my $log = slurp_file($trace);
	my @opened = ($log =~ m{"/proc/(\d+)/}g);
	note "strace saw " . scalar(@opened) . " opens of /proc/PID files";
	ok((grep { $_ == $pm_pid } @opened),
		"strace works: the postmaster's /proc files were opened (control)");
	my %cluster = map { $_ => 1 } split /,/, $cluster_pids;
	my @outside = grep { !$cluster{$_} } @opened;
	is_deeply(\@outside, [], 'every /proc/PID file opened belongs to a process of the cluster')
	  or diag(join("\n", grep { m{/proc/(\d+)/} && !$cluster{$1} } split /\n/, $log));
	foreach my $pid ($sleep_pid, $$, 1)
	{
		is(scalar(grep { $_ == $pid } @opened), 0, "no /proc file of outsider $pid was opened");
	}
	is(scalar(grep { $_ == $leaver_pid } @opened),
		0, "no /proc file of backend $leaver_pid was opened once it had left (stale snapshot)");
}
$bg->quit;
$holder->quit;

kill 'TERM', $sleep_pid;
waitpid($sleep_pid, 0);
$node->stop;
done_testing();
