# Claim 8: shared_memfd and shared_file regions are objects any process can
# map: a process outside the cluster (this test's helper, not a child of
# the postmaster) that maps the same object sees the backends' bytes, and
# the backends see its bytes.  A shared_anon region is reachable only
# through fork: the postmaster holds no descriptor of its shmem file, and
# /proc/PID/map_files is closed to an unprivileged process.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);

# the outside process: a small C program built here
my $src = dirname(__FILE__) . '/../test/map_object.c';
my $mapper = "${PostgreSQL::Test::Utils::tmp_check}/map_object";
my ($cc_out, $cc_err) = run_command([ 'cc', '-O', '-o', $mapper, $src ]);
ok(-x $mapper, 'outside-process helper built') or diag($cc_err);

sub start_node
{
	my ($kind) = @_;
	my $node = PostgreSQL::Test::Cluster->new("claim08_$kind");
	$node->init;
	$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'ptbm'
ptbm.region_size = '8MB'
ptbm.region_kind = '$kind'
max_connections = 10
));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	return $node;
}

sub postmaster_pid
{
	my ($node) = @_;
	open my $fh, '<', $node->data_dir . '/postmaster.pid' or die $!;
	my $pid = <$fh>;
	chomp $pid;
	return $pid;
}

# The descriptors of the postmaster that point at the region's object.
sub region_fds
{
	my ($node, $backing) = @_;
	my $pm = postmaster_pid($node);
	my @fds;
	opendir my $dh, "/proc/$pm/fd" or die "opendir /proc/$pm/fd: $!";
	for my $fd (grep { /^\d+$/ } readdir $dh)
	{
		my $target = readlink "/proc/$pm/fd/$fd";
		push @fds, "/proc/$pm/fd/$fd" if defined $target && $target eq $backing;
	}
	closedir $dh;
	return @fds;
}

for my $kind (qw(shared_memfd shared_file))
{
	my $node = start_node($kind);
	my ($backing, $ps) = split /\|/, $node->safe_psql('postgres',
		'SELECT backing, page_size FROM ptbm_region()');
	my $path;
	if ($kind eq 'shared_memfd')
	{
		like($backing, qr{^/memfd:ptbm_region}, "$kind: backed by a memfd");
		my @fds = region_fds($node, $backing);
		is(scalar @fds, 1, "$kind: the postmaster holds one descriptor of it");
		$path = $fds[0];
	}
	else
	{
		is($backing, $node->data_dir . '/pg_dynshmem/ptbm_region',
			"$kind: backed by the file in the data directory");
		$path = $backing;
	}

	# a backend writes; the outside process maps the object and reads
	$node->safe_psql('postgres', "SELECT ptbm_write(3, 'from a backend', 100)");
	my ($out) = run_command([ $mapper, $path, 3 * $ps + 100, 14 ]);
	chomp $out;
	is($out, 'from a backend', "$kind: an outside process sees a backend's bytes");

	# the outside process writes; a new backend reads it through its own fault
	run_command([ $mapper, $path, 5 * $ps, 13, 'from outside!' ]);
	is( $node->safe_psql('postgres',
			"SELECT convert_from(ptbm_read(5, 13), 'UTF8')"),
		'from outside!',
		"$kind: a backend sees the outside process's bytes");
	$node->stop;
}

# shared_anon: no way in but fork
{
	my $node = start_node('shared_anon');
	my ($backing, $base, $pages, $ps) = split /\|/, $node->safe_psql('postgres',
		'SELECT backing, substr(base, 3), pages, page_size FROM ptbm_region()');
	is($backing, '/dev/zero (deleted)', 'shared_anon: backed by a shmem file');
	is(scalar region_fds($node, $backing), 0,
		'shared_anon: the postmaster holds no descriptor of the shmem file');
	my $pm = postmaster_pid($node);
	my $end = sprintf('%x', hex($base) + $pages * $ps);
	my $mf = "/proc/$pm/map_files/$base-$end";
	if ($> == 0)
	{
		pass('shared_anon: map_files check needs an unprivileged test user');
	}
	else
	{
		my $ok = open(my $fh, '<', $mf);
		ok(!$ok, "shared_anon: map_files entry cannot be opened ($!)");
	}
	$node->stop;
}

done_testing();
