
# Bad ptbm settings stop the server at start with FATAL and a HINT, leave
# nothing behind, and the server starts again once the setting is fixed.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PtbmTest;

my $node = ptbm_node('bad', 'ptbm.region_size' => '8MB');
my $datadir = $node->data_dir;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ptbm');
$node->stop;

# pg_ctl status: 3 = no server running in this data directory
sub pg_ctl_status
{
	my ($out, $err);
	IPC::Run::run([ 'pg_ctl', 'status', '-D', $datadir ],
		'>', \$out, '2>', \$err);
	return $? >> 8;
}

# Nothing of a failed start may remain, and a good setting starts.
sub starts_after_fix
{
	my ($name, %settings) = @_;

	ok(!-e "$datadir/postmaster.pid", "$name: no postmaster.pid left behind");
	is(pg_ctl_status(), 3, "$name: no server running");

	ptbm_settings($node, 'ptbm.region_size' => '8MB', %settings);
	ok($node->start(fail_ok => 1), "$name: starts once the setting is fixed");
	is($node->safe_psql('postgres', 'SELECT size, generation FROM ptbm_region()'),
		(8 * 1024 * 1024) . '|1',
		"$name: the fixed region is mapped");
	$node->stop;
	return;
}

# The start fails; the log has the FATAL, a HINT right after it, and no
# sign that the server got further.
sub check_failed_start
{
	my ($name, $ret, $offset, $fatal) = @_;

	is($ret, 0, "$name: the server does not start");
	my $log = slurp_file($node->logfile, $offset);
	like($log, qr/FATAL:\s+$fatal/, "$name: FATAL in the log");
	like($log, qr/FATAL:\s+$fatal[^\n]*\n(?:[^\n]*DETAIL:[^\n]*\n)?[^\n]*HINT:\s+\S/,
		"$name: the FATAL has a HINT");
	unlike($log, qr/ready to accept connections/,
		"$name: the server never accepted connections");
	return;
}

sub fails_to_start
{
	my ($name, $fatal, %settings) = @_;

	ptbm_settings($node, %settings);
	my $offset = -s $node->logfile;
	my $ret = $node->start(fail_ok => 1);
	check_failed_start($name, $ret, $offset, $fatal);
	return;
}

fails_to_start('region_size = 0', qr/ptbm.region_size must be at least one page/,
	'ptbm.region_size' => '0');
starts_after_fix('region_size = 0');

# a size below one page is one page
ptbm_settings($node, 'ptbm.region_size' => '1kB');
$node->start;
is($node->safe_psql('postgres', 'SELECT size, pages FROM ptbm_region()'),
	page_size() . '|1', 'region_size = 1kB: rounded up to one page');
$node->stop;

foreach my $bad ('abc', '3TB', '-1MB')
{
	fails_to_start(
		"region_size = $bad",
		qr/invalid value for parameter "ptbm.region_size": "\Q$bad\E"/,
		'ptbm.region_size' => $bad);
	starts_after_fix("region_size = $bad");
}

fails_to_start(
	'region_kind = bogus',
	qr/invalid value for parameter "ptbm.region_kind": "bogus"/,
	'ptbm.region_size' => '8MB',
	'ptbm.region_kind' => 'bogus');
starts_after_fix('region_kind = bogus');

# ---- the region file cannot be created ----
mkdir "$datadir/pg_dynshmem/ptbm_region" or die "could not create directory: $!";
fails_to_start(
	'shared_file over a directory',
	qr/could not create the ptbm region file "[^"]*ptbm_region": Is a directory/,
	'ptbm.region_size' => '8MB',
	'ptbm.region_kind' => 'shared_file');
ok(-d "$datadir/pg_dynshmem/ptbm_region", 'shared_file over a directory: directory untouched');
rmdir "$datadir/pg_dynshmem/ptbm_region" or die "could not remove directory: $!";
starts_after_fix('shared_file over a directory',
	'ptbm.region_kind' => 'shared_file');
is(-s "$datadir/pg_dynshmem/ptbm_region", 8 * 1024 * 1024,
	'shared_file: the file was created once the directory was gone');

# ---- whatever is at the file's name is never followed nor reused ----
# The region file is created anew at every start; a symbolic link or a
# hard link at its name is removed (never its target), and the log says so.
my $victim = "${PostgreSQL::Test::Utils::tmp_check}/victim";

sub write_victim
{
	open my $vfh, '>', $victim or die $!;
	print $vfh "precious data";
	close $vfh;
	return;
}

sub replaced
{
	my ($name, $warning) = @_;
	ptbm_settings($node, 'ptbm.region_size' => '8MB', 'ptbm.region_kind' => 'shared_file');
	my $offset = -s $node->logfile;
	ok($node->start(fail_ok => 1), "shared_file over $name: starts");
	like(slurp_file($node->logfile, $offset),
		qr/LOG:  replacing "[^"]*ptbm_region": it was $warning/,
		"shared_file over $name: the log says what was replaced");
	is(slurp_file($victim), 'precious data', "shared_file over $name: its target untouched");
	my @st = lstat("$datadir/pg_dynshmem/ptbm_region");
	ok(-f _ && !-l _ && $st[3] == 1, "shared_file over $name: a new regular file with one link");
	is($st[7], 8 * 1024 * 1024, "shared_file over $name: of the region's size");
	$node->stop;
	return;
}

write_victim();
unlink "$datadir/pg_dynshmem/ptbm_region";
symlink($victim, "$datadir/pg_dynshmem/ptbm_region") or die "symlink: $!";
replaced('a symbolic link', 'a symbolic link');

write_victim();
unlink "$datadir/pg_dynshmem/ptbm_region";
link($victim, "$datadir/pg_dynshmem/ptbm_region") or die "link: $!";
replaced('a hard link', 'a file with more than one link');
is((stat $victim)[3], 1, 'shared_file over a hard link: the other name keeps its file');

# pg_dynshmem itself a symbolic link: the file is never created through it
my $elsewhere = "${PostgreSQL::Test::Utils::tmp_check}/elsewhere";
mkdir $elsewhere or die $!;
rename("$datadir/pg_dynshmem", "$datadir/pg_dynshmem.real") or die $!;
symlink($elsewhere, "$datadir/pg_dynshmem") or die $!;
fails_to_start(
	'pg_dynshmem a symbolic link',
	qr/could not open directory "[^"]*pg_dynshmem" for the ptbm region file: (Too many levels of symbolic links|Not a directory)/,
	'ptbm.region_size' => '8MB',
	'ptbm.region_kind' => 'shared_file');
ok(!-e "$elsewhere/ptbm_region", 'pg_dynshmem a symbolic link: nothing created through it');
unlink "$datadir/pg_dynshmem" or die $!;
rename("$datadir/pg_dynshmem.real", "$datadir/pg_dynshmem") or die $!;
starts_after_fix('pg_dynshmem a symbolic link', 'ptbm.region_kind' => 'shared_file');

# ---- not enough address space: RLIMIT_AS below the region ----
# The limit (about 4GB) lets the server itself start (checked with a
# small region under the same limit) but not map 64GB.
my $ulimit_kb = 4_000_000;

sub pg_ctl_start_limited
{
	my $cmd = sprintf(
		'ulimit -v %d && exec pg_ctl -w -D "%s" -l "%s" -o "--cluster-name=bad" start',
		$ulimit_kb, $datadir, $node->logfile);
	my ($out, $err);
	IPC::Run::run([ 'bash', '-c', $cmd ], '>', \$out, '2>', \$err);
	note "pg_ctl start under ulimit -v $ulimit_kb: $out$err";
	return $? == 0 ? 1 : 0;
}

sub pg_ctl_stop
{
	my ($out, $err);
	IPC::Run::run([ 'pg_ctl', '-w', '-D', $datadir, '-m', 'fast', 'stop' ],
		'>', \$out, '2>', \$err);
	return $? == 0 ? 1 : 0;
}

# These starts bypass $node->start, so the node does not know the server is
# up and would not stop it at exit: stop it here whatever happens.
ptbm_settings($node, 'ptbm.region_size' => '16MB');
my $limited_ok = pg_ctl_start_limited();
ok($limited_ok, 'under the address-space limit, a 16MB region starts');
my $limited_size =
  eval { $node->safe_psql('postgres', 'SELECT size FROM ptbm_region()') };
ok(pg_ctl_stop(), 'stopped the limited server') if $limited_ok;
is($limited_size, 16 * 1024 * 1024,
	'under the limit: the 16MB region is mapped');

ptbm_settings($node, 'ptbm.region_size' => '64GB');
my $offset = -s $node->logfile;
my $ret = pg_ctl_start_limited();
pg_ctl_stop() if $ret;
check_failed_start('64GB under ulimit -v', $ret, $offset,
	qr/could not map the ptbm region of 68719476736 bytes \(shared_anon\): Cannot allocate memory/);
starts_after_fix('64GB under ulimit -v');

# and without the limit 64GB is fine
ptbm_settings($node, 'ptbm.region_size' => '64GB');
$node->start;
is($node->safe_psql('postgres', 'SELECT size FROM ptbm_region()'),
	64 * 1024 * 1024 * 1024, 'without the limit, 64GB maps');
$node->stop;

done_testing();
