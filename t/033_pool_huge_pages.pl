# The pool on huge pages: the unit is the huge page, loaded and freed whole.
#
# hugetlb (a 1 GB aligned region, so page tables are shared):
#  - every block read through the pool equals get_raw_page, from two
#    backends, under a budget of a few huge pages, with either eviction
#    method;
#  - the huge pages in use (HugePages_Free) are exactly the resident units,
#    and eviction gives every one back;
#  - a block one backend loads is in the other backend's page table without
#    a fault of its own: the page table itself is shared (once each has
#    faulted after an eviction, which may unshare it);
#  - HugePages_Free is the whole machine's: these parts assume nothing else
#    allocates huge pages meanwhile (scripts/test.sh runs one test at a time);
# thp (shmem with MADV_HUGEPAGE):
#  - every block equals get_raw_page under a small budget;
#  - eviction gives the memory back (ShmemHugePages, the backing object);
#  - where the kernel found a huge page, a loaded block is huge-mapped;
#  - loads that fail in a unit of many blocks, from two backends at once,
#    give its budget and its memory back.
#
# The huge page pool and the shmem THP knob are root's: scripts/test.sh
# prepares them; without them the parts skip.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

sub meminfo
{
	my ($key) = @_;
	open my $fh, '<', '/proc/meminfo' or die $!;
	while (<$fh>) { return $1 if /^\Q$key\E:\s+(\d+)/; }
	return 0;
}

# a node with the pool, a table of about 24 MB and its index, attached
sub pool_node
{
	my ($name, %settings) = @_;
	my $node = ptbm_node($name, 'ptbm.pool_size' => '8MB', %settings);
	# PostgreSQL's own shared memory off huge pages: the counts are the pool's
	$node->append_conf('postgresql.conf', "huge_pages = off\n");
	$node->start;
	$node->safe_psql('postgres', q{
		CREATE EXTENSION ptbm;
		CREATE EXTENSION pageinspect;
		CREATE TABLE t (id int, pad text) WITH (fillfactor = 10, autovacuum_enabled = off);
		INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 12000) g;
		CREATE INDEX t_id ON t (id);
		CHECKPOINT;
		SELECT count(*) FROM ptbm_pool_attach('t') a, ptbm_pool_attach('t_id') b});
	return $node;
}

# every block of t and t_id read through the pool by each session equals
# get_raw_page; returns the number of blocks compared
sub read_all
{
	my ($node, @s) = @_;
	my $n = 0;
	foreach my $s (@s)
	{
		foreach my $rel ('t', 't_id')
		{
			my ($same, $all) = split /\|/, $s->query_safe(qq{
				SELECT count(*) FILTER (WHERE ptbm_pool_read('$rel', b) = get_raw_page('$rel', b::int)), count(*)
				FROM generate_series(0, pg_relation_size('$rel') / 8192 - 1) b});
			return -1 if $same != $all;
			$n += $all;
		}
	}
	return $n;
}

# ---- hugetlb ---------------------------------------------------------------------
my $hp_kb = meminfo('Hugepagesize');
my $free = meminfo('HugePages_Free') - meminfo('HugePages_Rsvd');
my $need = $hp_kb ? int(1024 * 1024 / $hp_kb) : 1 << 30;    # a 1 GB region
SKIP:
{
	skip "needs $need free huge pages ($free free and unreserved); run as root through scripts/test.sh", 13
	  if $free < $need + 8;
	my $node = pool_node('pool_hugetlb', 'ptbm.huge_pages' => 'hugetlb', 'ptbm.region_size' => '1GB');
	sub hsql { return $_[0]->safe_psql('postgres', "SET client_min_messages = warning; $_[1]"); }
	my ($unit, $budget, $tblocks) = split /\|/, hsql($node,
		q{SELECT unit_size, budget / unit_size, pg_relation_size('t') / 8192 FROM ptbm_pool_stats()});
	is($unit, $hp_kb * 1024, 'hugetlb: the unit is the huge page');
	cmp_ok($tblocks * 8192, '>', 2 * $budget * $unit, "hugetlb: the table is larger than the budget ($budget units)");

	my $free0 = meminfo('HugePages_Free');
	my @s = map { $node->background_psql('postgres', on_error_stop => 1) } (1, 2);
	my @pid = map { $_->query_safe('SELECT pg_backend_pid()') } @s;
	cmp_ok(read_all($node, @s), '>', 0, 'hugetlb, remove: every block equals get_raw_page, from two backends');
	my ($resident, $evicted) = split /\|/, hsql($node, 'SELECT resident_units, evicted_blocks FROM ptbm_pool_stats()');
	cmp_ok($resident, '<=', $budget, "hugetlb: within the budget ($resident of $budget units)");
	cmp_ok($evicted, '>', 0, 'hugetlb: with evictions on the way');
	is($free0 - meminfo('HugePages_Free'), $resident, 'hugetlb: the huge pages in use are the resident units');
	hsql($node, 'SELECT ptbm_pool_evict()');
	is(meminfo('HugePages_Free'), $free0, 'hugetlb: after ptbm_pool_evict every huge page is back');

	# Shared page tables.  Freeing a huge page unshares the page table of
	# every process that mapped the range (the kernel clears their entries
	# above it), so after the eviction each backend faults once on its own:
	# the first builds a page table, the second's fault finds it and shares
	# it.  From then on a block the first loads is present for the second.
	my ($first) = hsql($node, q{SELECT first_block FROM ptbm_pool_attach('t')});
	my $page = int(($first * 8192 + $unit - 1) / $unit);    # t's first whole unit
	my $blk = $page * $unit / 8192 - $first;
	my $per = $unit / 8192;
	$s[0]->query_safe("SELECT length(ptbm_pool_read('t', $blk + $per))");
	$s[1]->query_safe("SELECT length(ptbm_pool_read('t', $blk + 2 * $per))");
	$s[0]->query_safe("SELECT length(ptbm_pool_read('t', $blk))");
	is(hsql($node, "SELECT present::text || ',' || coalesce(via::text, '-') FROM ptbm_pte($pid[1], $page, 1)"),
		'true,shared page table', 'hugetlb: a block one backend loaded is in the other\'s page table, without a fault');
	is(hsql($node, "SELECT processes FROM ptbm_pool_blocks('t') WHERE blkno = $blk"), '2',
		'hugetlb: ptbm_pool_blocks counts both processes');
	# Freeing one huge page of another relation: this kernel unshares the
	# whole 1 GB page table of all but one of the processes that shared it
	# (they lose every block of the range from their page tables, though
	# the blocks stay resident); one fault each shares it again.
	$s[1]->query_safe('SELECT length(ptbm_pool_read(\'t_id\', 1))');
	hsql($node, "SELECT ptbm_pool_evict('t_id')");
	note('after evicting a unit of t_id, the second backend '
		  . (hsql($node, "SELECT present FROM ptbm_pte($pid[1], $page, 1)") eq 't' ? 'still maps' : 'lost')
		  . " t's block $blk");
	$s[1]->query_safe("SELECT length(ptbm_pool_read('t', $blk + 2 * $per))");
	is(hsql($node, "SELECT present FROM ptbm_pte($pid[1], $page, 1)"), 't',
		'hugetlb: after a read of its own, the second backend maps the block the first loaded again');
	hsql($node, "SELECT ptbm_pool_evict('t')");
	is(hsql($node, "SELECT present FROM ptbm_pte($pid[1], $page, 1)") . '|'
		  . hsql($node, "SELECT present FROM ptbm_pte($pid[0], $page, 1)"),
		'f|f', 'hugetlb: eviction takes it out of the shared page table');

	hsql($node, q{ALTER SYSTEM SET ptbm.pool_eviction = 'cooperative'; SELECT pg_reload_conf()});
	$_->query_safe('SELECT pg_sleep(0.2)') for @s;
	cmp_ok(read_all($node, @s), '>', 0, 'hugetlb, cooperative: every block equals get_raw_page, from two backends');
	hsql($node, 'SELECT ptbm_pool_evict()');
	is(meminfo('HugePages_Free'), $free0, 'hugetlb, cooperative: after ptbm_pool_evict every huge page is back');
	$_->quit for @s;
	$node->stop;
}

# ---- thp ---------------------------------------------------------------------------
my $knob = '/sys/kernel/mm/transparent_hugepage/shmem_enabled';
my $mode = -r $knob ? slurp_file($knob) : '';
SKIP:
{
	skip "shmem THP is off ($mode); run as root through scripts/test.sh", 8
	  unless $mode =~ /\[(advise|always|within_size)\]/;
	my $node = pool_node('pool_thp', 'ptbm.huge_pages' => 'thp', 'ptbm.region_size' => '256MB');
	sub tsql { return $_[0]->safe_psql('postgres', "SET client_min_messages = warning; $_[1]"); }
	is(tsql($node, 'SELECT unit_size FROM ptbm_pool_stats()'), 2 * 1024 * 1024, 'thp: the unit is 2 MB');
	my ($s, $pid) = ptbm_session($node, 'A');
	my ($s2) = ptbm_session($node, 'B');
	my $huge0 = meminfo('ShmemHugePages');
	cmp_ok(read_all($node, $s, $s2), '>', 0, 'thp: every block equals get_raw_page, from two backends');

	# one resident block, where the kernel found a huge page for it
	tsql($node, 'SELECT ptbm_pool_evict()');
	my ($first) = tsql($node, q{SELECT first_block FROM ptbm_pool_attach('t')});
	$s->query_safe('SELECT length(ptbm_pool_read(\'t\', 0))');
	my $ppb = 8192 / page_size();
	my $got_huge = meminfo('ShmemHugePages') > $huge0;
	note($got_huge ? 'the kernel found a huge page' : 'no huge page this time: the unit is 2 MB of base pages');
	is(tsql($node, "SELECT bool_and(huge) FROM ptbm_pte($pid, " . $first * $ppb . ", $ppb)"),
		$got_huge ? 't' : 'f', 'thp: the block is huge-mapped exactly when a huge page backs it');

	tsql($node, 'SELECT ptbm_pool_evict()');
	is(meminfo('ShmemHugePages'), $huge0, 'thp: after ptbm_pool_evict no huge page of the pool is left');
	is(tsql($node, 'SELECT count(*) FILTER (WHERE in_page_cache OR processes > 0) FROM ptbm_sharing()'), '0',
		'thp: nor any page of it, in the backing object or a page table');
	$_->quit for ($s, $s2);
	$node->stop;

	# Loads that fail (checksums) in a unit of many blocks, from two backends
	# at once: the unit's budget is given back by whichever fails last, and
	# its memory freed, however the two interleave.
	my $bad = ptbm_node('pool_thp_bad', 'ptbm.huge_pages' => 'thp', 'ptbm.region_size' => '64MB',
		'ptbm.pool_size' => '8MB');
	system('pg_checksums', '--enable', '-D', $bad->data_dir) == 0
	  or BAIL_OUT('pg_checksums --enable failed');
	$bad->start;
	$bad->safe_psql('postgres', q{
		CREATE EXTENSION ptbm;
		CREATE TABLE t (id int, pad text) WITH (autovacuum_enabled = off);
		INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 5000) g;
		CHECKPOINT});
	my $file = $bad->data_dir . '/' . $bad->safe_psql('postgres', q{SELECT pg_relation_filepath('t')});
	$bad->stop;
	open my $fh, '+<', $file or die "open $file: $!";
	binmode $fh;
	foreach my $blk (1, 2)
	{
		seek($fh, $blk * 8192 + 4000, 0) or die;
		print $fh 'garbage where rows were';
	}
	close $fh;
	$bad->start;
	$bad->safe_psql('postgres', q{SELECT count(*) FROM ptbm_pool_attach('t')});
	my @h;
	foreach my $blk (1, 2)
	{
		push @h, IPC::Run::start(
			[ 'psql', '-X', '-q', '-d', $bad->connstr('postgres'), '-c', qq{
				SET client_min_messages = error;
				DO \$\$ BEGIN FOR i IN 1..2000 LOOP
					BEGIN PERFORM ptbm_pool_read('t', $blk);
					EXCEPTION WHEN data_corrupted THEN NULL; END;
				END LOOP; END \$\$} ],
			'>', \my $out, '2>', \my $err, IPC::Run::timeout(180));
	}
	# a budget that leaks would leave a load waiting for room forever
	my $finished = eval { $_->finish for @h; 1 };
	ok($finished, 'thp: the failing loads all ended') or $_->kill_kill for @h;
	is($bad->safe_psql('postgres', 'SET client_min_messages = warning;
		SELECT resident_units, resident, misses FROM ptbm_pool_stats()'), '0|0|0',
		'thp: 4000 failed loads of two blocks of one unit, at once: nothing resident, nothing counted as loaded');
	is($bad->safe_psql('postgres', 'SET client_min_messages = warning;
		SELECT count(*) FILTER (WHERE in_page_cache) FROM ptbm_sharing()'), '0',
		'thp: and the unit\'s memory is freed');
	$bad->stop;
}

done_testing();
