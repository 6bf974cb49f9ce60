
# A 1TB region: it starts, costs a backend nothing until touched (no RSS,
# no page tables), and touching 1000 pages spread over it maps those pages
# and no others.

use strict;
use warnings;
no warnings 'portable';    # hex() of 64-bit addresses
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PtbmTest;

my $psz = page_size();
my $tb = 1024 * 1024 * 1024 * 1024;
# pages per page-table page (the range one PMD entry covers: 2MB on x86-64)
my $pt_pages = 512;

my $node = ptbm_node('large', 'ptbm.region_size' => '16MB');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');

# The same work in a fresh backend of each server: connect, ask for the
# region, then stay idle while the test reads /proc.
sub idle_backend
{
	my $bg = $node->background_psql('postgres');
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	my ($base, $size) = split /\|/,
	  $bg->query_safe('SELECT base, size FROM ptbm_region()');
	my %m = (
		bg => $bg,
		pid => $pid,
		base => $base,
		size => $size,
		VmPTE => proc_status_kb($pid, 'VmPTE'),
		VmRSS => proc_status_kb($pid, 'VmRSS'));
	return \%m;
}

my $small = idle_backend();
is($small->{size}, 16 * 1024 * 1024, '16MB region');
$small->{bg}->quit;

ptbm_settings($node, 'ptbm.region_size' => '1TB');
$node->restart;

my $row = $node->safe_psql('postgres',
	'SELECT size, pages, page_size, vmas, kind FROM ptbm_region()');
my ($size, $pages, $rpsz, $vmas, $kind) = split /\|/, $row;
is($size, $tb, 'the 1TB region is mapped: size = 2^40');
is($pages, $tb / $psz, 'pages = size / page size');
is($vmas, 1, 'the region is one VMA');
is($kind, 'shared_anon', 'default kind');

my $big = idle_backend();
my $pid = $big->{pid};
my $sm = region_smaps($pid, $big->{base}, $size);
is($sm->{vmas}, 1, 'the backend has the region as one VMA');
is($sm->{Size}, $tb / 1024, 'smaps Size of the region is 1TB');
is($sm->{Rss}, 0, 'an untouched 1TB region has no resident page');

note "VmPTE: 16MB region $small->{VmPTE} kB, 1TB region $big->{VmPTE} kB";
note "VmRSS: 16MB region $small->{VmRSS} kB, 1TB region $big->{VmRSS} kB";
cmp_ok(abs($big->{VmPTE} - $small->{VmPTE}),
	'<=', 1024, 'page tables of a backend: 1TB region costs no more than 16MB');
cmp_ok(abs($big->{VmRSS} - $small->{VmRSS}),
	'<=', 1024, 'RSS of a backend: 1TB region costs no more than 16MB');

# the postmaster never touches it either
my $pm_sm = region_smaps(postmaster_pid($node), $big->{base}, $size);
is($pm_sm->{Rss}, 0, 'the postmaster has no resident page of the region');

# ---- touch 1000 pages spread across the region ----
my $step = int($pages / 1000);
is( $big->{bg}->query_safe(
		qq{SELECT sum(t.pages)
		   FROM generate_series(0, 999) i,
		        ptbm_touch(i * $step, 1, 'read') t}),
	1000,
	'touched 1000 pages, one per 1/1000 of the region');

my $vmpte_after = proc_status_kb($pid, 'VmPTE');
$sm = region_smaps($pid, $big->{base}, $size);
my $rss_pages = $sm->{Rss} * 1024 / $psz;

my ($touched_present, $near_present) = split /\|/, $node->safe_psql(
	'postgres', qq{
	SET client_min_messages = warning;
	SELECT (SELECT count(*) FILTER (WHERE p.present)
	        FROM generate_series(0, 999) i, ptbm_pte($pid, i * $step, 1) p),
	       (SELECT count(*) FILTER (WHERE p.present)
	        FROM generate_series(0, 999) i,
	             ptbm_pte($pid, (i * $step / $pt_pages) * $pt_pages, $pt_pages) p)});

note "Rss $sm->{Rss} kB, VmPTE $big->{VmPTE} -> $vmpte_after kB";
is($touched_present, 1000, 'each touched page is present');
cmp_ok($near_present, '>=', 1000, 'at least 1000 pages present');
is($near_present, $rss_pages,
	'present pages near the touched ones = smaps Rss / page size: nothing else was mapped');
cmp_ok($vmpte_after - $big->{VmPTE}, '>=', 1000 * $psz / 1024,
	'each touched page, 2MB apart or more, needed its own page-table page');

$big->{bg}->quit;
$node->stop;
done_testing();
