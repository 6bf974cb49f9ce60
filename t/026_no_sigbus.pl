# No access ptbm makes may raise SIGBUS, whatever happens to the region's
# backing object behind the server's back:
#   - file kinds: the file is truncated by the server's OS user, or by a
#     member of pg_write_server_files through COPY ... TO; every access is
#     then an ERROR, not a Bus error and a crash-restart, and a
#     crash-restart (or a restart) gives the file its size back;
#   - shared_memfd: the memfd cannot be shrunk at all (sealed);
#   - a file system that fills up: the file's blocks are allocated at start,
#     so a region that does not fit is a FATAL with a hint at start
#     (needs the small tmpfs scripts/test.sh prepares as root; else skipped);
#   - private kinds with hugetlb: copy-on-write huge pages cannot be
#     guaranteed, so the combination is refused at start;
#   - shared hugetlb: a crash-restart reserves the region's huge pages again
#     (MADV_REMOVE gives the reservation back; needs huge pages).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $size = 8 * 1024 * 1024;

sub start_time
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
}

# Every ptbm call that touches the region fails cleanly, and the server is
# the same server afterwards (no crash-restart cycle).
sub accesses_fail_cleanly
{
	my ($node, $what) = @_;
	my $log_offset = -s $node->logfile;
	my $gen = $node->safe_psql('postgres', 'SELECT generation FROM ptbm_region()');
	foreach my $call (q{SELECT pages FROM ptbm_touch(0, 16, 'read')},
		q{SELECT pages FROM ptbm_touch(0, 16, 'write')},
		q{SELECT ptbm_read(100, 8)}, q{SELECT ptbm_write(100, '\x01')})
	{
		my ($rc, $out, $err) = $node->psql('postgres', $call);
		isnt($rc, 0, "$what: $call fails");
		like($err, qr/ERROR:  the ptbm region file was truncated/, "$what: $call: the error says why")
		  or note($err);
	}
	is($node->safe_psql('postgres', 'SELECT generation FROM ptbm_region()'),
		$gen, "$what: no crash-restart cycle");
	unlike(slurp_file($node->logfile, $log_offset), qr/terminated by signal 7|Bus error/,
		"$what: no process died of SIGBUS");
	return;
}

sub backend_crash
{
	my ($node) = @_;
	my ($s, $pid) = ptbm_session($node, 'victim');
	kill 'KILL', $pid;
	eval { $s->quit };
	$node->poll_query_until('postgres', 'SELECT generation > 1 FROM ptbm_region()')
	  or die 'no crash-restart';
	return;
}

foreach my $kind (qw(shared_file private_file))
{
	my $node = ptbm_node("trunc_$kind", 'ptbm.region_size' => '8MB', 'ptbm.region_kind' => $kind);
	$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	my $file = $node->data_dir . '/pg_dynshmem/ptbm_region';
	is(-s $file, $size, "$kind: the file has the region's size");
	$node->safe_psql('postgres', q{SELECT pages FROM ptbm_touch(0, 2048, 'write')});

	# the server's OS user truncates it
	truncate($file, 0) or die "truncate: $!";
	accesses_fail_cleanly($node, "$kind, truncated by the OS user");

	# a crash-restart gives the file its size back, and the region works
	backend_crash($node);
	is(-s $file, $size, "$kind: the crash-restart cycle restored the file's size");
	is($node->safe_psql('postgres', q{SELECT pages FROM ptbm_touch(0, 2048, 'write')}),
		'2048', "$kind: after the cycle every page can be touched");

	# a member of pg_write_server_files truncates it through COPY
	$node->safe_psql('postgres', 'CREATE ROLE copier LOGIN IN ROLE pg_write_server_files');
	$node->safe_psql('postgres', "SET ROLE copier; COPY (SELECT 1 WHERE false) TO '$file'");
	is(-s $file, 0, "$kind: COPY ... TO truncated the file");
	accesses_fail_cleanly($node, "$kind, truncated by COPY TO");

	# and a plain restart makes a new file
	$node->restart;
	is(-s $file, $size, "$kind: a restart recreates the file");
	$node->stop;
}

# ---- truncated during an access: the SIGBUS guard -------------------------
# The check before an access cannot see a truncation that comes while the
# access runs; the fault then raises SIGBUS, which ptbm turns into an ERROR.
{
	my $node = ptbm_node('race', 'ptbm.region_size' => '512MB', 'ptbm.region_kind' => 'shared_file');
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	my $file = $node->data_dir . '/pg_dynshmem/ptbm_region';
	my %seen;
	for (my $try = 0; $try < 10 && !$seen{guard}; $try++)
	{
		my ($out, $err) = ('', '');
		my $h = IPC::Run::start(
			[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
				q{SELECT pages FROM ptbm_touch(0, NULL, 'write')} ],
			'>', \$out, '2>', \$err);
		usleep(20_000 + 10_000 * $try);
		truncate($file, 0) or die "truncate: $!";
		$h->finish;
		$seen{guard}++ if $err =~ /ERROR:  page \d+ of the ptbm region is gone from its backing object/;
		$seen{check}++ if $err =~ /ERROR:  the ptbm region file was truncated/;
		$seen{other}++ if $err !~ /ERROR:  (page \d+ of the ptbm region is gone|the ptbm region file was truncated)/;
		note("try $try: $err");
		# give the file its size back for the next try (as a restart would)
		$node->restart;
	}
	ok($seen{guard}, 'a truncation during ptbm_touch is an ERROR from the SIGBUS guard');
	ok(!$seen{other}, 'every try ended in one of the two errors');
	unlike(slurp_file($node->logfile), qr/terminated by signal 7|Bus error/,
		'no process died of SIGBUS');
	$node->stop;
}

# ---- shared_memfd: sealed against shrinking --------------------------------
{
	my $node = ptbm_node('memfd', 'ptbm.region_size' => '8MB', 'ptbm.region_kind' => 'shared_memfd');
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	$node->safe_psql('postgres', q{SELECT pages FROM ptbm_touch(0, 2048, 'write')});
	my $pm = postmaster_pid($node);
	my ($link) = grep { (readlink($_) // '') =~ m{^/memfd:ptbm_region} } glob("/proc/$pm/fd/*");
	ok(defined $link, 'shared_memfd: the postmaster holds the memfd');
	my $shrunk = truncate($link, 0);
	my $why = $!;
	ok(!$shrunk, 'shared_memfd: the memfd cannot be truncated through /proc/PID/fd');
	note("truncate: $why");
	is($node->safe_psql('postgres', q{SELECT pages FROM ptbm_touch(0, 2048, 'read')}),
		'2048', 'shared_memfd: every page is still there');
	$node->stop;
}

# ---- private kinds with hugetlb: refused at start ---------------------------
{
	my $node = ptbm_node('privhuge', 'ptbm.region_size' => '8MB',
		'ptbm.region_kind' => 'private_anon', 'ptbm.huge_pages' => 'hugetlb');
	my $offset = -s $node->logfile // 0;
	ok(!$node->start(fail_ok => 1), 'private_anon with hugetlb: the server does not start');
	my $log = slurp_file($node->logfile, $offset);
	like($log, qr/FATAL:  ptbm.huge_pages = hugetlb does not work with ptbm.region_kind = private_anon/,
		'private_anon with hugetlb: FATAL');
	like($log, qr/HINT:  .*shared_anon/, 'private_anon with hugetlb: a hint names the shared kinds');
}

# ---- a file system that fills up: refused at start --------------------------
SKIP:
{
	my $fs = $ENV{PTBM_TEST_SMALL_FS};
	skip 'no small file system (scripts/test.sh mounts one as root)', 6
	  unless $fs && -d $fs && -w $fs;
	my $node = ptbm_node('smallfs', 'ptbm.region_size' => '8MB', 'ptbm.region_kind' => 'shared_file');
	# the data directory moves onto the small file system
	my $pgdata = $node->data_dir;
	my $moved = "$fs/pgdata";
	system('rm', '-rf', $moved) == 0 or die;
	system('cp', '-a', $pgdata, $moved) == 0 or die 'could not copy the data directory';
	system('rm', '-rf', $pgdata) == 0 or die;
	symlink($moved, $pgdata) or die "symlink: $!";
	my $free = `df -k --output=avail $fs | tail -1` * 1024;
	note("free on $fs: $free bytes");
	my $big = int($free / 1024 / 1024) + 64;
	ptbm_settings($node, 'ptbm.region_size' => "${big}MB", 'ptbm.region_kind' => 'shared_file');
	my $offset = -s $node->logfile // 0;
	ok(!$node->start(fail_ok => 1), "a ${big}MB shared_file region on a file system with less free: no start");
	my $log = slurp_file($node->logfile, $offset);
	like($log, qr/FATAL:  could not allocate the ptbm region file/, 'the FATAL says what failed');
	like($log, qr/HINT:  /, 'with a hint');
	ok(!-e "$moved/pg_dynshmem/ptbm_region" || -s "$moved/pg_dynshmem/ptbm_region" == 0,
		'nothing of the failed start holds the space');
	ptbm_settings($node, 'ptbm.region_size' => '8MB', 'ptbm.region_kind' => 'shared_file');
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	is($node->safe_psql('postgres', q{SELECT pages FROM ptbm_touch(0, 2048, 'write')}),
		'2048', 'a region that fits starts, and every page can be written');
	$node->stop;
	ok(1, 'stopped');
	system('rm', '-rf', $moved);
}

# ---- shared hugetlb: the reservation survives a crash-restart ---------------
SKIP:
{
	my %mi = map { /^(\w+):\s+(\d+)/ ? ($1 => $2) : () } split /\n/, slurp_file('/proc/meminfo');
	my $hp = $mi{Hugepagesize} * 1024;
	my $n = 4;
	skip 'fewer than 4 free huge pages', 3 if $mi{HugePages_Free} - $mi{HugePages_Rsvd} < $n;
	my $node = ptbm_node('hugereset', 'ptbm.region_size' => ($n * $hp / 1024) . 'kB',
		'ptbm.huge_pages' => 'hugetlb');
	$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	my $rsvd = sub {
		my %m = map { /^(\w+):\s+(\d+)/ ? ($1 => $2) : () } split /\n/, slurp_file('/proc/meminfo');
		return $m{HugePages_Rsvd};
	};
	my $r0 = $rsvd->();
	$node->safe_psql('postgres', "SELECT pages FROM ptbm_touch(0, $n, 'write')");
	is($rsvd->(), $r0 - $n, 'hugetlb: writing every page uses up its reservation');
	backend_crash($node);
	is($rsvd->(), $r0, 'hugetlb: after the crash-restart the region is reserved again');
	is($node->safe_psql('postgres', "SELECT pages FROM ptbm_touch(0, $n, 'write')"),
		$n, 'hugetlb: every page can be written after the cycle');
	$node->stop;
}

done_testing();
