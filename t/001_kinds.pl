
# Every ptbm.region_kind: the region starts, ptbm_region() describes the
# mapping as the kernel shows it, data is shared between backends exactly for
# the shared kinds, and the PTEs ptbm_pte() reports for a backend agree with
# that backend's smaps.

use strict;
use warnings;
no warnings 'portable';    # hex() of 64-bit addresses
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PtbmTest;

my $size = 8 * 1024 * 1024;
my $psz = page_size();

# THP for anonymous memory changes which pages map the zero page
my $thp_always = 0;
if (open my $fh, '<', '/sys/kernel/mm/transparent_hugepage/enabled')
{
	$thp_always = (<$fh> =~ /\[always\]/);
	close $fh;
}

my $node = ptbm_node('kinds');
my $datadir = $node->data_dir;
my $file = "$datadir/pg_dynshmem/ptbm_region";

# started once with the default kind; each kind below is a restart
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
foreach my $kind (qw(shared_anon private_anon shared_memfd shared_file private_file))
{
	my $shared = ($kind =~ /^shared_/) ? 1 : 0;
	my $filekind = ($kind =~ /_file$/) ? 1 : 0;

	ptbm_settings(
		$node,
		'ptbm.region_size' => '8MB',
		'ptbm.region_kind' => $kind);
	$node->restart;

	# ---- what ptbm_region() reports ----
	my $row = $node->safe_psql(
		'postgres', q{
		SELECT base, size, page_size, pages, kind,
		       coalesce(backing, '<null>'), coalesce(inode, 0),
		       'sh' = ANY (vma_flags), vmas, generation
		FROM ptbm_region()});
	my ($base, $rsize, $rpsz, $pages, $rkind, $backing, $inode, $sh, $vmas,
		$gen) = split /\|/, $row;

	is($rkind, $kind, "$kind: kind reported");
	is($rsize, $size, "$kind: size is the setting");
	is($rpsz, $psz, "$kind: page size is the kernel's base page size");
	is($pages * $rpsz, $rsize, "$kind: pages * page_size = size");
	is($vmas, 1, "$kind: the region is one VMA");
	is($gen, 1, "$kind: generation 1 after a clean start");
	like($base, qr/^0x[0-9a-f]+$/, "$kind: base is a hex address");
	is(hex($base) % $psz, 0, "$kind: base is page aligned");
	is($sh, $shared ? 't' : 'f', "$kind: 'sh' in vma_flags iff shared");

	if ($kind eq 'shared_anon')
	{
		is($backing, '/dev/zero (deleted)', "$kind: backing is the shmem file of /dev/zero");
		isnt($inode, 0, "$kind: the shmem file has an inode");
	}
	elsif ($kind eq 'private_anon')
	{
		is($backing, '<null>', "$kind: no backing object");
		is($inode, 0, "$kind: no inode");
	}
	elsif ($kind eq 'shared_memfd')
	{
		like($backing, qr{^/memfd:ptbm_region}, "$kind: backing is the memfd");
		isnt($inode, 0, "$kind: the memfd has an inode");
	}
	else
	{
		like($backing, qr{/ptbm_region$}, "$kind: backing is the file ptbm_region");
		ok(-f $file, "$kind: $file exists");
		is(-s $file, $size, "$kind: the file has the region's size");
		is($inode, (stat $file)[1], "$kind: inode is the file's");
	}

	# ---- data between two backends ----
	is( $node->safe_psql(
			'postgres', q{
			SELECT ptbm_write(3, '\xdeadbeef'::bytea, 100);
			SELECT ptbm_read(3, 4, 100)}),
		"4\n\\xdeadbeef",
		"$kind: a backend reads what it wrote");
	is( $node->safe_psql('postgres', 'SELECT ptbm_read(3, 4, 100)'),
		$shared ? '\xdeadbeef' : '\x00000000',
		$shared
		? "$kind: another backend reads the bytes written"
		: "$kind: another backend reads zeros (private copy)");
	if ($filekind)
	{
		is(file_bytes($file, 3 * $psz + 100, 4),
			$shared ? 'deadbeef' : '00000000',
			$shared
			? "$kind: the bytes reached the file"
			: "$kind: the file is unchanged");
	}

	# ---- ptbm_pte() against the kernel's smaps of one backend ----
	my $bg = $node->background_psql('postgres');
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	is($bg->query_safe(q{SELECT pages FROM ptbm_touch(0, 32, 'write')}),
		32, "$kind: touched 32 pages for writing");
	is($bg->query_safe(q{SELECT pages FROM ptbm_touch(64, 32, 'read')}),
		32, "$kind: touched 32 pages for reading");

	# the backend is idle now: its page table does not change
	my $sm = region_smaps($pid, $base, $size);
	my ($present, $counted, $zero, $touched, $w_shared, $r_shared) =
	  split /\|/, $node->safe_psql(
		'postgres', qq{
		SET client_min_messages = warning;
		SELECT count(*) FILTER (WHERE present),
		       count(*) FILTER (WHERE present AND NOT zero_page),
		       count(*) FILTER (WHERE present AND zero_page),
		       count(*) FILTER (WHERE present
		                        AND (page < 32 OR page BETWEEN 64 AND 95)),
		       count(*) FILTER (WHERE present AND shared AND page < 32),
		       count(*) FILTER (WHERE present AND shared
		                        AND page BETWEEN 64 AND 95)
		FROM ptbm_pte($pid, 0, NULL)});

	note "$kind: present $present, zero page $zero, smaps Rss $sm->{Rss} kB";
	is($sm->{vmas}, 1, "$kind: the backend has the region as one VMA");
	ok($sm->{start} == hex($base) && $sm->{end} == hex($base) + $size,
		"$kind: that VMA is exactly the region (not merged with a neighbour)");
	is($touched, 64, "$kind: every touched page is present");
	cmp_ok($present, '>=', 64, "$kind: at least the touched pages are present");
	is($counted, $sm->{Rss} * 1024 / $psz,
		"$kind: present pages (but the zero page) = smaps Rss / page size");
	is($present, $counted + $zero,
		"$kind: smaps leaves out only zero-page PTEs");

	if ($shared)
	{
		is($zero, 0, "$kind: a shared mapping never maps the zero page");
		is($w_shared, 32, "$kind: written pages are shared (pagemap bit 61)");
		is($r_shared, 32, "$kind: read pages are shared (pagemap bit 61)");
	}
	elsif ($kind eq 'private_anon')
	{
		is($w_shared, 0, "$kind: written pages are anonymous");
		is($r_shared, 0, "$kind: read pages are not file pages");
	  SKIP:
		{
			skip 'transparent huge pages always on', 1 if $thp_always;
			is($zero, 32, "$kind: pages only read map the zero page");
		}
	}
	else
	{
		is($zero, 0, "$kind: file pages are read from the page cache");
		is($w_shared, 0, "$kind: written pages are private copies (anonymous)");
		is($r_shared, 32, "$kind: pages only read map the file's page cache");
	}

	$bg->quit;
}

$node->stop;
done_testing();
