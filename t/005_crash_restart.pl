
# A crash-restart cycle (a backend killed by SIGKILL) resets the shared
# region to zeros in the same postmaster, keeps the mapping where it was,
# counts the generation up, and leaks neither mappings nor descriptors.
# private_anon goes through the same cycle (its reset only drops the
# postmaster's own pages).

use strict;
use warnings;
no warnings 'portable';    # hex() of 64-bit addresses
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PtbmTest;

my $size = 8 * 1024 * 1024;
my $psz = page_size();

my $node = ptbm_node('crash');
$node->append_conf('postgresql.conf', 'restart_after_crash = on');
my $datadir = $node->data_dir;
my $file = "$datadir/pg_dynshmem/ptbm_region";

# SIGKILL a backend sleeping in pg_sleep, and wait until the postmaster has
# started the next generation and accepts connections.
sub crash_backend
{
	my ($kind, $next_gen) = @_;

	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(qr/sleeping/, "\\echo sleeping\nSELECT pg_sleep(600);\n");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) FROM pg_stat_activity
			 WHERE pid = $pid AND wait_event = 'PgSleep'",
			'1'),
		"$kind: backend $pid is sleeping");

	kill 'KILL', $pid or die "could not kill $pid: $!";

	# psql sees its connection die
	ok( pump_until(
			$bg->{run}, $bg->{timeout}, \$bg->{stderr},
			qr/server closed the connection unexpectedly|connection to server was lost/m
		),
		"$kind: the killed backend's session is gone");
	$bg->{run}->finish;

	# old-generation backends may still answer for a moment: wait for the
	# new generation itself
	ok( $node->poll_query_until(
			'postgres', 'SELECT generation FROM ptbm_region()', $next_gen),
		"$kind: the server accepts connections again, generation $next_gen");
	return;
}

# started once with the default kind; each kind below is a restart
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
foreach my $kind (qw(shared_anon shared_memfd shared_file private_anon))
{
	my $shared = ($kind =~ /^shared_/) ? 1 : 0;
	ptbm_settings(
		$node,
		'ptbm.region_size' => '8MB',
		'ptbm.region_kind' => $kind);
	$node->restart;
	my $log_offset = -s $node->logfile;

	my $pm = postmaster_pid($node);
	my ($base, $gen, $vmas) = split /\|/,
	  $node->safe_psql('postgres', 'SELECT base, generation, vmas FROM ptbm_region()');
	is($gen, 1, "$kind: generation 1 after a clean start");

	my @pm_vmas = region_maps_vmas($pm, $base, $size);
	my $pm_fds = proc_fd_count($pm);
	is(scalar(@pm_vmas), 1, "$kind: the postmaster maps the region as one VMA");
	ok($pm_vmas[0] =~ /^\Q@{[substr($base, 2)]}\E-/,
		"$kind: that VMA starts at the region's base");
	my $inode = $kind eq 'shared_file' ? (stat $file)[1] : undef;

	foreach my $next_gen (2, 3)
	{
		my $what = "$kind, crash " . ($next_gen - 1);

		# bytes written by one backend, seen by another (shared kinds)
		$node->safe_psql('postgres',
			q{SELECT ptbm_write(5, '\xcafebabe'::bytea, 10)});
		is($node->safe_psql('postgres', 'SELECT ptbm_read(5, 4, 10)'),
			$shared ? '\xcafebabe' : '\x00000000',
			$shared
			? "$what: written bytes are shared before the crash"
			: "$what: written bytes stay in the writer (private)");
		if ($kind eq 'shared_file')
		{
			is(file_bytes($file, 5 * $psz + 10, 4), 'cafebabe',
				"$what: and in the file before the crash");
			cmp_ok((stat $file)[12], '>', 0,
				"$what: the file has blocks before the crash");
		}

		crash_backend($what, $next_gen);

		is(postmaster_pid($node), $pm, "$what: the same postmaster");
		ok(kill(0, $pm), "$what: the postmaster is alive");

		# a new backend, before it touches anything: no PTE in the region
		my ($nbase, $ngen, $present, $pm_present) = split /\|/, $node->safe_psql(
			'postgres', qq{
			SET client_min_messages = warning;
			SELECT r.base, r.generation,
			       (SELECT count(*) FROM ptbm_pte() WHERE present),
			       (SELECT count(*) FROM ptbm_pte($pm) WHERE present)
			FROM ptbm_region() r});
		is($nbase, $base, "$what: base unchanged");
		is($ngen, $next_gen, "$what: generation $next_gen");
		is($present, 0, "$what: a new backend has no PTE in the region");
		is($pm_present, 0, "$what: the postmaster has no PTE in the region");

		is($node->safe_psql('postgres', 'SELECT ptbm_read(5, 4, 10)'),
			'\x00000000', "$what: the written bytes read back as zeros");
		if ($kind eq 'shared_file')
		{
			is(file_bytes($file, 5 * $psz + 10, 4), '00000000',
				"$what: the file holds zeros");
			is(-s $file, $size, "$what: the file keeps its size");
			cmp_ok((stat $file)[12] * 512, '>=', $size,
				"$what: the reset allocated every block of the file again (no write can find the disk full)");
			is((stat $file)[1], $inode, "$what: the same file");
		}

		my @now_vmas = region_maps_vmas($pm, $base, $size);
		is_deeply(\@now_vmas, \@pm_vmas,
			"$what: the postmaster's region VMA is unchanged");
		is(proc_fd_count($pm), $pm_fds,
			"$what: the postmaster has as many open files as before");
	}

	my $log = slurp_file($node->logfile, $log_offset);
	my @resets = ($log =~ /ptbm region reset after a crash \(generation (\d+)\)/g);
	is_deeply(\@resets, [ 2, 3 ],
		"$kind: the log has one reset line per crash, generations 2 and 3");
}

$node->stop;
done_testing();
