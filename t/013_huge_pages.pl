# Huge pages for the region, and page tables that really are shared.
#
# hugetlb: a MAP_SHARED hugetlb region covering whole, 1 GB aligned ranges
# shares its page-table pages between processes (hugetlb PMD sharing).  Once
# a backend has faulted anywhere in such a range, every page another backend
# faults in that range is present for it too, without a fault of its own.
# With 4 kB pages the same sequence leaves the page absent.  thp: one write
# maps a whole 2 MB page (512 base pages), as smaps ShmemPmdMapped agrees.
#
# The huge page pool and the shmem THP knob are root's; scripts/test.sh
# prepares them (scripts/hugepages.sh) and restores them.  Without them the
# respective parts skip.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

sub meminfo
{
	my ($key) = @_;
	open my $fh, '<', '/proc/meminfo' or die $!;
	while (<$fh>) { return $1 if /^\Q$key\E:\s+(\d+)/; }
	return 0;
}

sub pte
{
	my ($node, $pid, $page) = @_;
	return $node->safe_psql('postgres',
		"SET client_min_messages = warning; SELECT present::text || ',' || coalesce(via::text, '-') FROM ptbm_pte($pid, $page, 1)");
}

# The page-table sequence of the issue: B reads the last page of the first
# GB, then A touches page 0; does B now have page 0 without touching it?
sub pt_sequence
{
	my ($node, $last) = @_;
	my ($b, $bpid) = ptbm_session($node, 'B');
	my ($a, $apid) = ptbm_session($node, 'A');
	my ($c, $cpid) = ptbm_session($node, 'C');
	$b->query_safe("SELECT pages FROM ptbm_touch($last)");
	my $b_before = pte($node, $bpid, 0);
	$a->query_safe('SELECT pages FROM ptbm_touch(0)');
	my %r = (
		b_before => $b_before,
		b_after => pte($node, $bpid, 0),
		c_present => $node->safe_psql('postgres',
			"SET client_min_messages = warning; SELECT count(*) FROM ptbm_pte($cpid) WHERE present"));
	$_->quit for ($a, $b, $c);
	return \%r;
}

# ---- hugetlb: shared page tables ------------------------------------------
my $hp_kb = meminfo('Hugepagesize');
my $free = meminfo('HugePages_Free') - meminfo('HugePages_Rsvd');
my $need = int(1024 * 1024 / $hp_kb);    # a 1 GB region
SKIP:
{
	skip "needs $need free huge pages ($free free and unreserved); run as root through scripts/test.sh", 14
	  if $free < $need + 8;

	my $node = ptbm_node('hugetlb', 'ptbm.huge_pages' => 'hugetlb',
		'ptbm.region_size' => '1GB');
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	my ($ps, $pages, $kps, $sharing, $base) = split /\|/, $node->safe_psql('postgres',
		'SELECT page_size, pages, kernel_page_size, page_table_sharing, base FROM ptbm_region()');
	is($ps, $hp_kb * 1024, 'hugetlb: the region page is the huge page');
	is($kps, $ps, 'hugetlb: smaps KernelPageSize agrees');
	is($sharing, 't', 'hugetlb: 1 GB aligned and shared: page tables can be shared');
	is(hex($base) % (1 << 30), 0, 'hugetlb: the region is 1 GB aligned');

	my $r = pt_sequence($node, $pages - 1);
	is($r->{b_before}, 'false,-', 'hugetlb: B has no PTE for page 0 before A touches it');
	is($r->{b_after}, 'true,shared page table',
		'hugetlb: after A touches page 0, B has it too, without touching it');
	is($r->{c_present}, 0, 'hugetlb: a backend that never touched the range has nothing there');

	# page-table bytes of 10 backends that all read the whole region
	my @vmpte;
	my @s;
	for my $i (1 .. 10)
	{
		my ($s, $pid) = ptbm_session($node, "r$i");
		$s->query_safe("SELECT pages FROM ptbm_touch(0, NULL)");
		push @s, $s;
		push @vmpte, proc_status_kb($pid, 'VmPTE');
	}
	my ($min, $max) = (sort { $a <=> $b } @vmpte)[ 0, -1 ];
	note("hugetlb: VmPTE of 10 backends that read all 1 GB: @vmpte kB");
	cmp_ok($max - $min, '<=', 64, 'hugetlb: their page-table sizes are within a few kB of each other');
	my $present = $node->safe_psql('postgres',
		"SELECT min(present) FROM ptbm_backends() WHERE application_name LIKE 'r%'");
	is($present, $pages, 'hugetlb: each has the whole region present');
	$_->quit for @s;
	$node->stop;

	# the same page-table cost with 4 kB pages, for comparison
	my $node4 = ptbm_node('base4k', 'ptbm.region_size' => '1GB');
	$node4->start;
	$node4->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	my ($pages4) = $node4->safe_psql('postgres', 'SELECT pages FROM ptbm_region()');
	my $r4 = pt_sequence($node4, $pages4 - 1);
	is($r4->{b_after}, 'false,-', '4 kB pages: page 0 stays absent in B (no page-table sharing)');
	my @vmpte4;
	for my $i (1 .. 10)
	{
		my ($s, $pid) = ptbm_session($node4, "r$i");
		$s->query_safe("SELECT pages FROM ptbm_touch(0, NULL)");
		push @s, $s;
		push @vmpte4, proc_status_kb($pid, 'VmPTE');
	}
	note("4 kB pages: VmPTE of 10 backends that read all 1 GB: @vmpte4 kB");
	my $sum = 0;
	$sum += $_ for @vmpte;
	my $sum4 = 0;
	$sum4 += $_ for @vmpte4;
	cmp_ok($sum4 - $sum, '>=', 10 * 1024,
		"4 kB pages cost at least 1 MB more page table per backend ($sum4 vs $sum kB for 10)");
	$_->quit for @s;
	$node4->stop;

	# a pool too small (more pages than the whole pool): a clear FATAL, nothing half-started
	my $big = ptbm_node('toobig', 'ptbm.huge_pages' => 'hugetlb',
		'ptbm.region_size' => (meminfo('HugePages_Total') + 64) * $hp_kb . 'kB');
	ok(!$big->start(fail_ok => 1), 'hugetlb: a region larger than the free pool does not start');
	my $log = slurp_file($big->logfile);
	like($log, qr/FATAL:.*could not map the ptbm region of \d+ bytes in huge pages/,
		'hugetlb: FATAL says the region could not be mapped in huge pages');
	like($log, qr/HINT:.*vm\.nr_hugepages/, 'hugetlb: the hint names vm.nr_hugepages');
	ok(!-e $big->data_dir . '/postmaster.pid', 'hugetlb: nothing half-started (no postmaster.pid)');
}

# ---- thp: one fault maps 2 MB ---------------------------------------------------
my $knob = '/sys/kernel/mm/transparent_hugepage/shmem_enabled';
my $mode = -r $knob ? slurp_file($knob) : '';
SKIP:
{
	skip "shmem THP is off ($mode); run as root through scripts/test.sh", 6
	  unless $mode =~ /\[(advise|always|within_size)\]/;
	my $node = ptbm_node('thp', 'ptbm.huge_pages' => 'thp', 'ptbm.region_size' => '64MB');
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
	my ($s, $pid) = ptbm_session($node, 'w');
	my ($base, $size, $per) = split /\|/, $node->safe_psql('postgres',
		'SELECT base, size, (2 * 1024 * 1024) / page_size FROM ptbm_region()');
	$s->query_safe("SELECT ptbm_write(3, 'one write')");
	my ($present, $huge) = split /\|/, $node->safe_psql('postgres',
		"SET client_min_messages = warning; SELECT count(*) FILTER (WHERE present), count(*) FILTER (WHERE huge) FROM ptbm_pte($pid, 0, $per)");
	is($present, $per, "thp: one write made the whole 2 MB ($per pages) present");
	is($huge, $per, 'thp: every one of them is huge-mapped');
	my $sm = region_smaps($pid, $base, $size);
	is($sm->{ShmemPmdMapped}, 2048, 'thp: smaps ShmemPmdMapped agrees: 2048 kB');
	my $via = $node->safe_psql('postgres',
		"SET client_min_messages = warning; SELECT via FROM ptbm_pte($pid, 5, 1)");
	is($via, 'huge mapping', 'thp: an untouched neighbour came with the huge mapping');
	# a second backend's read of one page maps the whole huge page as well
	my ($r, $rpid) = ptbm_session($node, 'r');
	my $faults = $r->query_safe("SELECT minor_faults FROM ptbm_touch(100)");
	my $rp = $node->safe_psql('postgres',
		"SET client_min_messages = warning; SELECT count(*) FILTER (WHERE present) FROM ptbm_pte($rpid, 0, $per)");
	is($rp, $per, 'thp: a second backend reading one page maps the whole 2 MB too');
	cmp_ok($faults, '<', $per, 'thp: with fewer faults than pages');
	$_->quit for ($s, $r);
	$node->stop;
}

done_testing();
