# A read fault on a shared region allocates a page in its backing object
# (shmem file or page cache), which stays after the backend exits, and a
# write to a private region allocates a private copy: touching more than the
# memory limit in force leaves would end in the OOM killer and a
# crash-restart.  ptbm refuses such a call before it starts, with a clear
# error, and counts only what the call would really allocate (pages already
# in the backing object cost nothing).
#
# The server runs in a memory cgroup of its own with a 400 MB limit, which
# scripts/test.sh prepares as root (PTBM_TEST_MEMCG); without it, skipped.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $cg = $ENV{PTBM_TEST_MEMCG};
plan skip_all => 'no memory cgroup for the test (scripts/test.sh prepares one as root)'
  unless $cg && -w "$cg/cgroup.procs";

# this process, and so the server it starts, into the cgroup
open my $fh, '>', "$cg/cgroup.procs" or die "could not join $cg: $!";
print $fh "$$\n";
close $fh;

my $mb = 1024 * 1024;
foreach my $kind (qw(shared_anon private_anon))
{
	my $node = ptbm_node("memcg_$kind", 'ptbm.region_size' => '1GB', 'ptbm.region_kind' => $kind);
	$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	my $pages_per_mb = $mb / $node->safe_psql('postgres', 'SELECT page_size FROM ptbm_region()');
	my $mode = $kind eq 'shared_anon' ? 'read' : 'write';

	# one session: a private region's own copies are the backend's
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $touch = sub {
		my ($mbytes) = @_;
		$s->{stderr} = '';
		my ($out, $ret) = $s->query(sprintf(q{SELECT pages FROM ptbm_touch(0, %d, '%s')},
				$mbytes * $pages_per_mb, $mode));
		return ($out, $s->{stderr});
	};

	my ($out, $err) = $touch->(512);
	is($out, '', "$kind: a $mode of 512 MB under a 400 MB limit is refused");
	like($err, qr/ERROR:  ptbm_touch would allocate 512 MB, more than the \d+ MB that memory cgroup \S+ leaves/,
		"$kind: the error says what it would allocate and what limits it") or note($err);
	like($err, qr/DETAIL:  A (read or a write|write) /, "$kind: and why a $mode allocates");

	# what fits is done, and what exists already costs nothing
	($out, $err) = $touch->(100);
	is($out, 100 * $pages_per_mb, "$kind: 100 MB fit") or note($err);
	($out, $err) = $touch->(200);
	is($out, 200 * $pages_per_mb, "$kind: 200 MB, 100 MB of them new, fit")
	  or note($err);
	($out, $err) = $touch->(900);
	like($err, qr/would allocate 700 MB/, "$kind: 900 MB of which 200 MB exist: 700 MB would be allocated");
	$s->quit;

	is($node->safe_psql('postgres', 'SELECT generation FROM ptbm_region()'), '1',
		"$kind: no crash-restart cycle");
	unlike(slurp_file($node->logfile), qr/terminated by signal 9/, "$kind: no process was killed");
	$node->stop;
}

done_testing();
