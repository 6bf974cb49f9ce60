# NUMA nodes of present pages, read without touching anything (move_pages
# with no target nodes on the inspected process):
#  - ptbm_pte: a node exactly for the present pages (on a machine with one
#    node online, node 0), NULL for the others;
#  - asking changes no process's page table: every process's present
#    counts (region and segment) and the inspected backend's pagemap, before
#    and after all three functions, are the same;
#  - ptbm_numa_nodes: each idle process's rows of an area sum to what
#    ptbm_backends (region) and ptbm_shmem_backends (segment) count present;
#  - ptbm_buffer_ptes: a node exactly for the buffers with a present page;
#  - a member of pg_monitor may ask;
#  - on a kernel without move_pages (a seccomp filter makes it fail with
#    ENOSYS for the server): every node NULL, said once, the sums still hold.
# This machine has one node; several nodes were not available to test.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use File::Basename;
use IPC::Run;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $online = -r '/sys/devices/system/node/online' ? slurp_file('/sys/devices/system/node/online') : '';
chomp $online;
note("NUMA nodes online: '$online'");

# Checks one running node; $numa: whether the kernel gives nodes.
sub check
{
	my ($node, $label, $numa) = @_;
	my $sql = sub {
		return $node->safe_psql('postgres', "SET client_min_messages = warning; $_[0]");
	};
	$sql->('CREATE EXTENSION IF NOT EXISTS ptbm');
	my ($a, $apid) = ptbm_session($node, 'A');
	my ($b, $bpid) = ptbm_session($node, 'B');
	$a->query_safe("SELECT pages FROM ptbm_touch(0, 64, 'write')");
	$a->query_safe('SELECT pages FROM ptbm_touch(200, 16)');
	$b->query_safe('SELECT 1');
	my $ps = $sql->('SELECT page_size FROM ptbm_region()');

	# every process's present counts, and A's pagemap, as they are now
	my $counts = sub {
		return $sql->(q{
			SELECT string_agg(pid || ':' || r.present || ':' || s.present, ',' ORDER BY pid)
			FROM ptbm_backends() r JOIN ptbm_shmem_backends() s USING (pid)
			WHERE pid <> pg_backend_pid()}) . ' / '
		  . $sql->("SELECT string_agg(page::text, ',' ORDER BY page) FROM ptbm_pte($apid) WHERE present");
	};
	my $before = $counts->();

	my $want = $numa ? ($online eq '0' ? '0' : 'a node') : 'NULL';
	my ($np, $nn, $bad, $max) = split /\|/, $sql->("
		SELECT count(*) FILTER (WHERE present), count(numa_node),
		       count(*) FILTER (WHERE present <> (numa_node IS NOT NULL)), coalesce(max(numa_node), -1)
		FROM ptbm_pte($apid)");
	if ($numa)
	{
		is("$nn|$bad", "$np|0", "$label: ptbm_pte: a node for each of A's $np present pages, none for the others");
		is($max, '0', "$label: one node online: every present page on node 0") if $online eq '0';
	}
	else
	{
		is($nn, '0', "$label: ptbm_pte: numa_node NULL for every page ($np present)");
	}

	# per node, summed: what the summaries count present
	my $mismatch = $sql->("
		SELECT count(*) FROM ptbm_backends() b
		LEFT JOIN (SELECT pid, sum(bytes) AS bytes FROM ptbm_numa_nodes() WHERE area = 'region' GROUP BY pid) r
		       USING (pid)
		WHERE pid IN ($apid, $bpid) AND coalesce(r.bytes, 0) <> b.present * $ps");
	is($mismatch, '0', "$label: ptbm_numa_nodes: A's and B's region rows sum to ptbm_backends' present");
	my $base = page_size();
	is($sql->("
		SELECT count(*) FROM ptbm_shmem_backends() x
		LEFT JOIN (SELECT pid, sum(bytes) AS bytes FROM ptbm_numa_nodes() WHERE area = 'segment' GROUP BY pid) s
		       USING (pid)
		WHERE pid IN ($apid, $bpid) AND coalesce(s.bytes, 0) <> x.present * $base"), '0',
		"$label: and their segment rows to ptbm_shmem_backends' present");
	is($sql->('SELECT count(*) FILTER (WHERE node IS NOT NULL) > 0, count(*) FILTER (WHERE node IS NULL) = 0
	           FROM ptbm_numa_nodes()'),
		$numa ? 't|t' : 'f|f', "$label: ptbm_numa_nodes: " . ($numa ? 'every page has a node' : 'every node NULL'));

	my ($bufs, $with) = split /\|/, $sql->("
		SELECT count(*) FILTER (WHERE present > 0), count(*) FILTER (WHERE (present > 0) = (numa_node IS NOT NULL))
		FROM ptbm_buffer_ptes($apid)");
	my $all = $sql->('SELECT count(*) FROM ptbm_buffer_ptes()');
	is($with, $numa ? $all : $all - $bufs,
		"$label: ptbm_buffer_ptes: " . ($numa ? "a node exactly for the $bufs buffers A maps" : 'numa_node NULL throughout'));
	is($sql->('SELECT count(*) FILTER (WHERE (processes > 0) <> (numa_node IS NOT NULL)) FROM ptbm_buffer_ptes()'),
		$numa ? '0' : $sql->('SELECT count(*) FILTER (WHERE processes > 0) FROM ptbm_buffer_ptes()'),
		"$label: ptbm_buffer_ptes(NULL): the same over every process");

	is($counts->(), $before, "$label: asking changed no process's present counts, nor A's pagemap");
	$_->quit for ($a, $b);
}

# ---- this kernel ---------------------------------------------------------------
my $node = ptbm_node('numa', 'ptbm.region_size' => '64MB');
$node->start;
my $has = -d '/sys/devices/system/node/node0';
check($node, 'this kernel', $has);

$node->safe_psql('postgres', 'CREATE ROLE mon LOGIN IN ROLE pg_monitor');
my ($rc, $out, $err) = $node->psql('postgres', q{
	SET client_min_messages = warning;
	SELECT count(numa_node) >= 0 FROM ptbm_pte(pg_backend_pid());
	SELECT count(*) >= 0 FROM ptbm_numa_nodes();
	SELECT count(numa_node) >= 0 FROM ptbm_buffer_ptes()}, extra_params => [ '-U', 'mon' ]);
is("$rc|$out", "0|t\nt\nt", 'a member of pg_monitor may ask') or note($err);
$node->stop;

# ---- a kernel without move_pages ---------------------------------------------------
my $src = dirname(__FILE__) . '/../test/without_syscall.c';
my $launcher = "${PostgreSQL::Test::Utils::tmp_check}/without_syscall";
system('cc', '-O', '-o', $launcher, $src) == 0 or BAIL_OUT("could not build $src");
my $nonuma = ptbm_node('nonuma', 'ptbm.region_size' => '64MB');
my ($o, $e);
IPC::Run::run(
	[ $launcher, 'move_pages', 'pg_ctl', '-w', '-D', $nonuma->data_dir, '-l', $nonuma->logfile,
		'-o', '--cluster-name=nonuma', 'start' ],
	'>', \$o, '2>', \$e)
  or BAIL_OUT("pg_ctl start under the filter: $o$e");
$nonuma->_update_pid(1);
check($nonuma, 'no move_pages', 0);
my (undef, undef, $notices) = $nonuma->psql('postgres', q{
	CREATE EXTENSION IF NOT EXISTS ptbm;
	SELECT count(numa_node) FROM ptbm_pte(pg_backend_pid(), 0, 8);
	SELECT count(*) FROM ptbm_numa_nodes();
	SELECT count(numa_node) FROM ptbm_buffer_ptes()});
my @said = ($notices =~ /NOTICE:  this kernel reports no NUMA nodes/g);
is(scalar(@said), 1, 'no move_pages: said once per backend');
like($notices, qr/DETAIL:  It has no move_pages \(a kernel without NUMA\); numa_node is NULL/, 'saying why');
$nonuma->stop;

done_testing();
