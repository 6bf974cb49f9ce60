
# Hostile input.  A generator with a fixed-seed PRNG calls every function of
# ptbm thousands of times with boundary and random arguments: int64 and
# int32 edges, NULLs, first_page + page_count overflowing, unknown mode and
# method texts, bytea crossing page ends, pids of exited backends, of a
# process of the same OS user outside the cluster, of the test itself.
#
# Every call must end with the SQLSTATE a model of the README predicts:
# 00000, or a class 22 error (22023 for a bad argument, 22003 for a literal
# outside its type), or 42501 for a role without the privilege; write
# tracking adds 55000 (ptbm_written of a process that does not track) and
# 0A000 (a kernel that cannot track this kind).  Anything else (XX000,
# 58030, a lost connection) fails the test with the offending call.  A new
# function of the extension fails the test until it has a generator.  Around the run: the server never restarts (same postmaster, same
# pg_postmaster_start_time, no "terminated by signal" in the log), sentinel
# pages that no valid write or destructive eviction may reach keep their
# checksum, and every page of the region holds what the model says the
# successful calls left there.
#
# The seed is printed; PTBM_FUZZ_SEED=N replays a run, PTBM_FUZZ_SEED=random
# draws a new one; PTBM_FUZZ_CALLS=N sets the calls for shared_anon (the
# other kinds get a share of it).

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;

use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PtbmTest;

my $seed = $ENV{PTBM_FUZZ_SEED} // 20240611;
$seed = int(rand(2**31)) if $seed eq 'random';
my $ncalls = $ENV{PTBM_FUZZ_CALLS} // 20000;
note "PTBM_FUZZ_SEED=$seed PTBM_FUZZ_CALLS=$ncalls (set them to replay this run)";
srand($seed);

my $psz = page_size();
my $region_mb = 16;
my $pages = $region_mb * 1024 * 1024 / $psz;

# int64 and int32 edges
my $I64MAX = 9223372036854775807;
my $I64MIN = -9223372036854775807 - 1;
my $I32MAX = 2147483647;
my $I32MIN = -2147483648;

# Sentinel pages: written with random bytes at the start, never reachable by
# a valid write or a destructive eviction; everything else is scratch.
my @sentinel_runs = ([ 0, 8 ], [ $pages / 2 - 4, 8 ], [ $pages - 8, 8 ]);
my @scratch_runs = ([ 8, $pages / 2 - 12 ], [ $pages / 2 + 4, $pages / 2 - 12 ]);
my @sentinels = map { my ($f, $n) = @$_; ($f .. $f + $n - 1) } @sentinel_runs;

my $node = ptbm_node('hostile', 'ptbm.region_size' => "${region_mb}MB");
# no process may appear that the generator does not know of
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION ptbm;
	CREATE ROLE ptbm_fuzz_nobody;
	CREATE ROLE ptbm_fuzz_monitor IN ROLE pg_monitor;});

my $pm_pid = postmaster_pid($node);
my $pm_start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $log_offset = 0;

# A process of the same OS user that is not part of the cluster.
my $sleep_pid = fork() // die "fork: $!";
if ($sleep_pid == 0)
{
	exec 'sleep', '600' or die "exec sleep: $!";
}

# ---- values ---------------------------------------------------------------

sub pick { return $_[ int(rand(@_)) ] }
sub chance { return rand() < $_[0] }

# An argument: sql text, value (undef for NULL), and whether the literal is
# outside its SQL type (then the cast fails with 22003 before ptbm runs).
sub lit
{
	my ($v, $type) = @_;
	return { sql => "NULL::$type", val => undef, null => 1 } unless defined $v;
	my $oor = 0;
	if ($type eq 'integer')
	{
		$oor = 1 if $v > $I32MAX || $v < $I32MIN;
	}
	return { sql => "'$v'::$type", val => $v, null => 0, oor => $oor };
}

sub bigint_edges
{
	return (
		$I64MIN, $I64MIN + 1, -4294967297, -4294967296, -2147483649,
		$I32MIN, -65536, -$pages - 1, -$pages, -4097, -2, -1, 0, 1, 2,
		$pages - 2, $pages - 1, $pages, $pages + 1, 2 * $pages,
		$I32MAX, $I32MAX + 1, 4294967295, 4294967296,
		$I64MAX - $pages, $I64MAX - 1, $I64MAX,
		int(rand(2 * $pages)) - $pages / 2, int(rand(2**31)) * int(rand(2**31)) * (chance(0.5) ? 1 : -1));
}

sub int_edges
{
	return (
		$I32MIN, $I32MIN + 1, -65536, -4097, -$psz - 1, -$psz, -2, -1, 0, 1, 2,
		$psz - 2, $psz - 1, $psz, $psz + 1, 2 * $psz, 65535, 65536,
		$I32MAX - $psz, $I32MAX - 1, $I32MAX, int(rand(3 * $psz)) - $psz);
}

# page numbers outside the region: never touch anything
sub bad_page { return pick($I64MIN, $I64MIN + 1, $I32MIN, -$pages, -2, -1, $pages, $pages + 1, $I32MAX, $I64MAX - 1, $I64MAX) }

sub scratch_page
{
	my $r = pick(@scratch_runs);
	my $n = pick(0, $r->[1] - 1, int(rand($r->[1])));
	return $r->[0] + $n;
}

sub any_page { return chance(0.3) ? pick(0, $pages - 1, @sentinels) : int(rand($pages)) }

# the end of the scratch run a scratch page lies in
sub scratch_end
{
	my ($p) = @_;
	foreach my $r (@scratch_runs)
	{
		return $r->[0] + $r->[1] if $p >= $r->[0] && $p < $r->[0] + $r->[1];
	}
	die "page $p is not scratch";
}

# a page count for a range starting at first: valid (staying below limit)
# or invalid (negative, overflowing the region or int64)
sub count_for
{
	my ($first, $limit) = @_;
	my $fok = defined $first && $first >= 0 && $first < $pages;
	my @valid = (0, 1);
	push @valid, $limit - $first, int(rand($limit - $first + 1))
	  if $fok && $first < $limit;
	my @invalid = ($I64MIN, -1, -2, $I64MAX);
	# one past the end of the region; first + count just past int64
	push @invalid, $pages - $first + 1 if $fok;
	push @invalid, $I64MAX - $first + 1 if $fok && $first >= 1;
	my $c = chance(0.55) ? pick(@valid) : pick(@invalid, bigint_edges());
	# a count valid for the region must not reach past limit
	$c = $limit - $first
	  if $fok && $c >= 0 && $c <= $pages - $first && $c > $limit - $first;
	return $c;
}

my @modes = ('read', 'write');
my @methods = ('dontneed', 'remove', 'pageout', 'cold');
my @bad_texts = (
	'', ' ', 'READ', 'Write', 'read ', ' write', "read\n", 'rea', 'writes',
	'DONTNEED', 'Remove', 'remove;', 'free', 'dontneed ', 'PAGEOUT', 'co1d',
	'%s%s%s%n', '%999999999d', q{'); SELECT pg_terminate_backend(pg_postmaster_pid()); --},
	"r\x{eb}ad", "\x{1F4A5}", 'x' x 5000, 'read' x 1000, '\\x00', 'NULL');

sub text_arg
{
	my ($valid) = @_;
	return { sql => 'NULL::text', val => undef, null => 1 } if chance(0.05);
	my $t = chance(0.6) ? pick(@$valid) : pick(@bad_texts);
	(my $q = $t) =~ s/'/''/g;
	return { sql => "'$q'::text", val => $t, null => 0 };
}

# bytea: a repeated byte or random bytes, lengths around the page size
sub bytea_arg
{
	return { sql => 'NULL::bytea', val => undef, null => 1 } if chance(0.03);
	my $len = pick(0, 1, 2, 7, $psz - 1, $psz, $psz + 1, 2 * $psz, int(rand($psz + 16)), int(rand(64)));
	if ($len <= 64 && chance(0.5))
	{
		my $bytes = join('', map { chr(int(rand(256))) } 1 .. $len);
		return { sql => q{'\x} . unpack('H*', $bytes) . q{'::bytea}, val => $bytes, len => $len, null => 0 };
	}
	my $b = int(rand(256));
	return {
		sql => sprintf(q{decode(repeat('%02x', %d), 'hex')}, $b, $len),
		val => chr($b) x $len,
		len => $len,
		null => 0
	};
}

# ---- pids -------------------------------------------------------------------

my (%pid_class, @valid_pids);

sub pid_arg
{
	my $c = pick(
		'null', 'self', 'self', 'postmaster', 'aux', 'other', 'perl', 'sleep',
		'exited', 'exited', 'edge', 'random');
	return { sql => 'NULL::integer', val => undef, null => 1 } if $c eq 'null';
	return { sql => 'pg_backend_pid()', val => 'self', null => 0, valid => 1 }
	  if $c eq 'self';
	my $v;
	my $valid = 0;
	if ($c eq 'postmaster') { $v = $pm_pid; $valid = 1 }
	elsif ($c eq 'aux') { $v = pick(@{ $pid_class{aux} }); $valid = 1 }
	elsif ($c eq 'other') { $v = pick(@{ $pid_class{other} }); $valid = 1 }
	elsif ($c eq 'perl') { $v = $$ }
	elsif ($c eq 'sleep') { $v = $sleep_pid }
	elsif ($c eq 'exited') { $v = pick(@{ $pid_class{exited} }) }
	elsif ($c eq 'edge')
	{
		$v = pick(0, -1, 1, 2, $I32MIN, $I32MAX, $I32MAX + 1, $I64MAX);
	}
	else
	{
		do { $v = 2 + int(rand(4194302)) } while grep { $_ == $v } @valid_pids;
	}
	my $a = lit($v, 'integer');
	$a->{valid} = $valid;
	return $a;
}

# ---- the model --------------------------------------------------------------

# What a valid range check says: 0 <= first < pages, 0 <= count <= pages - first.
sub range_ok
{
	my ($first, $count) = @_;
	return 0 if $first < 0 || $first >= $pages;
	return 1 unless defined $count;
	return $count >= 0 && $count <= $pages - $first;
}

sub in_page_ok
{
	my ($page, $off, $len) = @_;
	return range_ok($page, 1) && $off >= 0 && $len >= 0 && $off <= $psz - $len;
}

my %funcs;

# Each generator returns (sql, expected sqlstate(s), effect, is_report).
# expected is a list of acceptable SQLSTATEs.  effect is run on the model
# when the call succeeded.
$funcs{ptbm_pte} = sub {
	my $pid = pid_arg();
	my $first = lit(chance(0.05) ? undef : chance(0.5) ? any_page() : pick(bigint_edges()), 'bigint');
	my $count = lit(chance(0.1) ? undef : count_for($first->{val}, $pages), 'bigint');
	my ($p, $f, $c) = ($pid, $first, $count);
	my $form = int(rand(3));
	my $sql;
	if ($form == 0)
	{
		$sql = "ptbm_pte($pid->{sql}, $first->{sql}, $count->{sql})";
	}
	else
	{
		# defaults: the caller, from page 0, to the end of the region
		my @named;
		if (chance(0.6)) { push @named, "pid => $pid->{sql}" }
		else { $p = { val => 'self', null => 0, valid => 1 } }
		if (chance(0.6)) { push @named, "first_page => $first->{sql}" }
		else { $f = { val => 0, null => 0 } }
		if (chance(0.6)) { push @named, "page_count => $count->{sql}" }
		else { $c = { val => undef, null => 1 } }
		$sql = 'ptbm_pte(' . join(', ', $form == 1 ? reverse @named : @named) . ')';
	}
	my @exp =
	    (grep { $_->{oor} } $p, $f, $c) ? ('22003')
	  : ($p->{null} || $f->{null}) ? ('00000')
	  : !range_ok($f->{val}, $c->{val}) ? ('22023')
	  : !$p->{valid} ? ('22023')
	  : ('00000');
	return ("SELECT count(*) FROM $sql", \@exp, undef, 1);
};

$funcs{ptbm_sharing} = sub {
	my $first = lit(chance(0.1) ? undef : chance(0.5) ? any_page() : pick(bigint_edges()), 'bigint');
	my $count = lit(chance(0.15) ? undef : count_for($first->{val}, $pages), 'bigint');
	my $sql = "ptbm_sharing($first->{sql}, $count->{sql})";
	my $c = $count;
	if (chance(0.2))
	{
		$sql = "ptbm_sharing($first->{sql})";
		$c = { val => undef, null => 0 };
	}
	my @exp =
	    (grep { $_->{oor} } $first, $count) ? ('22003')
	  : $first->{null} ? ('00000')
	  : range_ok($first->{val}, $c->{val}) ? ('00000')
	  : ('22023');
	return ("SELECT count(*), sum(processes) FROM $sql", \@exp, undef, 1);
};

$funcs{ptbm_map} = sub {
	my $w = lit(chance(0.05) ? undef : pick(int_edges(), 63, 64, 100, 4096, 9999, 10000, 10001, 1 + int(rand(200))), 'integer');
	my @exp =
	    $w->{oor} ? ('22003')
	  : $w->{null} ? ('00000')
	  : $w->{val} < 1 ? ('22023')
	  : $w->{val} <= 10000 ? ('00000')
	  : ('00000', '22023');    # an upper bound is the implementation's choice
	return ("SELECT count(*), sum(length(map)) FROM ptbm_map($w->{sql})", \@exp, undef, 1, $w->{null});
};

$funcs{ptbm_region} = sub {
	return ('SELECT count(*) FROM ptbm_region()', ['00000'], undef, 1);
};

$funcs{ptbm_backends} = sub {
	return ('SELECT count(*), sum(present) FROM ptbm_backends()', ['00000'], undef, 1);
};

$funcs{ptbm_touch} = sub {
	my $first = lit(chance(0.05) ? undef : chance(0.5) ? any_page() : pick(bigint_edges()), 'bigint');
	my $count = lit(chance(0.1) ? undef : count_for($first->{val}, $pages), 'bigint');
	my $mode = text_arg(\@modes);
	my $sql = "ptbm_touch($first->{sql}, $count->{sql}, $mode->{sql})";
	if (chance(0.2))
	{
		$sql = "ptbm_touch($first->{sql})";
		$count = { val => 1, null => 0 };
		$mode = { val => 'read', null => 0 };
	}
	my @exp =
	    (grep { $_->{oor} } $first, $count) ? ('22003')
	  : ($first->{null} || $mode->{null}) ? ('00000')
	  : !range_ok($first->{val}, $count->{val}) ? ('22023')
	  : !(grep { $_ eq $mode->{val} } @modes) ? ('22023')
	  : ('00000');
	# a touch keeps the data (a write is an atomic OR 0): no effect
	return ("SELECT pages FROM $sql", \@exp, undef, 0);
};

my $kind;    # the region kind being fuzzed
my $shared;  # whether it is a shared kind
my $model;   # expected bytes of the whole region

$funcs{ptbm_write} = sub {
	my $page = lit(chance(0.03) ? undef : chance(0.7) ? scratch_page() : bad_page(), 'bigint');
	my $data = bytea_arg();
	my $off;
	if (chance(0.6) && !$data->{null})
	{
		# at the page end: fits exactly, or crosses it by one
		$off = pick($psz - $data->{len}, $psz - $data->{len} + 1, 0, int(rand($psz)));
	}
	else
	{
		$off = pick(int_edges(), $I32MAX + 1, $I32MIN - 1);
	}
	my $offset = lit(chance(0.03) ? undef : $off, 'integer');
	my $sql = "ptbm_write($page->{sql}, $data->{sql}, $offset->{sql})";
	if (chance(0.1))
	{
		$sql = "ptbm_write($page->{sql}, $data->{sql})";
		$offset = { val => 0, null => 0 };
	}
	elsif (chance(0.1))
	{
		$sql = "ptbm_write(data => $data->{sql}, \"offset\" => $offset->{sql}, page => $page->{sql})";
	}
	my @exp =
	    (grep { $_->{oor} } $page, $offset) ? ('22003')
	  : ($page->{null} || $data->{null} || $offset->{null}) ? ('00000')
	  : in_page_ok($page->{val}, $offset->{val}, $data->{len}) ? ('00000')
	  : ('22023');
	my $effect = sub {
		return if $page->{null} || $data->{null} || $offset->{null};
		substr($$model, $page->{val} * $psz + $offset->{val}, $data->{len}) = $data->{val};
	};
	return ("SELECT $sql", \@exp, $effect, 0,
		$page->{null} || $data->{null} || $offset->{null});
};

$funcs{ptbm_read} = sub {
	my $page = lit(chance(0.03) ? undef : chance(0.6) ? any_page() : pick(bigint_edges()), 'bigint');
	my $len = chance(0.6) ? pick(0, 1, 16, $psz - 1, $psz, $psz + 1, int(rand($psz))) : pick(int_edges(), $I32MAX + 1);
	my $off = chance(0.6) ? pick(0, $psz - $len, $psz - $len + 1, int(rand($psz))) : pick(int_edges());
	my ($l, $o) = (lit(chance(0.03) ? undef : $len, 'integer'), lit(chance(0.03) ? undef : $off, 'integer'));
	my $sql = "ptbm_read($page->{sql}, $l->{sql}, $o->{sql})";
	if (chance(0.1))
	{
		$sql = "ptbm_read($page->{sql}, $l->{sql})";
		$o = { val => 0, null => 0 };
	}
	my @exp =
	    (grep { $_->{oor} } $page, $l, $o) ? ('22003')
	  : ($page->{null} || $l->{null} || $o->{null}) ? ('00000')
	  : in_page_ok($page->{val}, $o->{val}, $l->{val}) ? ('00000')
	  : ('22023');
	return ("SELECT length($sql)", \@exp, undef, 0, $page->{null} || $l->{null} || $o->{null});
};

# which eviction methods lose data in this kind
sub destroys
{
	my ($method) = @_;
	return 1 unless defined $method && grep { $_ eq $method } @methods;
	return $shared ? $method eq 'remove' : $method eq 'dontneed';
}

$funcs{ptbm_evict} = sub {
	my $method = text_arg(\@methods);
	my ($first, $count);
	if (destroys($method->{val}))
	{
		# a destructive method may only reach scratch pages
		my $f = chance(0.75) ? scratch_page() : bad_page();
		$first = lit(chance(0.03) ? undef : $f, 'bigint');
		$count = lit(count_for($f, $f >= 0 && $f < $pages ? scratch_end($f) : $pages), 'bigint');
		# NULL count reaches the end of the region: only with a bad first page
		$count = lit(undef, 'bigint') if chance(0.05) && !range_ok($f, 1);
	}
	else
	{
		$first = lit(chance(0.03) ? undef : chance(0.5) ? any_page() : pick(bigint_edges()), 'bigint');
		$count = lit(chance(0.1) ? undef : count_for($first->{val}, $pages), 'bigint');
	}
	my $sql = "ptbm_evict($first->{sql}, $count->{sql}, $method->{sql})";
	my @exp =
	    (grep { $_->{oor} } $first, $count) ? ('22003')
	  : ($first->{null} || $method->{null}) ? ('00000')
	  : !range_ok($first->{val}, $count->{val}) ? ('22023')
	  : !(grep { $_ eq $method->{val} } @methods) ? ('22023')
	  : ($method->{val} eq 'remove' && !$shared) ? ('22023')
	  : ('00000');
	my $effect = sub {
		return if $first->{null} || $method->{null};
		return unless destroys($method->{val});
		my $n = defined $count->{val} ? $count->{val} : $pages - $first->{val};
		substr($$model, $first->{val} * $psz, $n * $psz) = "\0" x ($n * $psz);
	};
	return ("SELECT pages FROM $sql", \@exp, $effect, 0);
};

# literals outside their SQL type, in every position that has one
# Write tracking: the fuzzing backend may start and stop tracking its own
# writes; ptbm_written of a process that does not track is 55000.
my $tracking = 0;    # does the fuzzing backend track its writes now

sub bool_arg
{
	my $v = pick(undef, 'true', 'false', 'true');
	return defined $v
	  ? { sql => "$v", val => $v eq 'true' ? 1 : 0, null => 0 }
	  : { sql => 'NULL::boolean', val => undef, null => 1 };
}

$funcs{ptbm_track_writes} = sub {
	my $e = bool_arg();
	my $sql = "ptbm_track_writes($e->{sql})";
	if (chance(0.2))
	{
		$sql = 'ptbm_track_writes()';
		$e = { val => 1, null => 0 };
	}
	# the kernel may not write-protect this kind: 0A000
	my @exp = $e->{null} ? ('00000') : $e->{val} ? ('00000', '0A000') : ('00000');
	my $effect = sub { $tracking = $e->{val} unless $e->{null} };
	return ("SELECT tracking FROM $sql", \@exp, $effect, 0, $e->{null});
};

$funcs{ptbm_written} = sub {
	my ($pid, $reset) = (pid_arg(), bool_arg());
	my ($p, $r) = ($pid, $reset);
	my $sql = "ptbm_written($pid->{sql}, $reset->{sql})";
	if (chance(0.2))
	{
		$sql = "ptbm_written($pid->{sql})";
		$r = { val => 0, null => 0 };
	}
	elsif (chance(0.1))
	{
		$sql = 'ptbm_written()';
		$p = { val => 'self', null => 0, valid => 1 };
		$r = { val => 0, null => 0 };
	}
	# who tracks is decided when the call runs (the model's $tracking then)
	my $exp = sub {
		my ($superuser) = @_;
		return ['22003'] if $p->{oor};
		return ['00000'] if $p->{null} || $r->{null};
		return ['22023'] unless $p->{valid};
		my $self = $p->{val} eq 'self';
		return ['42501'] if $r->{val} && !$self && !$superuser;
		return ['55000'] unless $self && $tracking;
		return ['00000'];
	};
	return ("SELECT count(*) FROM $sql", $exp, undef, 1, $p->{null} || $r->{null});
};

# the same reset under a privilege of its own (not granted to the fuzzing
# roles, so 42501 for them, as for any function that changes memory)
$funcs{ptbm_written_reset} = sub {
	my $p = pid_arg();
	my $sql = "ptbm_written_reset($p->{sql})";
	if (chance(0.2))
	{
		$sql = 'ptbm_written_reset()';
		$p = { val => 'self', null => 0, valid => 1 };
	}
	my $exp = sub {
		return ['22003'] if $p->{oor};
		return ['00000'] if $p->{null};
		return ['22023'] unless $p->{valid};
		return ['55000'] unless $p->{val} eq 'self' && $tracking;
		return ['00000'];
	};
	return ("SELECT count(*) FROM $sql", $exp, undef, 0, $p->{null});
};

$funcs{ptbm_shmem_segment} = sub {
	return ('SELECT count(*) FROM ptbm_shmem_segment()', ['00000'], undef, 1);
};

$funcs{ptbm_shmem_backends} = sub {
	return ('SELECT count(*), sum(present) FROM ptbm_shmem_backends()', ['00000'], undef, 1);
};

$funcs{ptbm_buffer_ptes} = sub {
	my $pid = chance(0.2) ? { sql => 'NULL::integer', val => undef, null => 1 } : pid_arg();
	my $sql = chance(0.1) ? 'ptbm_buffer_ptes()' : "ptbm_buffer_ptes($pid->{sql})";
	$pid = { null => 1 } if $sql eq 'ptbm_buffer_ptes()';
	my @exp =
	    $pid->{oor} ? ('22003')
	  : $pid->{null} ? ('00000')
	  : $pid->{valid} ? ('00000')
	  : ('22023');
	return ("SELECT count(*), sum(present) FROM $sql", \@exp, undef, 1);
};

$funcs{ptbm_numa_nodes} = sub {
	return ('SELECT count(*), sum(bytes) FROM ptbm_numa_nodes()', ['00000'], undef, 1);
};

# The buffer pool is off here: every call that runs is 55000.  A relation
# argument may name no relation at all (a bare OID).
sub rel_arg
{
	my $v = pick(undef, q{'pg_class'::regclass}, '0::regclass', '4294967295::oid::regclass', q{'pg_proc'::regclass});
	return defined $v ? { sql => $v, null => 0 } : { sql => 'NULL::regclass', null => 1 };
}

foreach my $f (qw(ptbm_pool_attach ptbm_pool_blocks))
{
	$funcs{$f} = sub {
		my $r = rel_arg();
		return ("SELECT count(*) FROM $f($r->{sql})", [ $r->{null} ? '00000' : '55000' ],
			undef, $f eq 'ptbm_pool_blocks', $r->{null});
	};
}
$funcs{ptbm_pool_stats} = sub {
	return ('SELECT count(*) FROM ptbm_pool_stats()', ['55000'], undef, 1);
};
$funcs{ptbm_pool_read} = sub {
	my $r = rel_arg();
	my $b = lit(chance(0.1) ? undef : pick(bigint_edges()), 'bigint');
	my $null = $r->{null} || $b->{null};
	return ("SELECT length(ptbm_pool_read($r->{sql}, $b->{sql}))",
		[ $b->{oor} ? '22003' : $null ? '00000' : '55000' ], undef, 0, $null);
};
foreach my $f (qw(ptbm_pool_detach ptbm_pool_prewarm))
{
	$funcs{$f} = sub {
		my $r = rel_arg();
		return ("SELECT $f($r->{sql})", [ $r->{null} ? '00000' : '55000' ], undef, 0, $r->{null});
	};
}
$funcs{ptbm_pool_evict} = sub {
	my $r = rel_arg();
	# not STRICT: NULL means every relation
	return ("SELECT ptbm_pool_evict($r->{sql})", ['55000'], undef, 0);
};

# The study's loops: superusers only (42501 for the fuzzing roles); over a
# catalog through the buffer manager they run; the pool is off (55000).
sub path_arg
{
	my $v = pick(q{'bufmgr'}, q{'recent'}, q{'pool'}, q{'bogus'}, undef);
	return defined $v ? { sql => $v, val => $v, null => 0 } : { sql => 'NULL::text', null => 1 };
}

sub study_exp
{
	my ($r, $p) = @_;
	return '42P01' if $r->{sql} =~ /^(0|4294967295)/;
	return '22023' if $p->{val} eq q{'bogus'};
	return '55000' if $p->{val} eq q{'pool'};
	return '00000';
}
$funcs{ptbm_bench_hits} = sub {
	my ($r, $p) = (rel_arg(), path_arg());
	my $n = pick(0, 1, 100, -5);
	return ("SELECT accesses FROM ptbm_bench_hits($r->{sql}, $p->{sql}, $n)",
		[ $r->{null} || $p->{null} ? '00000' : study_exp($r, $p) ], undef, 0);
};
$funcs{ptbm_bench_scan} = sub {
	my ($r, $p) = (rel_arg(), path_arg());
	return ("SELECT pages FROM ptbm_bench_scan($r->{sql}, $p->{sql}, 1)",
		[ $r->{null} || $p->{null} ? '00000' : study_exp($r, $p) ], undef, 0);
};
$funcs{ptbm_bench_lookups} = sub {
	my ($r, $p) = (rel_arg(), path_arg());
	# no catalog is a B-tree on an int4 column of a table: 42809 where it runs
	my $e = $r->{null} || $p->{null} ? '00000' : study_exp($r, $p);
	$e = '42809' if $e eq '00000' && !($r->{null} || $p->{null});
	$e = '22023' if !($r->{null} || $p->{null}) && $p->{val} eq q{'bogus'} && $r->{sql} !~ /^(0|4294967295)/;
	return ("SELECT lookups FROM ptbm_bench_lookups($r->{sql}, 'pg_class', $p->{sql}, 10)",
		[ $e, '42809', '22023', '55000' ], undef, 0);
};

$funcs{type_edges} = sub {
	my $sql = pick(
		q{SELECT count(*) FROM ptbm_pte('2147483648'::integer)},
		q{SELECT count(*) FROM ptbm_pte(pg_backend_pid(), '9223372036854775808'::bigint)},
		q{SELECT count(*) FROM ptbm_pte(pg_backend_pid(), 0, '-9223372036854775809'::bigint)},
		q{SELECT pages FROM ptbm_touch('99999999999999999999'::bigint)},
		q{SELECT ptbm_read(0, '2147483648'::integer)},
		q{SELECT ptbm_read(0, 1, '-2147483649'::integer)},
		q{SELECT ptbm_write(0, '\x00'::bytea, '4294967296'::integer)},
		q{SELECT count(*) FROM ptbm_map('2147483648'::integer)},
		q{SELECT count(*) FROM ptbm_sharing('9223372036854775808'::bigint)},
		q{SELECT pages FROM ptbm_evict(0, '9223372036854775808'::bigint)});
	return ($sql, ['22003'], undef, 0);
};

my @weights = (
	ptbm_pte => 16, ptbm_sharing => 8, ptbm_map => 6, ptbm_region => 2,
	ptbm_backends => 3, ptbm_touch => 12, ptbm_write => 20, ptbm_read => 14,
	ptbm_evict => 15, type_edges => 4, ptbm_track_writes => 3, ptbm_written => 6, ptbm_written_reset => 2,
	ptbm_shmem_segment => 1, ptbm_shmem_backends => 2, ptbm_buffer_ptes => 4, ptbm_numa_nodes => 2);
my @bag;
for (my $i = 0; $i < @weights; $i += 2)
{
	push @bag, ($weights[$i]) x $weights[ $i + 1 ];
}

my %reports = map { $_ => 1 } qw(ptbm_pte ptbm_sharing ptbm_map ptbm_region ptbm_backends
  ptbm_written ptbm_shmem_segment ptbm_shmem_backends ptbm_buffer_ptes ptbm_numa_nodes ptbm_pool_stats
  ptbm_pool_blocks);

# A STRICT function called in a select list with a NULL constant is folded
# to NULL by the planner: it never runs, and no privilege is checked for it
# (a function in FROM is not folded).
my %strict = map { $_ => 1 } split /\n/, $node->safe_psql(
	'postgres', q{
	SELECT DISTINCT p.proname FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ptbm'
	WHERE p.proisstrict});

# Every function of the extension has a generator: a new one must get one.
my @catalog = split /\n/, $node->safe_psql(
	'postgres', q{
	SELECT DISTINCT p.proname FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ptbm'
	ORDER BY 1});
foreach my $f (@catalog)
{
	ok($funcs{$f}, "the generator calls $f");
}
# and calls nothing the extension does not have (an older build)
@bag = grep { my $f = $_; $f eq 'type_edges' || grep { $_ eq $f } @catalog } @bag;

# ---- one run per region kind -----------------------------------------------

my (%by_state, %by_func, $total, $mismatches);
my $t0 = time();

foreach my $k (
	[ 'shared_anon', 1 ], [ 'private_anon', 0.3 ], [ 'shared_memfd', 0.2 ],
	[ 'shared_file', 0.2 ], [ 'private_file', 0.2 ])
{
	($kind, my $share) = @$k;
	$shared = $kind =~ /^shared_/ ? 1 : 0;
	$tracking = 0;
	my $n = int($ncalls * $share);
	ptbm_settings($node, 'ptbm.region_size' => "${region_mb}MB", 'ptbm.region_kind' => $kind);
	$node->restart;
	$pm_pid = postmaster_pid($node);
	$pm_start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
	$log_offset = -s $node->logfile;

	# backends that have exited: their pids are no process of the cluster
	my @exited;
	for (1 .. 3)
	{
		push @exited, $node->safe_psql('postgres', 'SELECT pg_backend_pid()');
	}
	# a live backend with PTEs in the region, and the auxiliary processes
	my $other = $node->background_psql('postgres');
	$other->query_safe('SELECT pages FROM ptbm_touch(0, 64)');
	my $other_pid = $other->query_safe('SELECT pg_backend_pid()');
	$node->poll_query_until('postgres',
		'SELECT count(*) = 0 FROM pg_stat_activity WHERE pid IN (' . join(',', @exited) . ')');
	%pid_class = (
		exited => \@exited,
		other => [$other_pid],
		aux => [
			split /\n/,
			$node->safe_psql('postgres',
				"SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'")
		]);
	@valid_pids = ($pm_pid, $other_pid, @{ $pid_class{aux} });

	# the model starts as zeros plus the sentinels' random bytes
	my $image = "\0" x ($pages * $psz);
	$model = \$image;
	my $script = "SET client_min_messages = warning;\n";
	foreach my $p (@sentinels)
	{
		my $bytes = join('', map { chr(int(rand(256))) } 1 .. $psz);
		substr($image, $p * $psz, $psz) = $bytes;
		$script .= "SELECT ptbm_write($p, '\\x" . unpack('H*', $bytes) . "'::bytea, 0) \\g /dev/null\n";
	}
	my %sentinel_md5 = map { $_ => md5_hex(substr($image, $_ * $psz, $psz)) } @sentinels;

	# the calls, each followed by its SQLSTATE
	my @calls;
	for my $i (1 .. $n)
	{
		my $f = pick(@bag);
		my ($sql, $exp, $effect, $is_report, $null_arg) = $funcs{$f}->();
		my $r = rand();
		my $role = $r < 0.05 ? 'ptbm_fuzz_nobody' : $r < 0.10 ? 'ptbm_fuzz_monitor' : '';
		push @calls, { f => $f, sql => $sql, exp => $exp, effect => $effect, role => $role,
			folded => $strict{$f} && $null_arg && $sql !~ /\bFROM\b/ };
		$script .= "SET ROLE $role;\n" if $role;
		$script .= "$sql \\g /dev/null\n\\echo R $i :SQLSTATE :'LAST_ERROR_MESSAGE'\n";
		$script .= "RESET ROLE;\n" if $role;
	}
	# the whole region as this backend sees it (private kinds: only it)
	$script .= "SELECT 'M', p, md5(ptbm_read(p, $psz, 0)) FROM generate_series(0, $pages - 1) p;\n";

	utf8::encode($script);
	my $fd_before = proc_fd_count($pm_pid);
	my ($out, $err) = ('', '');
	my $t = time();
	my $rc = $node->psql(
		'postgres', $script,
		stdout => \$out,
		stderr => \$err,
		on_error_stop => 0,
		timeout => 300);
	my $elapsed = time() - $t;

	my %state;
	my $done = 0;
	foreach my $line (split /\n/, $out)
	{
		next unless $line =~ /^R (\d+) (\S+) ?(.*)$/;
		my ($i, $st, $msg) = ($1, $2, $3);
		my $c = $calls[ $i - 1 ];
		$done = $i;
		# what the model expects, now that the calls before have run
		my $exp = $c->{exp};
		$exp = $exp->($c->{role} eq '') if ref $exp eq 'CODE';
		if ($c->{folded})
		{
			# never called: NULL whoever asks
		}
		elsif ($c->{role} eq 'ptbm_fuzz_nobody')
		{
			$exp = ['42501'] unless $exp->[0] eq '22003';
		}
		elsif ($c->{role} eq 'ptbm_fuzz_monitor')
		{
			$exp = ['42501'] unless $reports{ $c->{f} } || $exp->[0] eq '22003';
		}
		$total++;
		$by_state{$st}++;
		$by_func{ $c->{f} }{$st}++;
		if (!grep { $_ eq $st } @$exp)
		{
			$mismatches++;
			fail("$kind call $i: $c->{sql}"
				  . ($c->{role} ? " as $c->{role}" : '')
				  . " ended with $st" . ($st eq '00000' ? '' : " $msg")
			  . ", expected @$exp");
			next;
		}
		$c->{effect}->() if $st eq '00000' && $c->{effect};
	}
	is($done, $n, "$kind: all $n calls ran (the session was never lost)")
	  or diag("last call that ended: $done; next: "
		  . ($calls[$done] ? $calls[$done]{sql} : '-') . "\nstderr tail: "
		  . substr($err, -2000));
	note sprintf('%s: %d calls in %.1f s (%.0f calls/s)', $kind, $done, $elapsed, $done / ($elapsed || 1));

	# every page as the model says: the sentinels, and what the successful
	# writes and evictions left in the scratch pages
	my %got = map { (split /\|/)[ 1, 2 ] } grep { /^M\|/ } split /\n/, $out;
	my @bad = grep { ($got{$_} // '') ne md5_hex(substr($image, $_ * $psz, $psz)) } 0 .. $pages - 1;
	is(scalar(@bad), 0, "$kind: every page of the region holds what the model expects")
	  or diag('pages that differ: ' . join(',', @bad[ 0 .. ($#bad < 20 ? $#bad : 20) ]));
	is(scalar(grep { $got{$_} ne $sentinel_md5{$_} } @sentinels),
		0, "$kind: the sentinel pages are intact in the fuzzing backend");
	if ($shared)
	{
		# and as a fresh backend sees them
		my %fresh = map { (split /\|/)[ 0, 1 ] } split /\n/,
		  $node->safe_psql('postgres',
			"SELECT p, md5(ptbm_read(p, $psz, 0)) FROM unnest('{"
			  . join(',', @sentinels) . "}'::bigint[]) p");
		is(scalar(grep { ($fresh{$_} // '') ne $sentinel_md5{$_} } @sentinels),
			0, "$kind: the sentinel pages are intact for another backend");
	}

	# the server never restarted
	is(postmaster_pid($node), $pm_pid, "$kind: the same postmaster");
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
		$pm_start, "$kind: pg_postmaster_start_time unchanged");
	my $log = slurp_file($node->logfile, $log_offset);
	unlike($log, qr/terminated by signal|was terminated by exception|server process .* exited with exit code [^0]|PANIC|TRAP|all server processes terminated/,
		"$kind: no crash in the server log");
	is(proc_fd_count($pm_pid), $fd_before, "$kind: the postmaster holds as many files as before");
	ok(kill(0, $sleep_pid), "$kind: the outside process is still alive");

	$other->quit;
}

my $all = time() - $t0;
note sprintf('Reliability figures: %d calls in %.1f s over 5 region kinds, seed %s', $total, $all, $seed);
note 'SQLSTATE distribution: ' . join(', ', map { "$_ $by_state{$_}" } sort keys %by_state);
foreach my $f (sort keys %by_func)
{
	note sprintf('  %-14s %s', $f,
		join(', ', map { "$_ $by_func{$f}{$_}" } sort keys %{ $by_func{$f} }));
}
is($mismatches // 0, 0, "every call ended with the SQLSTATE the model predicts ($total calls)");
# 55000: ptbm_written of a process that does not track its writes;
# 0A000: the kernel cannot track writes to this kind
ok(!(grep { !/^(00000|22\w\w\w|42501|55000|0A000)$/ } keys %by_state),
	'only 00000, class 22, 42501, and 55000 / 0A000 from write tracking occurred');

kill 'TERM', $sleep_pid;
waitpid($sleep_pid, 0);
$node->stop;
done_testing();
