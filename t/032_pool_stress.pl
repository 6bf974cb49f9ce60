# The buffer pool under load, in a short form (scripts/test.sh runs it in
# CI): 8 pgbench clients read random blocks of a table through the pool
# under a budget of a tenth of the table (the reads go to a hot set a
# little larger than the budget, so that evictions keep racing reads of the
# same blocks), with each eviction method, on a
# cluster with data checksums.  Every page a client gets is verified: its
# checksum, and the block number the heap layout stores in it (every tuple
# of a table that was never updated carries its own TID).  Then TRUNCATE and
# VACUUM FULL while clients read: no client may ever get a block of an old
# file node.
#
# Then the same races from C loops (ptbm_bench_hits with verify), back to
# back reads from 4 backends, with each method.
#
# Asserted: no client failed a check (no torn, stale or misplaced page), no
# process crashed, the resident units never passed the budget by more than
# one eviction batch, and at the end the backing object holds exactly what
# the pool counts as resident.  Two cores here: 8 clients are four per CPU,
# enough to overlap reads, loads and evictions.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use Time::HiRes qw(usleep);
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seconds = $ENV{PTBM_STRESS_SECONDS} // 5;
my $clients = $ENV{PTBM_STRESS_CLIENTS} // 8;

my $node = ptbm_node('poolstress', 'ptbm.region_size' => '512MB', 'ptbm.pool_size' => '1600kB',
	'ptbm.pool_evict_batch' => '64');
$node->append_conf('postgresql.conf', "max_connections = 40\n");
system('pg_checksums', '--enable', '-D', $node->data_dir) == 0
  or BAIL_OUT('pg_checksums --enable failed');
$node->start;

sub sql { return $node->safe_psql('postgres', @_); }

sql(q{
	CREATE EXTENSION ptbm;
	CREATE EXTENSION pageinspect;
	CREATE TABLE s (id int, pad text) WITH (autovacuum_enabled = off);
	INSERT INTO s SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 40000) g;
	CREATE INDEX s_id ON s (id);
	CREATE TABLE v (gen int, pad text) WITH (autovacuum_enabled = off);
	INSERT INTO v SELECT 1, repeat('v', 400) FROM generate_series(1, 4000) g;
	CHECKPOINT;});
# empty shared_buffers: pages come from the files, their checksums valid
$node->restart;
my $nblocks = sql(q{SELECT pg_relation_size('s') / 8192});
my $iblocks = sql(q{SELECT pg_relation_size('s_id') / 8192});
my $vblocks = sql(q{SELECT pg_relation_size('v') / 8192});
my $budget = sql('SELECT budget / unit_size FROM ptbm_pool_stats()');
my $batch = 64;
# the blocks the clients read: a little more than the budget holds, so
# that evictions keep taking blocks that clients are about to read
my $hot = int($budget * 1.3);
note("s: $nblocks blocks, s_id: $iblocks, v: $vblocks; budget $budget blocks; reads over $hot blocks of s; $clients clients, $seconds s");

my $dir = PostgreSQL::Test::Utils::tempdir();
my $verify = "$dir/verify.sql";
open my $fh, '>', $verify or die;
print $fh <<'EOF';
\set b random(0, :hot - 1)
\set i random(1, :iblocks - 1)
SELECT CASE WHEN h.checksum = page_checksum(x.p, :b)
             AND (SELECT bool_and((t_ctid::text::point)[0] = :b) FROM heap_page_items(x.p) WHERE lp_flags = 1)
            THEN 1 ELSE 1 / (h.lower - h.lower) END
FROM (SELECT ptbm_pool_read('s', :b) AS p) x, page_header(x.p) h;
SELECT CASE WHEN h.checksum = page_checksum(x.p, :i) THEN 1 ELSE 1 / (h.lower - h.lower) END
FROM (SELECT ptbm_pool_read('s_id', :i) AS p) x, page_header(x.p) h;
EOF
close $fh;

# (a failed check divides by a zero that is not a constant: a constant 1 / 0
# would be folded into an error when the query is planned)

# Runs pgbench in the background; returns a function that waits and gives (ret, out, err).
sub pgbench_start
{
	my ($script, @defs) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-c', $clients, '-j', 2, '-T', $seconds, '-f', $script,
			(map { ('-D', $_) } @defs), '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	return sub { $h->finish; return ($? >> 8, $out, $err); };
}

# The most resident units seen while pgbench runs.
sub watch_budget
{
	my ($done) = @_;
	my $max = 0;
	my $s = $node->background_psql('postgres');
	while (!$done->())
	{
		my $r = $s->query_safe('SELECT resident_units FROM ptbm_pool_stats()');
		$max = $r if $r > $max;
		usleep(20_000);
	}
	$s->quit;
	return $max;
}

foreach my $method ('remove', 'cooperative')
{
	$node->append_conf('postgresql.conf', "ptbm.pool_eviction = $method\n");
	$node->reload;
	sql(q{SELECT ptbm_pool_detach('s'), ptbm_pool_detach('s_id')});
	sql(q{SELECT * FROM ptbm_pool_attach('s') a, ptbm_pool_attach('s_id') b});
	my $before = sql('SELECT evicted_blocks, cooperative_batches FROM ptbm_pool_stats()');
	my $start = time();
	my $wait = pgbench_start($verify, "hot=$hot", "iblocks=$iblocks");
	my $max = watch_budget(sub { time() - $start > $seconds + 1 });
	my ($ret, $out, $err) = $wait->();
	my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
	note("$method: $tx transactions; most resident $max of $budget");
	is($ret, 0, "$method: pgbench ends well") or note($err);
	unlike($err, qr/aborted|division by zero/, "$method: every page every client got verified");
	cmp_ok($tx, '>', 100, "$method: the clients did work ($tx transactions)");
	cmp_ok($max, '<=', $budget + $batch, "$method: resident units stayed within the budget and one batch");
	my ($evicted, $coop, $timeouts, $retries, $shared, $resident, $waits) = split /\|/, sql(
		'SELECT evicted_blocks, cooperative_batches, cooperative_timeouts, optimistic_retries, shared_locks, resident_units, reader_waits FROM ptbm_pool_stats()');
	my ($ev0, $coop0) = split /\|/, $before;
	note("$method: evicted $evicted (was $ev0), cooperative batches $coop (timeouts $timeouts), optimistic retries $retries, shared locks $shared, reads in flight waited for $waits");
	cmp_ok($evicted - $ev0, '>', 0, "$method: blocks were evicted under load");
	cmp_ok($coop - $coop0, '>', 0, 'cooperative: batches were published') if $method eq 'cooperative';

	# quiescent: the backing object holds what the pool counts resident
	my ($first) = sql(q{SELECT first_block FROM ptbm_pool_attach('s')});
	my ($ifirst) = sql(q{SELECT first_block FROM ptbm_pool_attach('s_id')});
	my $per = 8192 / page_size();
	my $incore = 0;
	foreach my $r ([ $first, $nblocks ], [ $ifirst, $iblocks ])
	{
		$incore += sql(sprintf('SELECT count(*) FILTER (WHERE in_page_cache) FROM ptbm_sharing(%d, %d)',
				$r->[0] * $per, $r->[1] * $per));
	}
	is($incore / $per, $resident, "$method: the backing object holds exactly the resident blocks ($resident)");
}

# ---- the same races at the speed of C ------------------------------------------------
# pgbench spends most of its time outside the pool; ptbm_bench_hits reads
# blocks back to back (the study's loop), verifying every page it got once
# the pool's version check passed, so evictions race reads thousands of
# times more often.
foreach my $method ('remove', 'cooperative')
{
	$node->append_conf('postgresql.conf', "ptbm.pool_eviction = $method\n");
	$node->reload;
	my $ev0 = sql('SELECT evicted_blocks FROM ptbm_pool_stats()');
	my @h;
	my @out;
	foreach my $i (0 .. 3)
	{
		push @h, IPC::Run::start(
			[ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-c',
				"SELECT accesses, verified, failures FROM ptbm_bench_hits('s', 'pool', 1000000000, $i + 1, "
				  . ($seconds / 2) . ", hot => $hot, verify => true)" ],
			'>', \$out[$i], '2>', \my $err);
	}
	$_->finish for @h;
	my ($acc, $ver, $fail) = (0, 0, 0);
	foreach (@out)
	{
		my ($a, $v, $f) = split /\|/, ($_ // '');
		($acc, $ver, $fail) = ($acc + ($a // 0), $ver + ($v // 0), $fail + ($f // 1));
	}
	my $evicted = sql('SELECT evicted_blocks FROM ptbm_pool_stats()') - $ev0;
	note("$method, C loops: $acc accesses, $ver verified, $evicted blocks evicted meanwhile");
	cmp_ok($ver, '>', 10000, "$method, C loops: 4 backends read and verified ($ver pages)");
	cmp_ok($evicted, '>', 0, "$method, C loops: with evictions racing the reads");
	is($fail, 0, "$method, C loops: no page failed its check once the version check passed");
}

# ---- TRUNCATE and VACUUM FULL while clients read ----------------------------------
my $gen = "$dir/gen.sql";
open $fh, '>', $gen or die;
print $fh <<'EOF';
\set b random(0, :vblocks - 1)
SELECT CASE WHEN min(get_byte(t_data, 0)) = max(get_byte(t_data, 0))
             AND min(get_byte(t_data, 0)) >= :last
            THEN min(get_byte(t_data, 0)) ELSE 1 / (count(*) - count(*)) END AS last
FROM heap_page_items(ptbm_pool_read('v', :b)) WHERE lp_flags = 1
\gset
EOF
close $fh;
sql(q{SELECT * FROM ptbm_pool_attach('v')});
my $evicted_before = sql('SELECT evicted_blocks FROM ptbm_pool_stats()');
my $wait = pgbench_start($gen, "vblocks=$vblocks", 'last=0');
my $g = 1;
for my $round (1 .. 8)
{
	usleep(300_000);
	if ($round % 3 == 0)
	{
		sql('VACUUM FULL v');	# a new file node, the same rows
	}
	else
	{
		$g++;
		sql("BEGIN; TRUNCATE v; INSERT INTO v SELECT $g, repeat('v', 400) FROM generate_series(1, 4000); COMMIT");
	}
}
my ($ret, $out, $err) = $wait->();
my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
note("file node changes under $clients readers: $tx transactions, generation $g");
is($ret, 0, 'file node changes: pgbench ends well') or note($err);
unlike($err, qr/aborted|division by zero/,
	'no client ever got a page of an older generation, nor a mixed one');
is(sql(qq{SELECT count(*) FROM generate_series(0, $vblocks - 1) b,
	LATERAL (SELECT min(get_byte(t_data, 0)) g FROM heap_page_items(ptbm_pool_read('v', b)) WHERE lp_flags = 1) x
	WHERE x.g <> $g}), '0', "afterwards every block is of the last generation ($g)");
cmp_ok(sql('SELECT evicted_blocks FROM ptbm_pool_stats()'), '>', $evicted_before,
	'the old file nodes\' blocks were dropped');

is(sql('SELECT generation FROM ptbm_region()'), '1', 'no crash-restart');
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no process crashed');
$node->stop;
done_testing();
