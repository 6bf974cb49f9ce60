
# Without shared_preload_libraries the extension installs, and every
# function fails cleanly with SQLSTATE 55000 and a hint, leaving the session
# usable.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PtbmTest;

my $node = ptbm_node('not_preloaded', shared_preload_libraries => undef);
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'ptbm is not preloaded');
is($node->safe_psql('postgres',
		q{CREATE EXTENSION ptbm;
		  SELECT extversion = default_version FROM pg_extension, pg_available_extensions
		  WHERE extname = 'ptbm' AND name = 'ptbm'}),
	't', 'CREATE EXTENSION ptbm works without the preload');

my @calls = (
	[ 'ptbm_region', 'SELECT * FROM ptbm_region();' ],
	[ 'ptbm_pte', 'SELECT * FROM ptbm_pte();' ],
	[ 'ptbm_pte(pid)', 'SELECT * FROM ptbm_pte(pg_backend_pid(), 0, 1);' ],
	[ 'ptbm_touch', 'SELECT * FROM ptbm_touch(0);' ],
	[ 'ptbm_write', q{SELECT ptbm_write(0, '\x00');} ],
	[ 'ptbm_read', 'SELECT ptbm_read(0, 1);' ],);

# one psql script, one backend: each call fails, the next one still runs
my $script = "\\set VERBOSITY verbose\n";
foreach my $c (@calls)
{
	$script .= "\\warn '=== $c->[0]'\n$c->[1]\n";
}
$script .= "\\warn '=== end'\nSELECT 'still here';\n";

my ($stdout, $stderr);
my $ret = $node->psql(
	'postgres', $script,
	stdout => \$stdout,
	stderr => \$stderr,
	on_error_stop => 0);
note "stderr:\n$stderr";

# psql exits with 0 when ON_ERROR_STOP is off, whatever failed
is($ret, 0, 'psql ran the whole script');
is($stdout, 'still here', 'the session goes on after the errors');

my %err;
foreach my $chunk (split /^=== /m, $stderr)
{
	next if $chunk eq '';
	my ($name, $text) = split /\n/, $chunk, 2;
	$err{$name} = $text // '';
}

foreach my $c (@calls)
{
	my $e = $err{ $c->[0] } // '';
	like(
		$e,
		qr/^(?:psql:\S+ )?ERROR:\s+55000: ptbm must be loaded via shared_preload_libraries$/m,
		"$c->[0]: fails with SQLSTATE 55000");
	like($e, qr/^HINT:\s+.*shared_preload_libraries/m,
		"$c->[0]: hint names shared_preload_libraries");
}
is($err{end}, '', 'SELECT after the errors: no error');

# a backend that calls them keeps working; nothing was cached as loaded
is( $node->safe_psql(
		'postgres', q{
		DO $$
		BEGIN
			PERFORM ptbm_region();
		EXCEPTION WHEN object_not_in_prerequisite_state THEN
			RAISE NOTICE 'caught';
		END $$;
		SELECT 1}),
	'1',
	'the error is catchable as object_not_in_prerequisite_state');

$node->stop;
done_testing();
