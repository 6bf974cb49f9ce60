# The pool's blocks in the page tables, frame by frame, where the kernel
# shows frames (scripts/test.sh runs this file as root, handing the postgres
# user CAP_SYS_ADMIN, and CAP_DAC_READ_SEARCH for kpagecount; elsewhere it
# skips, and t/030 checks the same blocks by presence only):
#  - a block two backends read is one frame per page in both page tables:
#    the second backend's fault found the frame the first one's copy created;
#  - a third backend that never read it maps nothing there;
#  - ptbm_pool_evict takes the frames out of every page table and out of the
#    backing object; read again, the block comes back with the same bytes;
#  - with kpagecount, a pool page's count is the number of processes that
#    map it, and its flags are those of shared memory (swap-backed, not anon).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ptbm_node('pool_frames', 'ptbm.region_size' => '256MB', 'ptbm.pool_size' => '4MB');
$node->start;
sub sql
{
	my ($query) = @_;
	return $node->safe_psql('postgres', "SET client_min_messages = warning; $query");
}
sql('CREATE EXTENSION ptbm; CREATE EXTENSION pageinspect');
if (sql('SELECT frames_visible FROM ptbm_region()') ne 't')
{
	$node->stop;
	plan skip_all => 'the kernel hides frame numbers from this server '
	  . '(scripts/test.sh runs this file as root with CAP_SYS_ADMIN)';
}
my $kpage = open(my $kfh, '<', '/proc/kpagecount') ? 1 : 0;
close $kfh if $kpage;
note($kpage ? 'kpagecount and kpageflags readable' : 'kpagecount and kpageflags not readable');

sql(q{CREATE TABLE t (id int, pad text) WITH (autovacuum_enabled = off);
	INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 5000) g;
	CHECKPOINT});
my ($first) = sql(q{SELECT first_block FROM ptbm_pool_attach('t')});
my $ppb = 8192 / page_size();
# the region pages of blocks 0..15
my $range = sprintf('%d, %d', $first * $ppb, 16 * $ppb);

my ($a, $apid) = ptbm_session($node, 'A');
my ($b, $bpid) = ptbm_session($node, 'B');
my ($c, $cpid) = ptbm_session($node, 'C');
$a->query_safe('SELECT count(length(ptbm_pool_read(\'t\', b))) FROM generate_series(0, 15) b');
$b->query_safe('SELECT count(length(ptbm_pool_read(\'t\', b))) FROM generate_series(0, 15) b');

is(sql("SELECT count(pfn), count(DISTINCT pfn) FROM ptbm_pte($apid, $range)"),
	16 * $ppb . '|' . 16 * $ppb, 'A: every page of the 16 blocks present, each its own frame');
is(sql("SELECT count(*), count(*) FILTER (WHERE a.pfn = b.pfn)
        FROM ptbm_pte($apid, $range) a JOIN ptbm_pte($bpid, $range) b USING (page)
        WHERE b.present"),
	16 * $ppb . '|' . 16 * $ppb, 'B maps the very frames A\'s copies created');
is(sql("SELECT count(*) FILTER (WHERE present) FROM ptbm_pte($cpid, $range)"),
	'0', 'C, which read nothing, maps none of them');
is(sql("SELECT count(*) FILTER (WHERE processes = 2), bool_and(same_frame) FROM ptbm_sharing($range)"),
	16 * $ppb . '|t', 'ptbm_sharing: every page mapped by two processes, one frame');

if ($kpage)
{
	is(sql("SELECT bool_and(mapcount = 2), bool_and(NOT exclusive) FROM ptbm_pte($apid, $range)"),
		't|t', 'kpagecount: two mappings per page, so none is exclusive');
	is(sql("SELECT bool_and(flags @> '{swapbacked,uptodate}'), bool_or('anon' = ANY (flags))
	        FROM ptbm_pte($apid, $range)"),
		't|f', 'kpageflags: shared memory (swap-backed), not anonymous');
}

my $before = sql(q{SELECT md5(string_agg(ptbm_pool_read('t', b), '' ORDER BY b)) FROM generate_series(0, 15) b});
cmp_ok(sql(q{SELECT ptbm_pool_evict('t')}), '>=', 16, 'ptbm_pool_evict');
is(sql("SELECT count(*) FILTER (WHERE present) FROM ptbm_pte($apid, $range)") . '|'
	  . sql("SELECT count(*) FILTER (WHERE present) FROM ptbm_pte($bpid, $range)"),
	'0|0', 'after eviction, neither A nor B maps any of the frames');
is(sql("SELECT count(*) FILTER (WHERE in_page_cache OR processes > 0) FROM ptbm_sharing($range)"),
	'0', 'and the backing object holds none of them');
$b->query_safe('SELECT count(length(ptbm_pool_read(\'t\', b))) FROM generate_series(0, 15) b');
is(sql("SELECT count(pfn) FROM ptbm_pte($bpid, $range)"), 16 * $ppb,
	'read again by B: present in B, with frames');
is(sql("SELECT count(*) FILTER (WHERE present) FROM ptbm_pte($apid, $range)"), '0',
	'and still absent from A until A reads');
is(sql(q{SELECT md5(string_agg(ptbm_pool_read('t', b), '' ORDER BY b)) FROM generate_series(0, 15) b}),
	$before, 'the same bytes as before the eviction');
is(sql(q{SELECT count(*) FILTER (WHERE ptbm_pool_read('t', b) = get_raw_page('t', b::int))
         FROM generate_series(0, 15) b}), '16', 'and as get_raw_page');

$_->quit for ($a, $b, $c);
$node->stop;
done_testing();
