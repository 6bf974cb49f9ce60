# PostgreSQL's own main shared memory segment, backend by backend.
#
# huge_pages = off: a backend that scans a table gains present pages in
# shared_buffers while an idle backend gains none, and what ptbm reports is
# what the kernel says, read here from /proc/PID/pagemap, smaps and status.
#
# huge_pages = on, when the hugetlb pool has room for the segment: the same
# work maps the segment with hugetlb pages, and the page tables it costs are
# far smaller.  The pool is root's: scripts/hugepages.sh reserve N (as root,
# around the suites) fills it; run as root, this test fills it itself and
# restores it; otherwise that part skips.
use strict;
use warnings;
no warnings 'portable';    # hex() of 64-bit addresses
use FindBin;
use lib $FindBin::RealBin;

use Carp;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use PtbmTest;

my $psz = page_size();
my $pte_span = $psz * ($psz / 8);    # bytes one page-table page maps: 2 MB

sub meminfo
{
	my ($key) = @_;
	open my $fh, '<', '/proc/meminfo' or croak "could not open /proc/meminfo: $!";
	while (my $line = <$fh>)
	{
		return $1 if $line =~ /^\Q$key\E:\s+(\d+)/;
	}
	return 0;
}

# Present base pages of [start, end) in a process's page table, read here
# from its pagemap (bit 63 of each 8-byte entry).
sub pagemap_present
{
	my ($pid, $start, $end) = @_;
	my $n = ($end - $start) / $psz;
	my $want = $n * 8;
	my $buf = '';
	open my $fh, '<:raw', "/proc/$pid/pagemap"
	  or croak "could not open /proc/$pid/pagemap: $!";
	sysseek($fh, ($start / $psz) * 8, 0)
	  or croak "could not seek in /proc/$pid/pagemap: $!";
	while (length($buf) < $want)
	{
		my $r = sysread($fh, $buf, $want - length($buf), length($buf));
		croak "could not read /proc/$pid/pagemap: $!" unless $r;
	}
	close $fh;
	my $present = 0;
	foreach my $e (unpack 'Q<*', $buf)
	{
		$present++ if $e >> 63;
	}
	return $present;
}

# The segment as ptbm locates it, and its page-aligned buffer range.
sub segment
{
	my ($node) = @_;
	my %s;
	@s{qw(base size backing page_size buffers_base buffers_size nbuffers)} =
	  split /\|/,
	  $node->safe_psql('postgres',
		'SELECT base, size, backing, page_size, buffers_base, buffers_size, nbuffers
		 FROM ptbm_shmem_segment()');
	$s{start} = hex($s{base});
	$s{end} = $s{start} + $s{size};
	$s{bufpg_start} = int(hex($s{buffers_base}) / $psz) * $psz;
	$s{bufpg_end} =
	  int((hex($s{buffers_base}) + $s{buffers_size} + $psz - 1) / $psz) * $psz;
	return \%s;
}

# One row of ptbm_shmem_backends(), as a hash.
my @cols = qw(present present_buffers mapped_pages page_size page_kind rss
  hugetlb segment_page_table page_table);

sub ptbm_row
{
	my ($node, $pid) = @_;
	my %r;
	@r{@cols} = split /\|/,
	  $node->safe_psql('postgres',
		'SELECT ' . join(', ', @cols) . " FROM ptbm_shmem_backends() WHERE pid = $pid");
	return \%r;
}

# What the kernel says about the segment in that process, read here.
sub kernel_view
{
	my ($pid, $seg) = @_;
	my $sm = region_smaps($pid, $seg->{base}, $seg->{size});
	return {
		present => pagemap_present($pid, $seg->{start}, $seg->{end}),
		present_buffers =>
		  pagemap_present($pid, $seg->{bufpg_start}, $seg->{bufpg_end}),
		rss => $sm->{Rss} * 1024,
		hugetlb => (($sm->{Shared_Hugetlb} // 0) + ($sm->{Private_Hugetlb} // 0)) * 1024,
		page_size => $sm->{KernelPageSize} * 1024,
		page_table => proc_status_kb($pid, 'VmPTE') * 1024,
	};
}

# ptbm's row and the kernel's view of an idle process, read while its page
# table does not change (the same ptbm row before and after the kernel read).
sub stable_views
{
	my ($node, $pid, $seg) = @_;
	for (my $try = 0;; $try++)
	{
		my $a = ptbm_row($node, $pid);
		my $k = kernel_view($pid, $seg);
		my $b = ptbm_row($node, $pid);
		return ($b, $k)
		  if join('|', @$a{@cols}) eq join('|', @$b{@cols}) || $try == 10;
		usleep(200_000);
	}
}

sub compare_with_kernel
{
	my ($node, $pid, $seg, $who) = @_;
	my ($r, $k) = stable_views($node, $pid, $seg);
	is($r->{present}, $k->{present}, "$who: present = the pagemap's present entries");
	is($r->{present_buffers}, $k->{present_buffers},
		"$who: present_buffers = the pagemap's present entries over shared_buffers");
	is($r->{rss}, $k->{rss}, "$who: rss = smaps Rss");
	is($r->{hugetlb}, $k->{hugetlb}, "$who: hugetlb = smaps Shared_Hugetlb + Private_Hugetlb");
	is($r->{page_size}, $k->{page_size}, "$who: page_size = smaps KernelPageSize");
	is($r->{page_table}, $k->{page_table}, "$who: page_table = VmPTE");
	return $r;
}

# The same work under either setting: an idle backend and a scanning one.
sub scan_run
{
	my ($node, $label) = @_;
	my $seg = segment($node);
	my ($idle, $ipid) = ptbm_session($node, 'idle');
	my ($scan, $spid) = ptbm_session($node, 'scanner');
	my %run = (seg => $seg);

	$run{idle_before} = compare_with_kernel($node, $ipid, $seg, "$label, idle backend");
	$run{scan_before} = compare_with_kernel($node, $spid, $seg, "$label, scanner before");
	my $vmpte_before = proc_status_kb($spid, 'VmPTE') * 1024;

	# the table's buffers this backend maps before it reads them
	my $tbl_bufs = qq{
		SELECT count(*) || '|' || count(*) FILTER (WHERE p.present > 0)
		FROM pg_buffercache b JOIN ptbm_buffer_ptes(%d) p USING (bufferid)
		WHERE b.relfilenode = pg_relation_filenode('big') AND b.relforknumber = 0
		  AND b.reldatabase = (SELECT oid FROM pg_database WHERE datname = 'postgres')};
	my ($nbufs, $mapped_before) = split /\|/,
	  $node->safe_psql('postgres', sprintf($tbl_bufs, $spid));
	my $nblocks = $node->safe_psql('postgres',
		"SELECT pg_relation_size('big') / current_setting('block_size')::int");
	is($nbufs, $nblocks, "$label: every block of the table is in shared_buffers");

	# by itself: parallel workers would read parts of the table instead
	$scan->query_safe('SET max_parallel_workers_per_gather = 0');
	$scan->query_safe('SELECT count(*) FROM big');

	my (undef, $mapped_after) = split /\|/,
	  $node->safe_psql('postgres', sprintf($tbl_bufs, $spid));
	is($mapped_after, $nbufs,
		"$label: after the scan, the scanner maps every buffer of the table");

	$run{idle_after} = compare_with_kernel($node, $ipid, $seg, "$label, idle backend");
	$run{scan_after} = compare_with_kernel($node, $spid, $seg, "$label, scanner after");
	is($run{idle_after}{present_buffers}, $run{idle_before}{present_buffers},
		"$label: the idle backend gained no page of shared_buffers");

	# each buffer it newly mapped owns a whole OS page of its own (BLCKSZ is
	# two pages); the last, partly filled block may have shown only one it
	# shares with a neighbour
	$run{gain} = $run{scan_after}{present_buffers} - $run{scan_before}{present_buffers};
	cmp_ok($run{gain}, '>=', $nbufs - $mapped_before - 1,
		"$label: the scanner gained a present page for each buffer it newly mapped");
	$run{vmpte_delta} = proc_status_kb($spid, 'VmPTE') * 1024 - $vmpte_before;
	# the segment's share of page tables is a lower bound of what they cost
	cmp_ok($run{vmpte_delta}, '>=',
		$run{scan_after}{segment_page_table} - $run{scan_before}{segment_page_table} - 2 * $psz,
		"$label: VmPTE grew at least by the segment's new page tables");
	$run{nblocks} = $nblocks;

	$idle->quit;
	$scan->quit;
	return \%run;
}

# ---- huge_pages = off ---------------------------------------------------------

my $node = ptbm_node('shmem', 'ptbm.region_size' => '16MB');
# jit off: LLVM's libraries would add their own page tables to the scan's
$node->append_conf('postgresql.conf', "shared_buffers = 128MB\nhuge_pages = off\njit = off\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION ptbm;
	CREATE EXTENSION pg_buffercache;
	CREATE EXTENSION pg_prewarm;
	CREATE TABLE big (i int, pad text);
	INSERT INTO big SELECT g, repeat('x', 400) FROM generate_series(1, 150000) g;
	SELECT pg_prewarm('big');});

my $off = scan_run($node, 'huge_pages=off');
my $seg = $off->{seg};
is($seg->{page_size}, $psz, 'huge_pages=off: the segment has base pages');
like($seg->{backing}, qr{^/dev/zero}, 'huge_pages=off: the segment is a shmem file');
is(scalar(region_maps_vmas(postmaster_pid($node), $seg->{base}, $seg->{size})),
	1, 'the segment is one mapping in the postmaster too');
my $off_row = $off->{scan_after};
is($off_row->{page_kind}, 'base', 'huge_pages=off: page_kind base');
is($off_row->{mapped_pages}, $off_row->{present},
	'huge_pages=off: mapped pages are the base pages');
# 4 kB pages: one page-table page per 2 MB span holding a present page
cmp_ok($off_row->{segment_page_table},
	'>=', int($off->{scan_after}{present_buffers} * $psz / $pte_span) * $psz,
	'huge_pages=off: a page-table page per 2 MB of shared_buffers mapped');

note sprintf(
	'huge_pages=off: segment %d MB, table %d blocks; scanner maps %d kB of '
	  . 'shared_buffers (+%d kB with the scan), segment page tables %d kB, '
	  . 'VmPTE %d kB (+%d kB with the scan); idle backend maps %d kB of shared_buffers',
	$seg->{size} / 1048576, $off->{nblocks},
	$off_row->{present_buffers} * $psz / 1024, $off->{gain} * $psz / 1024,
	$off_row->{segment_page_table} / 1024, $off_row->{page_table} / 1024,
	$off->{vmpte_delta} / 1024, $off->{idle_after}{present_buffers} * $psz / 1024);

# ---- huge_pages = on ------------------------------------------------------------

my $hp = meminfo('Hugepagesize') * 1024;
my $need = int(($seg->{size} + $hp - 1) / $hp) + 8;
my $nr_file = '/proc/sys/vm/nr_hugepages';
my $nr_saved;

sub free_huge_pages
{
	return meminfo('HugePages_Free') - meminfo('HugePages_Rsvd');
}

if ($> == 0 && $hp > 0 && free_huge_pages() < $need)
{
	# root: fill the pool for this test, and put it back at the end
	$nr_saved = slurp_file($nr_file);
	chomp $nr_saved;
	open my $fh, '>', $nr_file or croak "could not write $nr_file: $!";
	print $fh $nr_saved + $need - free_huge_pages();
	close $fh;
}

END
{
	if (defined $nr_saved)
	{
		if (open my $fh, '>', $nr_file)
		{
			print $fh $nr_saved;
			close $fh;
		}
	}
}

my $running = 1;
SKIP:
{
	my $free = free_huge_pages();
	skip "huge_pages=on needs $need free huge pages, the pool has $free; "
	  . "as root: scripts/hugepages.sh reserve $need", 1
	  if $hp == 0 || $free < $need;

	$node->stop;
	$running = 0;
	$node->append_conf('postgresql.conf', "huge_pages = on\n");
	skip 'the server did not start with huge_pages=on', 1
	  unless $node->start(fail_ok => 1);
	$running = 1;
	$node->safe_psql('postgres', q{SELECT pg_prewarm('big')});

	my $on = scan_run($node, 'huge_pages=on');
	my $hseg = $on->{seg};
	is($hseg->{page_size}, $hp, 'huge_pages=on: the segment has hugetlb pages');
	like($hseg->{backing}, qr{^/anon_hugepage}, 'huge_pages=on: on hugetlbfs');
	my $on_row = $on->{scan_after};
	is($on_row->{page_kind}, 'hugetlb', 'huge_pages=on: page_kind hugetlb');
	is($on_row->{mapped_pages} * $hp, $on_row->{present} * $psz,
		'huge_pages=on: a huge page is present in whole: mapped pages x 2 MB = present x 4 kB');
	is($on_row->{hugetlb}, $on_row->{mapped_pages} * $hp,
		'huge_pages=on: smaps hugetlb = mapped pages x page size');
	cmp_ok($on_row->{present_buffers}, '>=', $off_row->{present_buffers},
		'huge_pages=on: at least as much of shared_buffers mapped as with 4 kB pages');
	cmp_ok($on_row->{segment_page_table} * 8,
		'<=', $off_row->{segment_page_table},
		'huge_pages=on: segment page tables far smaller than with huge_pages=off');
	cmp_ok($on->{vmpte_delta} * 8 + $psz, '<=', $off->{vmpte_delta},
		'huge_pages=on: the scan grew VmPTE far less than with huge_pages=off');

	note sprintf(
		'huge_pages=on: segment %d MB in %d kB pages; scanner maps %d kB of '
		  . 'shared_buffers (+%d kB with the scan), segment page tables %d kB, '
		  . 'VmPTE %d kB (+%d kB with the scan); huge_pages=off: +%d kB',
		$hseg->{size} / 1048576, $hp / 1024,
		$on_row->{present_buffers} * $psz / 1024, $on->{gain} * $psz / 1024,
		$on_row->{segment_page_table} / 1024, $on_row->{page_table} / 1024,
		$on->{vmpte_delta} / 1024, $off->{vmpte_delta} / 1024);
}

$node->stop if $running;
done_testing();
