
# The stress run in its short form: test/stress/run.sh with the same
# pgbench scripts, a few seconds per region kind (shared_anon, private_anon,
# shared_memfd, shared_file) and 8 clients mixing every function.  Per kind:
# transactions were run, no client was aborted, the server logged no error,
# nothing crashed, and the clients' own pages and the sentinels hold what
# the checksum kept by the run says.
#
# PTBM_STRESS_SECONDS and PTBM_STRESS_CLIENTS lengthen it; the full run is
# "test/stress/run.sh" (60 s per kind, 16 clients).

use strict;
use warnings;
use FindBin;
use File::Basename qw(dirname);
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $secs = $ENV{PTBM_STRESS_SECONDS} // 5;
my $clients = $ENV{PTBM_STRESS_CLIENTS} // 8;
my $runner = "$FindBin::RealBin/../test/stress/run.sh";
my @kinds = qw(shared_anon private_anon shared_memfd shared_file);

# the PostgreSQL whose binaries the TAP suite uses
my $postgres = `command -v postgres`;
chomp $postgres;
my $pg_config = $ENV{PG_CONFIG}
  // ($postgres && -x dirname($postgres) . '/pg_config' ? dirname($postgres) . '/pg_config' : undef);

my $work = "${PostgreSQL::Test::Utils::tmp_check}/stress_021";
my %env = (
	%ENV,
	STRESS_WORKDIR => $work,
	STRESS_KINDS => join(' ', @kinds),
	STRESS_CHURN => 0);
$env{PG_CONFIG} = $pg_config if $pg_config;

my ($out, $err) = ('', '');
my $ok;
{
	local %ENV = %env;
	$ok = IPC::Run::run([ 'bash', $runner, $secs, $clients ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60 + 4 * ($secs + 30)));
}
note $out;
note "stderr: $err" if $err ne '';

my %r;
foreach my $line (split /\n/, $out)
{
	next unless $line =~ /^RESULT (.*)$/;
	my %kv = map { split /=/, $_, 2 } split / /, $1;
	$r{ $kv{kind} } = \%kv;
}

foreach my $kind (@kinds)
{
	my $k = $r{$kind};
	ok($k, "$kind: the stress run reported") or next;
	cmp_ok($k->{tx}, '>', 0, "$kind: $k->{tx} transactions ($k->{tps} tps)");
	is($k->{aborted}, 0, "$kind: no client aborted");
	is($k->{errors}, 0, "$kind: the server logged no error");
	is($k->{crashes}, 0, "$kind: no crash, the same postmaster");
	like($k->{checksum}, qr/^(ok|in-run)$/,
		"$kind: checksum $k->{checksum} (own-page counters $k->{counters} for $k->{own_tx} transactions)");
	is($k->{verdict}, 'ok', "$kind: verdict");
}
like($out, qr/^stress: PASS$/m, 'the stress run passes') or diag($out);
ok($ok, 'run.sh exited 0');

done_testing();
