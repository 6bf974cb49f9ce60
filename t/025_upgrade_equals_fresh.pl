# The way up from every earlier version ends in the same objects as a fresh
# install of the default version: the same members with the same
# definitions, labels, defaults and privileges (what \dx+ lists, and what
# each of those objects is).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ptbm_node('upgrade');
$node->start;

# Every member of the extension, described with what defines it.
my $describe = q{
	SELECT pg_describe_object(d.classid, d.objid, 0) || ' | ' ||
	       CASE d.classid
	         WHEN 'pg_proc'::regclass THEN
	           (SELECT pg_get_functiondef(p.oid) || ' acl=' || coalesce(p.proacl::text, '')
	            FROM pg_proc p WHERE p.oid = d.objid)
	         WHEN 'pg_class'::regclass THEN
	           (SELECT c.relkind::text || ' ' || coalesce(pg_get_viewdef(c.oid), '') ||
	                   ' acl=' || coalesce(c.relacl::text, '')
	            FROM pg_class c WHERE c.oid = d.objid)
	         WHEN 'pg_type'::regclass THEN
	           (SELECT t.typtype::text || ' ' || coalesce(
	                     (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
	                      FROM pg_enum e WHERE e.enumtypid = t.oid), '')
	            FROM pg_type t WHERE t.oid = d.objid)
	         ELSE '' END
	FROM pg_depend d
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ptbm')
	ORDER BY 1
};

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION ptbm');
my $version = $node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'ptbm'});
my $want = $node->safe_psql('fresh', $describe);
my $want_dx = $node->safe_psql('fresh', '\dx+ ptbm');
cmp_ok(scalar(split /\n/, $want), '>', 10, "fresh $version: the members are described");

# every version an install or update script names
my $share = `pg_config --sharedir`;
chomp $share;
my %seen;
my @versions = sort grep { !$seen{$_}++ }
  map { m{/ptbm--([0-9.]+)(?:--([0-9.]+))?\.sql$} ? ($1, $2 // ()) : () }
  glob("$share/extension/ptbm--*.sql");
foreach my $from (grep { $_ ne $version } @versions)
{
	(my $db = "from_$from") =~ s/\./_/g;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION ptbm VERSION '$from'");
	$node->safe_psql($db, 'ALTER EXTENSION ptbm UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'ptbm'}),
		$version, "from $from: ALTER EXTENSION ptbm UPDATE reaches $version");
	is($node->safe_psql($db, '\dx+ ptbm'), $want_dx, "from $from: \\dx+ lists the same objects as a fresh install");
	is($node->safe_psql($db, $describe), $want, "from $from: every object is defined as in a fresh install");
}
cmp_ok(scalar(@versions), '>=', 2, 'there are versions to update from: ' . join(' ', @versions));

$node->stop;
done_testing();
