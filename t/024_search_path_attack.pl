# A database owner who owns the schema ptbm is installed into must not be
# able to plant code that ptbm's views or SQL bodies then run with the
# privileges of whoever reads them (the CVE-2018-1058 pattern).
#
# The list of operators and functions to shadow is not written by hand: it
# is what pg_depend says the extension's members use, after CREATE
# EXTENSION in a clean database.  For every operator and function name on
# that list the attacker plants, in public, one for every combination of
# argument types that an expression could hand it (the types of the
# originals plus the numeric, text and oid families), each of which logs
# that it ran and tries to make the attacker superuser.  Then a superuser
# installs the extension (fresh, and the way from 1.0 up), reads every
# view and calls every SQL-language function, and the test checks that
#   - nothing of the extension depends on an object outside pg_catalog
#     (other than the extension's own), and
#   - the planted code never ran: its log is empty, the attacker is not
#     superuser.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ptbm_node('attack');
$node->start;

# ---- what the extension's members use, from pg_depend ---------------------
$node->safe_psql('postgres', 'CREATE DATABASE probe');
$node->safe_psql('probe', 'CREATE EXTENSION ptbm');

# members of the extension, and the rewrite rules of member views
my $members = q{
	WITH m AS (
		SELECT classid, objid FROM pg_depend
		WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ptbm')
	)
	SELECT classid, objid FROM m
	UNION
	SELECT 'pg_rewrite'::regclass, r.oid
	FROM m JOIN pg_rewrite r ON m.classid = 'pg_class'::regclass AND r.ev_class = m.objid
};

# What they use.  pg_depend records no dependency on pinned objects (the
# built-in catalog), so in a clean database it would name none of them:
# the list comes from the expression trees that the catalogs store for the
# members (view rules, parameter defaults, SQL bodies), the very trees from
# which pg_depend's entries are made, plus pg_depend for anything unpinned.
my $trees = $node->safe_psql('probe', qq{
	WITH m AS ($members)
	SELECT r.ev_action::text FROM m JOIN pg_rewrite r
	  ON m.classid = 'pg_rewrite'::regclass AND r.oid = m.objid
	UNION ALL
	SELECT coalesce(p.proargdefaults::text, '') || coalesce(p.prosqlbody::text, '')
	FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
});
my (%opoids, %funcoids);
$opoids{$1} = 1 while $trees =~ /:(?:opno|sortop|eqop) (\d+)/g;
$funcoids{$1} = 1 while $trees =~ /:(?:funcid|aggfnoid|winfnoid|opfuncid) (\d+)/g;
my $unpinned = $node->safe_psql('probe', qq{
	WITH m AS ($members)
	SELECT d.refclassid::regclass::text || ' ' || d.refobjid
	FROM m JOIN pg_depend d ON d.classid = m.classid AND d.objid = m.objid
	WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
	  AND NOT EXISTS (SELECT 1 FROM m m2 WHERE m2.classid = d.refclassid AND m2.objid = d.refobjid)
});
foreach (split /\n/, $unpinned)
{
	my ($cls, $oid) = split / /;
	($cls eq 'pg_proc' ? \%funcoids : \%opoids)->{$oid} = 1;
}
my $opin = join(',', sort keys %opoids) || '0';
my $fnin = join(',', sort keys %funcoids) || '0';
my $used = $node->safe_psql('probe', qq{
	SELECT 'o', o.oprname::text,
	       CASE WHEN o.oprleft = 0 THEN '-' ELSE o.oprleft::regtype::text END,
	       CASE WHEN o.oprright = 0 THEN '-' ELSE o.oprright::regtype::text END,
	       o.oprresult::regtype::text
	FROM pg_operator o WHERE o.oid IN ($opin)
	UNION
	SELECT 'f', p.proname::text, pg_catalog.array_to_string(p.proargtypes::regtype[], ','), '',
	       p.prorettype::regtype::text
	FROM pg_proc p WHERE p.oid IN ($fnin)
	  AND p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
	ORDER BY 1, 2
});
my (@ops, @funcs);
foreach my $line (split /\n/, $used)
{
	my ($what, $name, $a1, $a2, $ret) = split /\|/, $line;
	if ($what eq 'o') { push @ops, [ $name, $a1, $a2, $ret ]; }
	else { push @funcs, [ $name, [ $a1 eq '' ? () : split(/,/, $a1) ], $ret ]; }
}
note('the extension uses operators: ' . join(' ', map { "$_->[0]($_->[1],$_->[2])" } @ops));
note('and functions: ' . join(' ', map { "$_->[0](" . join(',', @{ $_->[1] }) . ')' } @funcs));
cmp_ok(scalar(@ops) + scalar(@funcs), '>', 0,
	'pg_depend names operators or functions that the extension uses');

# ---- the attacker's plants ------------------------------------------------
my @family = ('smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'text', 'oid');

sub types_for
{
	my %t = map { $_ => 1 } @family, grep { $_ ne '-' } @_;
	return sort keys %t;
}

sub plant_sql
{
	my $sql = q{
CREATE TABLE public.attack_log (what text);
GRANT INSERT ON public.attack_log TO PUBLIC;
};
	my $n = 0;
	my %planted;    # two originals of one name may want the same shadow
	my $body = sub {
		my ($what, $ret) = @_;
		$n++;
		return qq{\$\$ BEGIN
	INSERT INTO public.attack_log VALUES ('$what');
	BEGIN EXECUTE 'ALTER ROLE attacker SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
	RETURN NULL;
END \$\$};
	};
	foreach my $op (@ops)
	{
		my ($name, $l, $r, $ret) = @$op;
		foreach my $x ($l eq '-' ? ('-') : types_for($l, $r))
		{
			foreach my $y ($r eq '-' ? ('-') : types_for($l, $r))
			{
				my @args = grep { $_ ne '-' } ($x, $y);
				next if $planted{"o $name $x $y"}++;
				my $f = "public.shadow_op_$n";
				$sql .= "CREATE FUNCTION $f(" . join(', ', @args) . ") RETURNS $ret LANGUAGE plpgsql AS "
				  . $body->("operator $name($x,$y)", $ret) . ";\n";
				$sql .= "CREATE OPERATOR public.$name (FUNCTION = $f"
				  . ($x ne '-' ? ", LEFTARG = $x" : '')
				  . ($y ne '-' ? ", RIGHTARG = $y" : '') . ");\n";
			}
		}
	}
	foreach my $fn (@funcs)
	{
		my ($name, $args, $ret) = @$fn;
		my @combos = ([]);
		foreach my $a (@$args)
		{
			@combos = map { my $c = $_; map { [ @$c, $_ ] } types_for($a) } @combos;
		}
		foreach my $c (@combos)
		{
			next if $planted{"f $name @$c"}++;
			$sql .= "CREATE FUNCTION public.$name(" . join(', ', @$c) . ") RETURNS $ret LANGUAGE plpgsql AS "
			  . $body->("function $name(" . join(',', @$c) . ')', $ret) . ";\n";
		}
	}
	return ($sql, $n);
}

# A superuser reads every view of the extension and calls every SQL body.
sub read_everything
{
	my ($db) = @_;
	my $views = $node->safe_psql($db, q{
		SELECT c.oid::regclass FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
		WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind = 'v'
		  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ptbm')});
	my $sqlfuncs = $node->safe_psql($db, q{
		SELECT p.oid::regprocedure FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
		WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e' AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql')
		  AND p.pronargs = 0
		  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ptbm')});
	foreach my $v (split /\n/, $views)
	{
		my ($rc, $out, $err) = $node->psql($db, "SET client_min_messages = warning; SELECT * FROM $v");
		is($rc, 0, "$db: a superuser reads $v") or note($err);
	}
	foreach my $f (split /\n/, $sqlfuncs)
	{
		(my $call = $f) =~ s/\(\)$//;
		my ($rc, $out, $err) = $node->psql($db, "SET client_min_messages = warning; SELECT * FROM $call()");
		is($rc, 0, "$db: a superuser calls $f") or note($err);
	}
	return;
}

sub no_foreign_dependencies
{
	my ($db) = @_;
	my $foreign = $node->safe_psql($db, qq{
		WITH m AS ($members)
		SELECT pg_describe_object(m.classid, m.objid, 0) || ' uses ' ||
		       pg_describe_object(d.refclassid, d.refobjid, 0)
		FROM m JOIN pg_depend d ON d.classid = m.classid AND d.objid = m.objid
		WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
		  AND NOT EXISTS (SELECT 1 FROM m m2 WHERE m2.classid = d.refclassid AND m2.objid = d.refobjid)
		  AND COALESCE((SELECT pronamespace FROM pg_proc WHERE d.refclassid = 'pg_proc'::regclass AND oid = d.refobjid),
		               (SELECT oprnamespace FROM pg_operator WHERE d.refclassid = 'pg_operator'::regclass AND oid = d.refobjid))
		      <> 'pg_catalog'::regnamespace
		ORDER BY 1});
	is($foreign, '', "$db: nothing of the extension uses an object outside pg_catalog");
	return;
}

sub planted_never_ran
{
	my ($db) = @_;
	is($node->safe_psql($db, 'SELECT string_agg(DISTINCT what, \'; \') FROM public.attack_log'),
		'', "$db: the planted code never ran");
	is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'attacker'}),
		'f', "$db: the attacker is not superuser");
	return;
}

$node->safe_psql('postgres', 'CREATE ROLE attacker LOGIN');
my ($plants, $nplants) = plant_sql();

# a fresh install, then the way from 1.0 (ALTER EXTENSION ... UPDATE)
foreach my $case ([ 'fresh', '' ], [ 'from_1_0', q{VERSION '1.0'} ])
{
	my ($db, $version) = @$case;
	$db = "victim_$db";
	$node->safe_psql('postgres', 'ALTER ROLE attacker NOSUPERUSER');
	# the database owner owns public (pg_database_owner) in PostgreSQL 15
	$node->safe_psql('postgres', "CREATE DATABASE $db OWNER attacker");
	$node->safe_psql($db, "SET ROLE attacker;\n$plants");
	is($node->safe_psql($db, q{SELECT count(*) > 0 FROM pg_proc WHERE pronamespace = 'public'::regnamespace}),
		't', "$db: the attacker planted $nplants operators and the functions");
	$node->safe_psql($db, "CREATE EXTENSION ptbm $version");
	$node->safe_psql($db, 'ALTER EXTENSION ptbm UPDATE') if $version;
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'ptbm'}),
		$node->safe_psql('probe', q{SELECT extversion FROM pg_extension WHERE extname = 'ptbm'}),
		"$db: the extension is at the default version");
	no_foreign_dependencies($db);
	read_everything($db);
	# and pg_monitor, the role the views are granted to
	$node->safe_psql($db, q{SET ROLE pg_monitor; SELECT count(*) FROM ptbm_backend_memory});
	planted_never_ran($db);
}

$node->stop;
done_testing();
