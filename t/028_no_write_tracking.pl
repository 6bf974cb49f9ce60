# ptbm.track_writes = on on a kernel that cannot track writes per process
# (before Linux 6.7, or without userfaultfd: simulated by a seccomp filter
# that makes the userfaultfd system call fail with ENOSYS for the server and
# every process it forks).  Nothing done in the login path may fail a
# connection: every connection works, superuser or not, and the server
# says once, in its log at start, that tracking is unavailable.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use File::Basename;
use IPC::Run;
use PtbmTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = dirname(__FILE__) . '/../test/without_syscall.c';
my $launcher = "${PostgreSQL::Test::Utils::tmp_check}/without_syscall";
system('cc', '-O', '-o', $launcher, $src) == 0 or BAIL_OUT("could not build $src");

my $node = ptbm_node('notrack', 'ptbm.region_size' => '16MB', 'ptbm.track_writes' => 'on');
# WARNINGs in the server log (the suites' default, log, leaves them out)
$node->append_conf('postgresql.conf', "log_min_messages = warning\n");

# the server, and all it forks, under the filter
my ($out, $err);
IPC::Run::run(
	[ $launcher, 'userfaultfd', 'pg_ctl', '-w', '-D', $node->data_dir, '-l', $node->logfile,
		'-o', '--cluster-name=notrack', 'start' ],
	'>', \$out, '2>', \$err)
  or BAIL_OUT("pg_ctl start under the filter: $out$err");
$node->_update_pid(1);

my @c = $node->psql('postgres', 'CREATE EXTENSION ptbm; SELECT 1');
is($c[0], 0, 'a superuser connects') or note($c[2]);
is($node->safe_psql('postgres', 'SELECT write_tracking IS NULL FROM ptbm_region()'),
	't', 'ptbm_region() reports no write tracking on this kernel');

$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
my $failed = 0;
for my $i (1 .. 20)
{
	my ($rc, $o, $e) = $node->psql('postgres', 'SELECT 1', extra_params => [ '-U', $i % 2 ? 'plain' : $node->safe_psql('postgres', 'SELECT current_user') ]);
	$failed++ if $rc != 0 || $o ne '1';
	note("connection $i: $e") if $rc != 0;
}
is($failed, 0, '20 connections, superuser and not, all work');

my $log = slurp_file($node->logfile);
my @warnings = ($log =~ /WARNING:  ptbm.track_writes is on, but this kernel cannot track writes per process/g);
is(scalar(@warnings), 1, 'the server warned once');
like($log, qr/WARNING:  ptbm.track_writes is on, but this kernel cannot track writes per process\n[^\n]*DETAIL:  [^\n]*userfaultfd/,
	'the warning says what is missing');
unlike($log, qr/FATAL|could not track/, 'no connection failed, no backend complained');

# an explicit call still says why it cannot
my ($rc, $o, $e) = $node->psql('postgres', 'SELECT * FROM ptbm_track_writes()');
like($e, qr/ERROR:  this kernel cannot track writes per process/, 'ptbm_track_writes() gives a clear error');

$node->stop;
done_testing();
