# Per-backend write tracking across backend lifetimes.
#  - ptbm.track_writes = on: every client backend registers itself at start
#    (registration is per process; fork passes none on).
#  - a tracking backend that exits leaves nothing behind: no process of the
#    cluster keeps a write-protect registration of the region (VmFlags "uw").
#  - resetting another backend's set needs superuser, or EXECUTE on
#    ptbm_written_reset granted by one.
#  - the page-table cost of tracking: write-protecting builds the page tables
#    of the whole range in the tracking backend.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ptbm_node('writes', 'ptbm.region_size' => '256MB');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
my ($mech) = $node->safe_psql('postgres', 'SELECT write_tracking FROM ptbm_region()');
plan skip_all => 'this kernel cannot track writes per process' if $mech eq '';

my ($base, $size) = split /\|/, $node->safe_psql('postgres', 'SELECT base, size FROM ptbm_region()');

sub uw_processes
{
	my @pids = split /\n/, $node->safe_psql('postgres', 'SELECT pid FROM ptbm_backends()');
	return grep {
		my $sm = eval { region_smaps($_, $base, $size) };
		my $tracks = 0;
		if ($sm && open my $fh, '<', "/proc/$_/smaps")
		{
			my $in = 0;
			while (my $l = <$fh>)
			{
				if ($l =~ /^([0-9a-f]+)-/) { $in = hex($1) == hex($base); next; }
				$tracks = 1 if $in && $l =~ /^VmFlags:.*\buw\b/;
			}
		}
		$tracks;
	} @pids;
}

# a backend that tracks, writes, and exits
my $s = $node->background_psql('postgres');
my $spid = $s->query_safe('SELECT pg_backend_pid()');
my ($before, $after) = split /\|/, $s->query_safe(
	'SELECT page_table_before, page_table_after FROM ptbm_track_writes()');
note("tracking $size bytes: VmPTE $before -> $after bytes");
cmp_ok($after - $before, '>=', $size / 1024 / 1024 * 1024,
	'write-protecting the region builds its page tables (about 2 kB per MB)');
$s->query_safe("SELECT ptbm_write(7, 'x')");
is($node->safe_psql('postgres', "SELECT string_agg(first_page || '+' || pages, ',') FROM ptbm_written($spid)"),
	'7+1', 'another backend reads the tracking backend\'s set');
is(scalar(uw_processes()), 1, 'exactly one process of the cluster holds a registration');

# resetting another backend's set needs superuser
$node->safe_psql('postgres', 'CREATE ROLE wt_monitor IN ROLE pg_monitor');
my ($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE wt_monitor; SELECT * FROM ptbm_written($spid, true)");
like($err, qr/only superusers may reset/, 'pg_monitor may not reset another backend\'s set');
like($err, qr/HINT:.*ptbm_written_reset/, 'and is told of ptbm_written_reset');
is($node->safe_psql('postgres', "SET ROLE wt_monitor; SELECT count(*) FROM ptbm_written($spid)"),
	'1', 'pg_monitor may read it');
($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE wt_monitor; SELECT * FROM ptbm_written_reset($spid)");
like($err, qr/permission denied for function ptbm_written_reset/,
	'ptbm_written_reset: not without a grant');
$node->safe_psql('postgres', 'GRANT EXECUTE ON FUNCTION ptbm_written_reset(integer) TO wt_monitor');
is($node->safe_psql('postgres',
		"SET ROLE wt_monitor; SELECT string_agg(first_page || '+' || pages, ',') FROM ptbm_written_reset($spid)"),
	'7+1', 'ptbm_written_reset with a grant: returns the set as it resets it');
is($node->safe_psql('postgres', "SELECT count(*) FROM ptbm_written($spid)"),
	'0', 'the set is empty after the reset');
$s->query_safe("SELECT ptbm_write(9, 'y'), ptbm_write(7, 'z')");
is($node->safe_psql('postgres', "SELECT string_agg(first_page || '+' || pages, ',') FROM ptbm_written($spid)"),
	'7+1,9+1', 'writes after the reset are tracked again');

$s->quit;
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $spid");
is(scalar(uw_processes()), 0, 'after it exits, no process keeps a registration');

# ptbm.track_writes: every new client backend tracks from its start
$node->append_conf('postgresql.conf', "ptbm.track_writes = on\n");
$node->reload;
my $t = $node->background_psql('postgres');
my $tpid = $t->query_safe('SELECT pg_backend_pid()');
$t->query_safe('SELECT pages FROM ptbm_touch(100, 3, \'write\')');
is($node->safe_psql('postgres', "SELECT string_agg(first_page || '+' || pages, ',') FROM ptbm_written($tpid)"),
	'100+3', 'ptbm.track_writes: a new backend tracks from its start');
$t->quit;
$node->stop;
done_testing();
