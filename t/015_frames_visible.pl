# Frame numbers, page counts and page flags, where the kernel shows them.
#
# The kernel shows frame numbers in pagemap, /proc/kpagecount and
# /proc/kpageflags only to processes with CAP_SYS_ADMIN, which a server
# never has in the other suites: there pfn, mapcount and flags are NULL, and
# those tests check that side.  scripts/test.sh, as root, runs this file a
# second time with CAP_SYS_ADMIN as an ambient capability of the postgres
# user (setpriv), so that the server and the test have it.  Without it the
# file skips.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ptbm_node('frames');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
if ($node->safe_psql('postgres',
		'SET client_min_messages = warning; SELECT frames_visible FROM ptbm_region()') ne 't')
{
	$node->stop;
	plan skip_all => 'the kernel hides frame numbers from this server '
	  . '(scripts/test.sh runs this file as root with CAP_SYS_ADMIN)';
}

sub sql
{
	my ($query, @opts) = @_;
	return $node->safe_psql('postgres',
		"SET client_min_messages = warning; $query", @opts);
}

# /proc/kpagecount and /proc/kpageflags are root's files: a server with
# CAP_SYS_ADMIN alone sees frame numbers but cannot open them, and says so.
# This process has the server's capabilities, so it can tell which case
# this run is; scripts/test.sh runs both.
my $kpage = open(my $kfh, '<', '/proc/kpagecount') ? 1 : 0;
close $kfh if $kpage;
note($kpage ? 'kpagecount and kpageflags readable' : 'kpagecount and kpageflags not readable');

# A writes pages 0-63; B reads pages 0-31 (fault-around may map a few more
# of A's pages for B: they are in the page cache).
my ($a, $apid) = ptbm_session($node, 'A');
my ($b, $bpid) = ptbm_session($node, 'B');
$a->query_safe("SELECT pages FROM ptbm_touch(0, 64, 'write')");
$b->query_safe('SELECT pages FROM ptbm_touch(0, 32)');

is(sql("SELECT count(*) FILTER (WHERE present), count(pfn), count(*) FILTER (WHERE pfn > 0)
        FROM ptbm_pte($apid, 0, 128)"),
	'64|64|64', 'A: every present page, and only those, has a frame number');
is(sql("SELECT count(DISTINCT pfn) FROM ptbm_pte($apid, 0, 64)"),
	'64', 'A: each page its own frame');
is(sql("SELECT count(*) FILTER (WHERE b.present) >= 32,
               count(*) FILTER (WHERE b.present) = count(*) FILTER (WHERE a.pfn = b.pfn)
        FROM ptbm_pte($apid, 0, 64) a JOIN ptbm_pte($bpid, 0, 64) b USING (page)"),
	't|t', 'every page present in B maps the very frame A wrote');
is(sql("SELECT count(*) FILTER (WHERE processes > 0), bool_and(same_frame)
        FROM ptbm_sharing(0, 64)"),
	'64|t', 'ptbm_sharing: one frame per page across the processes');

if ($kpage)
{
	# The page count is the number of processes mapping the frame, which
	# ptbm_sharing counts from the page tables; the exclusive bit is a page
	# count of 1.
	is(sql("SELECT count(mapcount), count(flags) FROM ptbm_pte($apid, 0, 64)"),
		'64|64', 'A: a page count and flags for every present page');
	is(sql("SELECT bool_and(mapcount = processes) FROM ptbm_sharing(0, 64) WHERE processes > 0"),
		't', 'ptbm_sharing: the page count equals the processes mapping the page');
	is(sql("SELECT bool_and(exclusive = (mapcount = 1)),
	               count(*) FILTER (WHERE exclusive) + count(b) FILTER (WHERE b)
	        FROM ptbm_pte($apid, 0, 64) a,
	             LATERAL (SELECT present FROM ptbm_pte($bpid, a.page, 1)) AS x(b)"),
		't|64', 'the exclusive bit is a page count of 1: pages B does not map');
	is(sql("SELECT bool_and(flags @> '{mmap,uptodate,dirty,swapbacked}'), bool_or('anon' = ANY (flags))
	        FROM ptbm_pte($apid, 0, 64)"),
		't|f', 'flags of shared anonymous pages: mmap, uptodate, dirty, swapbacked, not anon');
}
else
{
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT count(pfn), count(mapcount), count(flags) FROM ptbm_pte($apid, 0, 64)");
	is($out, '64|0|0', 'frames without kpagecount and kpageflags: mapcount and flags NULL');
	like($err, qr/could not open file "\/proc\/kpagecount".*\n.*Column mapcount is NULL/,
		'and the server says why, for mapcount');
	like($err, qr/could not open file "\/proc\/kpageflags".*\n.*Column flags is NULL/,
		'and for flags');
}

# Roles: frames for superusers and members of pg_read_server_files only.
$node->safe_psql('postgres',
	'CREATE ROLE mon LOGIN IN ROLE pg_monitor;
	 CREATE ROLE reader LOGIN IN ROLE pg_monitor, pg_read_server_files');
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT count(*) FILTER (WHERE present), count(pfn) FROM ptbm_pte($apid, 0, 64)",
	extra_params => [ '-U', 'mon' ]);
is($out, '64|0', 'pg_monitor alone: present pages, no frames');
like($err,
	qr/frame numbers are shown only to superusers and members of pg_read_server_files/,
	'pg_monitor alone: told why, once');
is(sql("SELECT count(pfn) FROM ptbm_pte($apid, 0, 64)", extra_params => [ '-U', 'reader' ]),
	'64', 'pg_read_server_files: frames');

$_->quit for ($a, $b);
$node->stop;

# private_anon: a read of an untouched page maps the kernel's zero page; a
# write copies it into an anonymous frame of the process's own.
my $priv = ptbm_node('frames_private', 'ptbm.region_kind' => 'private_anon');
$priv->start;
$priv->safe_psql('postgres', 'CREATE EXTENSION ptbm');
my $got = $priv->safe_psql('postgres',
	"SET client_min_messages = warning;
	 SELECT pages FROM ptbm_touch(0, 16);
	 SELECT pages FROM ptbm_touch(16, 16, 'write');
	 CREATE TEMP TABLE z AS SELECT * FROM ptbm_pte(pg_backend_pid(), 0, 32);
	 SELECT count(*) FILTER (WHERE page < 16 AND zero_page AND pfn > 0)
	        || '|' || count(DISTINCT pfn) FILTER (WHERE page >= 16 AND NOT zero_page AND exclusive)
	        || '|' || (count(DISTINCT pfn) FILTER (WHERE page < 16)
	                   + count(DISTINCT pfn) FILTER (WHERE page >= 16)
	                   = count(DISTINCT pfn))
	 FROM z");
is((split /\n/, $got)[-1], '16|16|true',
	'private_anon: reads map the zero page, writes 16 frames of its own, none shared between them');
if ($kpage)
{
	is($priv->safe_psql('postgres',
			"SET client_min_messages = warning;
			 SELECT pages FROM ptbm_touch(0, 16);
			 SELECT pages FROM ptbm_touch(16, 16, 'write');
			 SELECT count(*) FILTER (WHERE page < 16 AND 'zero_page' = ANY (flags))
			        || '|' || count(*) FILTER (WHERE page >= 16 AND 'anon' = ANY (flags) AND mapcount = 1)
			 FROM ptbm_pte(pg_backend_pid(), 0, 32)") =~ s/.*\n//sr,
		'16|16', 'private_anon: kpageflags says zero_page for the reads, anon for the writes');
}
$priv->stop;

done_testing();
