#!/usr/bin/perl
# The study's report: reads the RESULT lines of bench/study.sh and writes the
# markdown section "The study" (into bench/RESULTS.md between its markers,
# or a file of its own for --quick) and the data of the pictures.
#
#   perl bench/study_report.pl RESULTS MACHINE OUT.md PNGPREFIX QUICK DATADIR
#
# Every figure is a median over the repetitions, with a distribution-free 95%
# interval of the median where there are 6 or more; a ratio is the median of
# the per-repetition ratios (each repetition ran the paths one after another).
use strict;
use warnings;

my ($results, $machine, $out, $png, $quick, $datadir) = @ARGV;
$datadir //= '.';
my (@rows, %plan);
open my $fh, '<', $results or die "$results: $!";
while (<$fh>)
{
	if (/^PLAN (.*)/) { %plan = (%plan, map { split /=/, $_, 2 } split ' ', $1); next; }
	next unless /^RESULT (.*)/;
	push @rows, { map { split /=/, $_, 2 } split ' ', $1 };
}
close $fh;

sub median
{
	my @v = sort { $a <=> $b } @_;
	return undef unless @v;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub median_ci
{
	my @v = sort { $a <=> $b } @_;
	my $n = @v;
	return () if $n < 6;
	my $lo = int($n / 2 - 0.98 * sqrt($n));
	my $hi = int($n / 2 + 0.98 * sqrt($n) + 0.999);
	$lo = 0 if $lo < 0;
	$hi = $n - 1 if $hi > $n - 1;
	return ($v[$lo], $v[$hi]);
}
sub f { my ($v, $d) = @_; defined $v ? sprintf("%.${d}f", $v) : 'n/a' }

# "median (lo .. hi)" of a list
sub mci
{
	my ($d, @v) = @_;
	my $m = median(@v);
	my @ci = median_ci(@v);
	return f($m, $d) . (@ci ? ' (' . f($ci[0], $d) . ' .. ' . f($ci[1], $d) . ')' : '');
}
sub sel { my %k = @_; grep { my $r = $_; !grep { ($r->{$_} // '') ne $k{$_} } keys %k } @rows }
sub uniq { my %s; grep { !$s{$_}++ } @_ }

# per repetition: the mean over the backends of a field
sub per_rep
{
	my ($field, %k) = @_;
	my %by;
	push @{ $by{ $_->{rep} } }, $_->{$field} for sel(%k);
	return map { my @v = @{ $by{$_} }; $_ => (eval { my $s = 0; $s += $_ for @v; $s / @v }) } keys %by;
}

# ratios a/b of the same repetition
sub ratios
{
	my ($field, $ka, $kb) = @_;
	my %a = per_rep($field, %$ka);
	my %b = per_rep($field, %$kb);
	return map { $a{$_} / $b{$_} } grep { defined $b{$_} && $b{$_} > 0 } keys %a;
}

my @md;
push @md, '<!-- study: written by bench/study.sh; everything up to the closing marker is replaced by each run -->';
push @md, '## The study: the pool against PostgreSQL\'s buffer manager' . ($quick eq 'yes' ? ' (--quick: scale 4, 3 repetitions, 0.5 s runs)' : ''), '';
push @md, "Produced by `bash bench/study.sh" . ($quick eq 'yes' ? ' --quick' : '') . "` on " . scalar(gmtime) . " UTC, ptbm built from $plan{build}. Machine: $machine.", '';
push @md, "The same C loops (`src/ptbm_study.c`) through three paths: **pool** (extent lookup once, then address arithmetic and an optimistic read, the version checked after every access), **bufmgr** (`ReadBufferExtended` + `LockBuffer(SHARE)` + `UnlockReleaseBuffer`) and **recent** (`ReadRecentBuffer` with the buffer remembered, PostgreSQL's fast path). pgbench_accounts at scale $plan{scale}, in shared_buffers and in the pool. Each figure: the median over $plan{reps} repetitions, the paths alternating in rotated order within each; in parentheses the distribution-free 95% interval of the median where there are 6 or more. A ratio is the median of the per-repetition ratios. Runs of $plan{seconds} s. The pool's own check stayed on in every timed run: its version word is read after every access and a changed one retries. Full verification (the checksum where enabled, every tuple's own TID) runs in an untimed pass of the same loop after each repetition; a sample of the lookups of every timed run is checked afterwards, untimed, against `SELECT ... WHERE aid = k`.", '';
push @md, 'CPU cycles: ' . ($plan{perf_cycles} eq 'yes' ? 'see below.' : '`perf stat` reports no cycle counter on this virtual machine (`<not supported>`): times only.'), '';

foreach my $pg (uniq(map { $_->{pg} } sel(w => 'hits')))
{
	push @md, "### Block hits, $pg pages", '';
	push @md, '| backends | pool ns/access | bufmgr | recent | pool/bufmgr | pool/recent | accesses/s, pool | bufmgr |';
	push @md, '|---|---|---|---|---|---|---|---|';
	foreach my $n (uniq(map { $_->{n} } sel(w => 'hits', pg => $pg)))
	{
		my %v = map { my $p = $_; $p => [ values %{ { per_rep('ns', w => 'hits', pg => $pg, n => $n, path => $p) } } ] } qw(pool bufmgr recent);
		my @rb = ratios('ns', { w => 'hits', pg => $pg, n => $n, path => 'pool' }, { w => 'hits', pg => $pg, n => $n, path => 'bufmgr' });
		my @rr = ratios('ns', { w => 'hits', pg => $pg, n => $n, path => 'pool' }, { w => 'hits', pg => $pg, n => $n, path => 'recent' });
		my %tp;
		foreach my $p (qw(pool bufmgr))
		{
			my %acc;
			$acc{ $_->{rep} } += $_->{accesses} for sel(w => 'hits', pg => $pg, n => $n, path => $p);
			$tp{$p} = median(map { $_ / $plan{seconds} } values %acc);
		}
		push @md, "| $n | " . mci(1, @{ $v{pool} }) . ' | ' . mci(1, @{ $v{bufmgr} }) . ' | ' . mci(1, @{ $v{recent} })
		  . ' | ' . mci(3, @rb) . ' | ' . mci(3, @rr) . ' | ' . f($tp{pool} / 1e6, 2) . ' M | ' . f($tp{bufmgr} / 1e6, 2) . " M |";
		open my $d, '>>', "$datadir/study-throughput.dat" or die;
		print $d "$pg $n ", f($tp{pool}, 0), ' ', f($tp{bufmgr}, 0), "\n";
		close $d;
	}
	my ($vacc, $vfail) = (0, 0);
	for (sel(w => 'verify', pg => $pg)) { $vacc += $_->{accesses}; $vfail += $_->{failures}; }
	push @md, '', "Verified separately (untimed, 2 backends per path, every page's checksum and each tuple's own TID checked): $vacc accesses, $vfail failures.", '';

	push @md, "### Point lookups, $pg pages", '';
	push @md, '| backends | pool lookups/s | bufmgr | recent | pool/bufmgr | pool/recent | pages per lookup | checked | mismatches |';
	push @md, '|---|---|---|---|---|---|---|---|---|';
	foreach my $n (uniq(map { $_->{n} } sel(w => 'lookups', pg => $pg)))
	{
		my %v = map { my $p = $_; $p => [ values %{ { per_rep('lps', w => 'lookups', pg => $pg, n => $n, path => $p) } } ] } qw(pool bufmgr recent);
		my @rb = ratios('lps', { w => 'lookups', pg => $pg, n => $n, path => 'pool' }, { w => 'lookups', pg => $pg, n => $n, path => 'bufmgr' });
		my @rr = ratios('lps', { w => 'lookups', pg => $pg, n => $n, path => 'pool' }, { w => 'lookups', pg => $pg, n => $n, path => 'recent' });
		my ($ver, $mis, $pages, $lk) = (0, 0, 0, 0);
		for (sel(w => 'lookups', pg => $pg, n => $n))
		{
			$ver += $_->{verified};
			$mis += $_->{mismatches};
			$pages += $_->{pages};
			$lk += $_->{lookups};
		}
		push @md, "| $n | " . mci(0, @{ $v{pool} }) . ' | ' . mci(0, @{ $v{bufmgr} }) . ' | ' . mci(0, @{ $v{recent} })
		  . ' | ' . mci(2, @rb) . ' | ' . mci(2, @rr) . ' | ' . f($pages / ($lk || 1), 1) . " | $ver | $mis |";
	}
	push @md, '';

	push @md, "### Scans, $pg pages", '';
	my %s = map { my $p = $_; $p => [ map { $_->{pps} } sel(w => 'scan', pg => $pg, path => $p) ] } qw(pool bufmgr recent);
	my @rs = ratios('pps', { w => 'scan', pg => $pg, path => 'pool' }, { w => 'scan', pg => $pg, path => 'bufmgr' });
	push @md, '| pool pages/s | bufmgr | recent | pool/bufmgr |', '|---|---|---|---|';
	push @md, '| ' . mci(0, @{ $s{pool} }) . ' | ' . mci(0, @{ $s{bufmgr} }) . ' | ' . mci(0, @{ $s{recent} }) . ' | ' . mci(2, @rs) . ' |', '';

	push @md, "### First access and page tables, $pg pages", '';
	push @md, '| path | minor faults per block, first pass | first pass, us per block | second pass | page tables the pass built |';
	push @md, '|---|---|---|---|---|';
	foreach my $p (qw(pool bufmgr))
	{
		my @r = sel(w => 'first', pg => $pg, path => $p);
		next unless @r;
		push @md, "| $p | " . mci(3, map { $_->{minflt1} / $_->{pages} } @r) . ' | ' . mci(3, map { $_->{ms1} * 1000 / $_->{pages} } @r)
		  . ' | ' . mci(3, map { $_->{ms2} * 1000 / $_->{pages} } @r) . ' | ' . mci(0, map { ($_->{pt_after} - $_->{pt_before}) / 1024 } @r) . ' kB |';
	}
	push @md, '';
	my @pt = sel(w => 'pt', pg => $pg);
	if (@pt)
	{
		push @md, "Page tables of backends that each read the whole table, held open together ($pg pages):", '';
		push @md, '| backends | idle: sum of VmPTE | pool | bufmgr | pool over idle | bufmgr over idle | bufmgr: of which shared memory |', '|---|---|---|---|---|---|---|';
		foreach my $n (uniq(map { $_->{n} } @pt))
		{
			my ($id) = sel(w => 'pt', pg => $pg, path => 'idle', n => $n);
			my ($po) = sel(w => 'pt', pg => $pg, path => 'pool', n => $n);
			my ($bu) = sel(w => 'pt', pg => $pg, path => 'bufmgr', n => $n);
			next unless $id && $po && $bu;
			push @md, "| $n | " . join(' | ', map { f($_ / 1024, 0) . ' kB' }
				$id->{page_table}, $po->{page_table}, $bu->{page_table},
				$po->{page_table} - $id->{page_table}, $bu->{page_table} - $id->{page_table},
				$bu->{segment_page_table}) . ' |';
			open my $d, '>>', "$datadir/study-pagetables.dat" or die;
			print $d "$pg $n $id->{page_table} $po->{page_table} $bu->{page_table}\n";
			close $d;
		}
		push @md, '';
	}
}

# ---- eviction ----------------------------------------------------------------------
foreach my $pg (uniq(map { $_->{pg} } sel(w => 'evict')))
{
	push @md, "### Eviction, $pg pages: a budget of a tenth of the table, N busy backends", '';
	push @md, 'Every backend reads random blocks through the pool; the one that needs room evicts a batch. Evictions/s and reads/s over the run; TLB shootdown interrupts (the TLB line of `/proc/interrupts`, all CPUs) per evicted block; time per batch from the pool\'s own clock (picking, waiting, freeing).', '';
	push @md, '| method | batch | backends | evictions/s | reads/s | TLB shootdowns per evicted block | ms per batch | cooperative timeouts | cooperative/remove evictions/s |';
	push @md, '|---|---|---|---|---|---|---|---|---|';
	my %fit;
	foreach my $m (qw(remove cooperative))
	{
		foreach my $b (uniq(map { $_->{batch} } sel(w => 'evict', pg => $pg)))
		{
			foreach my $n (uniq(map { $_->{n} } sel(w => 'evict', pg => $pg)))
			{
				my @r = sel(w => 'evict', pg => $pg, method => $m, batch => $b, n => $n);
				next unless @r;
				my @eps = map { $_->{evicted} / $_->{seconds} } @r;
				my @rps = map { $_->{accesses} / $_->{seconds} } @r;
				my @tlb = map { $_->{evicted} ? $_->{tlb} / $_->{evicted} : 0 } @r;
				my @mpb = map { $_->{batches} ? $_->{evict_ms} / $_->{batches} : 0 } @r;
				my $to = 0;
				$to += $_->{timeouts} for @r;
				my $ratio = '';
				if ($m eq 'cooperative')
				{
					my %c = map { $_->{rep} => $_->{evicted} } @r;
					my %rm = map { $_->{rep} => $_->{evicted} } sel(w => 'evict', pg => $pg, method => 'remove', batch => $b, n => $n);
					$ratio = mci(2, map { $c{$_} / $rm{$_} } grep { $rm{$_} } keys %c);
				}
				push @md, "| $m | $b | $n | " . mci(0, @eps) . ' | ' . mci(0, @rps) . ' | ' . mci(3, @tlb) . ' | ' . mci(3, @mpb) . " | $to | $ratio |";
				push @{ $fit{"$m $b"} }, [ $n - 1, median(@mpb) ];
				open my $d, '>>', "$datadir/study-eviction.dat" or die;
				print $d "$pg $m $b ", $n - 1, ' ', f(median(@mpb), 4), ' ', f(median(@eps), 0), "\n";
				close $d;
			}
		}
	}
	push @md, '';
	push @md, "Cost model (least squares over the backend counts): time per batch = fixed + per busy mapper x (other busy backends), $pg pages:", '';
	push @md, '| method | batch | fixed, ms | per busy mapper, ms | per block, fixed, us |', '|---|---|---|---|---|';
	foreach my $k (sort keys %fit)
	{
		my @p = grep { defined $_->[1] } @{ $fit{$k} };
		next unless @p >= 2;
		my ($sx, $sy, $sxx, $sxy) = (0, 0, 0, 0);
		for (@p) { $sx += $_->[0]; $sy += $_->[1]; $sxx += $_->[0]**2; $sxy += $_->[0] * $_->[1]; }
		my $den = @p * $sxx - $sx**2;
		my $slope = $den ? (@p * $sxy - $sx * $sy) / $den : 0;
		my $icpt = ($sy - $slope * $sx) / @p;
		my ($m, $b) = split ' ', $k;
		push @md, "| $m | $b | " . f($icpt, 3) . ' | ' . f($slope, 3) . ' | ' . f($icpt * 1000 / $b, 2) . ' |';
	}
	push @md, '';
}
push @md, 'Pictures: `' . "$png-throughput.png" . '` (accesses/s vs backends), `' . "$png-eviction.png" . '` (time per eviction batch vs busy mappers), `' . "$png-pagetables.png" . '` (page tables vs backends).', '';
push @md, '<!-- /study -->';

# into bench/RESULTS.md between the markers (a full run), or a file of its own
my $text = join("\n", @md) . "\n";
if ($quick ne 'yes' && -f $out)
{
	open my $in, '<', $out or die;
	my $all = do { local $/; <$in> };
	close $in;
	$all =~ s/<!-- study:.*?<!-- \/study -->\n?//s;
	$all =~ s/\n*$/\n\n/;
	$text = $all . $text;
}
open my $o, '>', $out or die "$out: $!";
print $o $text;
close $o;
