# The page-table buffer pool, one property at a time:
#  - every block of a table and of its index read through the pool equals
#    pageinspect's get_raw_page, from two backends, with a budget smaller
#    than the relation (blocks are evicted and loaded again on the way), and
#    the budget is never exceeded;
#  - a block one backend loaded is in a second backend's page table only
#    after the second reads it;
#  - ptbm_pool_evict frees the memory for every process: the blocks leave
#    the backing object and every page table;
#  - a page that fails verification (data checksums) is an ERROR, never
#    served, and leaves the block evicted;
#  - bad input gets a clear error and a proper SQLSTATE, and the pool's
#    privileges are those of the rest of ptbm (reading also needs SELECT);
#  - a crash-restart leaves the pool empty and usable;
#  - start refuses a pool on a private kind, a budget larger than the
#    region, or one the memory limit cannot hold.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ptbm_node('pool', 'ptbm.region_size' => '256MB', 'ptbm.pool_size' => '2MB');
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
# data checksums for the verification test
system('pg_checksums', '--enable', '-D', $node->data_dir) == 0
  or BAIL_OUT('pg_checksums --enable failed');
$node->start;

sub sql { return $node->safe_psql('postgres', @_); }

sql(q{
	CREATE EXTENSION ptbm;
	CREATE EXTENSION pageinspect;
	CREATE TABLE t (id int, pad text) WITH (autovacuum_enabled = off);
	INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 30000) g;
	CREATE INDEX t_id ON t (id);
	CHECKPOINT;});
my $tblocks = sql(q{SELECT pg_relation_size('t') / current_setting('block_size')::int});
my $iblocks = sql(q{SELECT pg_relation_size('t_id') / current_setting('block_size')::int});
my $budget = sql('SELECT budget / 8192 FROM ptbm_pool_stats()');
note("t: $tblocks blocks, t_id: $iblocks blocks, budget $budget blocks");
cmp_ok($tblocks, '>', 2 * $budget, 'the table is larger than the budget');

is(sql(q{SELECT count(*) FROM ptbm_pool_attach('t') a, ptbm_pool_attach('t_id') b}), '1',
	'the table and its index are attached');

# ---- every block equals get_raw_page, from two backends ----------------------
my @s = map { $node->background_psql('postgres', on_error_stop => 1) } (1, 2);
foreach my $i (0, 1)
{
	foreach my $rel ([ 't', $tblocks ], [ 't_id', $iblocks ])
	{
		my ($name, $n) = @$rel;
		is($s[$i]->query_safe(qq{
			SELECT count(*) FILTER (WHERE ptbm_pool_read('$name', b) = get_raw_page('$name', b::int))
			FROM generate_series(0, $n - 1) b}),
			$n, "backend " . ($i + 1) . ": every block of $name equals get_raw_page");
	}
}
my ($resident, $evicted, $misses) = split /\|/,
  sql('SELECT resident_units, evicted_blocks, misses FROM ptbm_pool_stats()');
cmp_ok($resident, '<=', $budget, "resident units ($resident) within the budget ($budget)");
cmp_ok($evicted, '>', 0, "blocks were evicted on the way ($evicted) and loaded again ($misses misses)");

# ---- a second backend maps a block only once it reads it ---------------------
my ($first) = sql(q{SELECT first_block FROM ptbm_pool_attach('t')});
sql(q{SELECT ptbm_pool_evict('t')});
my @pid = map { $_->query_safe('SELECT pg_backend_pid()') } @s;
$s[0]->query_safe(q{SELECT length(ptbm_pool_read('t', 7))});
sub mappers
{
	my ($blk) = @_;
	return sql("SELECT coalesce((SELECT processes FROM ptbm_pool_blocks('t') WHERE blkno = $blk), 0)");
}
my $pages_per_block = 8192 / page_size();
sub mapped_by
{
	my ($pid, $blk) = @_;
	my $p = ($first + $blk) * $pages_per_block;
	return sql("SET client_min_messages = warning; SELECT bool_and(present) FROM ptbm_pte($pid, $p, $pages_per_block)");
}
is(mapped_by($pid[0], 7), 't', 'the loader maps block 7');
is(mapped_by($pid[1], 7), 'f', 'the second backend does not: nothing was copied into its page table');
is(mappers(7), '1', 'ptbm_pool_blocks: one process maps it');
$s[1]->query_safe(q{SELECT length(ptbm_pool_read('t', 7))});
is(mapped_by($pid[1], 7), 't', 'after its own read, the second backend maps it (a minor fault on the shmem file)');
is(mappers(7), '2', 'ptbm_pool_blocks: two processes map it');
my $pfns = sql("SET client_min_messages = warning;
	SELECT count(DISTINCT pfn), count(pfn) FROM ptbm_pte($pid[0], " . ($first + 7) * $pages_per_block . ", 1)
	UNION ALL SELECT count(DISTINCT pfn), count(pfn) FROM ptbm_pte($pid[1], " . ($first + 7) * $pages_per_block . ", 1)");
SKIP:
{
	skip 'frame numbers hidden from the server (t/031 checks frames as root)', 1 if $pfns =~ /\|0/;
	is(sql("SET client_min_messages = warning;
		SELECT count(DISTINCT pfn) FROM (SELECT pfn FROM ptbm_pte($pid[0], " . ($first + 7) * $pages_per_block . ", 1)
		UNION ALL SELECT pfn FROM ptbm_pte($pid[1], " . ($first + 7) * $pages_per_block . ", 1)) f"),
		'1', 'both map the same frame');
}

# ---- eviction frees the memory for every process -------------------------------
$s[0]->query_safe(q{SELECT ptbm_pool_prewarm('t')});
my $range = sprintf('%d, %d', $first * $pages_per_block, $tblocks * $pages_per_block);
cmp_ok(sql("SELECT count(*) FILTER (WHERE in_page_cache) FROM ptbm_sharing($range)"), '>', 0,
	'after a prewarm, blocks exist in the backing object');
cmp_ok(sql("SELECT count(*) FROM ptbm_sharing($range) WHERE processes > 0"), '>', 0,
	'and are mapped');
cmp_ok(sql(q{SELECT ptbm_pool_evict('t')}), '>', 0, 'ptbm_pool_evict frees them');
is(sql("SELECT count(*) FILTER (WHERE in_page_cache), count(*) FILTER (WHERE processes > 0) FROM ptbm_sharing($range)"),
	'0|0', 'no block left in the backing object, none in any page table');
is(sql(q{SELECT count(*) FROM ptbm_pool_blocks('t')}), '0', 'ptbm_pool_blocks: none resident');

# ---- a page that fails verification is never served ------------------------------
$_->quit for @s;
$node->stop;
{
	my $file = $node->data_dir . '/' . do {
		$node->start;
		my $f = sql(q{SELECT pg_relation_filepath('t')});
		$node->stop;
		$f;
	};
	open my $fh, '+<', $file or die "open $file: $!";
	binmode $fh;
	seek($fh, 3 * 8192 + 4000, 0) or die;
	print $fh 'garbage where rows were';
	close $fh;
}
$node->start;
# a restart: nothing is attached any more
sql(q{SELECT ptbm_pool_attach('t'), ptbm_pool_attach('t_id')});
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT length(ptbm_pool_read('t', 3))});
like($err, qr/ERROR:  invalid page in block 3 of relation "t"; not loaded into the ptbm pool/,
	'a block that fails its checksum is an ERROR');
($rc, $out, $err) = $node->psql('postgres', q{SELECT length(ptbm_pool_read('t', 3))});
like($err, qr/invalid page in block 3/, 'and again: it was never published');
is(sql(q{SELECT count(*) FROM ptbm_pool_blocks('t') WHERE blkno = 3}), '0', 'block 3 is not resident');
is(sql(q{SELECT length(ptbm_pool_read('t', 4))}), '8192', 'the other blocks are served');

# ---- bad input ----------------------------------------------------------------------
sub err_is
{
	my ($sql, $state, $what) = @_;
	my ($r, $o, $e) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	like($e, qr/ERROR:  $state:/, $what) or note($e);
	return;
}
sql(q{CREATE SEQUENCE seq; CREATE VIEW v AS SELECT 1 AS x; CREATE TABLE empty_t (x int)});
err_is(q{SELECT ptbm_pool_attach('seq')}, '42809', 'a sequence cannot be attached (wrong object type)');
err_is(q{SELECT ptbm_pool_attach('v')}, '42809', 'nor a view');
err_is(q{SELECT ptbm_pool_attach('pg_class', 'bogus')}, '22023', 'an unknown fork');
err_is(q{SELECT ptbm_pool_attach('t', 'vm')}, '42704', 'a fork the relation does not have');
err_is(q{CREATE TEMP TABLE tt (x int); SELECT ptbm_pool_attach('tt')}, '0A000', 'a temporary relation');
err_is(q{SELECT ptbm_pool_read(4294967295::oid::regclass, 0)}, '42P01', 'a relation that does not exist');
err_is(q{SELECT ptbm_pool_read('empty_t', 0)}, '55000', 'a relation that is not attached');
err_is(q{SELECT ptbm_pool_read('t', 100000)}, '22023', 'a block past the end');
err_is(q{SELECT ptbm_pool_read('t', -1)}, '22023', 'a negative block');
err_is(q{SELECT ptbm_touch(0)}, '55006', 'ptbm_touch refuses the pool\'s pages');
err_is(q{SELECT ptbm_write(0, 'x')}, '55006', 'ptbm_write too');
is(sql(q{SELECT ptbm_pool_detach('t_id'), ptbm_pool_detach('t_id')}), '1|0',
	'detach: one fork, then nothing');
err_is(q{SELECT ptbm_pool_read('t_id', 0)}, '55000', 'a detached relation');

# ---- privileges -----------------------------------------------------------------------
sql(q{
	CREATE ROLE nobody LOGIN;
	CREATE ROLE mon LOGIN IN ROLE pg_monitor;
	CREATE ROLE granted LOGIN;
	GRANT EXECUTE ON FUNCTION ptbm_pool_read(regclass, bigint, text) TO granted;});
sub as
{
	my ($role, $sql) = @_;
	my ($r, $o, $e) = $node->psql('postgres', "SET ROLE $role; \\set VERBOSITY verbose\n$sql");
	return $e =~ /ERROR:  (\w+):/ ? $1 : '00000';
}
is(as('nobody', 'SELECT * FROM ptbm_pool_stats()'), '42501', 'nobody: no stats');
is(as('mon', 'SELECT * FROM ptbm_pool_stats()'), '00000', 'pg_monitor: stats');
is(as('mon', q{SELECT count(*) FROM ptbm_pool_blocks('t')}), '00000', 'pg_monitor: blocks');
is(as('mon', q{SELECT length(ptbm_pool_read('t', 0))}), '42501', 'pg_monitor: no reads');
is(as('mon', q{SELECT ptbm_pool_evict()}), '42501', 'pg_monitor: no evictions');
is(as('granted', q{SELECT length(ptbm_pool_read('t', 0))}), '42501',
	'EXECUTE granted but no SELECT on the table: denied');
sql(q{GRANT SELECT ON t TO granted});
is(as('granted', q{SELECT length(ptbm_pool_read('t', 0))}), '00000', 'EXECUTE and SELECT: reads');

# ---- crash-restart: the pool is empty and usable ------------------------------------
# (block 3 is the corrupted one: read past it)
sql(q{SELECT count(ptbm_pool_read('t', b)) FROM generate_series(4, 200) b});
cmp_ok(sql('SELECT resident_units FROM ptbm_pool_stats()'), '>', 0, 'before the crash: blocks resident');
{
	my $v = $node->background_psql('postgres');
	my $vpid = $v->query_safe('SELECT pg_backend_pid()');
	kill 'KILL', $vpid;
	eval { $v->quit };
}
$node->poll_query_until('postgres', 'SELECT generation > 1 FROM ptbm_region()')
  or die 'no crash-restart';
is(sql('SELECT resident_units, extents, hits + misses FROM ptbm_pool_stats()'), '0|0|0',
	'after the crash-restart: nothing resident, nothing attached, counters at zero');
sql(q{SELECT ptbm_pool_attach('t')});
is(sql(qq{SELECT count(*) FILTER (WHERE ptbm_pool_read('t', b) = get_raw_page('t', b::int))
	FROM generate_series(4, $tblocks - 1) b}), $tblocks - 4, 'and it serves the table again');
$node->stop;

# ---- start refuses what cannot work -----------------------------------------------------
sub refused
{
	my ($what, $fatal, %set) = @_;
	ptbm_settings($node, %set);
	my $offset = -s $node->logfile;
	ok(!$node->start(fail_ok => 1), "$what: no start");
	like(slurp_file($node->logfile, $offset), qr/FATAL:  $fatal[^\n]*\n(?:[^\n]*DETAIL:[^\n]*\n)?[^\n]*HINT:  \S/,
		"$what: a FATAL with a hint");
	return;
}
refused('a pool on private_anon', qr/the ptbm buffer pool needs a shared region, not private_anon/,
	'ptbm.region_size' => '64MB', 'ptbm.region_kind' => 'private_anon', 'ptbm.pool_size' => '8MB');
refused('a budget larger than the region', qr/ptbm.pool_size \(\d+ bytes\) is larger than the region/,
	'ptbm.region_size' => '64MB', 'ptbm.pool_size' => '128MB');
refused('a budget beyond the memory there is', qr/ptbm.pool_size \(\d+ MB\) is more than the \d+ MB that \S+/,
	'ptbm.region_size' => '1900GB', 'ptbm.pool_size' => '1800GB');
ptbm_settings($node, 'ptbm.region_size' => '64MB', 'ptbm.pool_size' => '8MB');
ok($node->start(fail_ok => 1), 'a good setting starts');
$node->stop;

done_testing();
