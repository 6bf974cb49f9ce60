#!/usr/bin/perl
# report.pl RESULTS_TXT MACHINE OUT_MD OUT_DAT QUICK PNG_NAME
# Turns bdrv's and run.sh's "RESULT key=value ..." lines into the table of
# ratios (markdown) and the data file of figure 5 (for bench/scaling.gp).
use strict;
use warnings;

my ($in, $machine, $out_md, $out_dat, $quick, $png) = @ARGV;
my (@rows, %plan);
open(my $fh, '<', $in) or die "$in: $!";
while (<$fh>) {
	chomp;
	if (/^PLAN (.*)/) {
		%plan = (%plan, map { split /=/, $_, 2 } split ' ', $1);
		next;
	}
	next unless /^RESULT (.*)/;
	push @rows, { map { split /=/, $_, 2 } split ' ', $1 };
}
close $fh;

sub median {
	my @v = sort { $a <=> $b } @_;
	return undef unless @v;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}
# A distribution-free 95% confidence interval of the median of @_ (order
# statistics n/2 -/+ 0.98 sqrt(n), the normal approximation to the binomial).
sub median_ci {
	my @v = sort { $a <=> $b } @_;
	my $n = @v;
	return (undef, undef) if $n < 6;
	my $lo = int($n / 2 - 0.98 * sqrt($n));
	my $hi = int($n / 2 + 0.98 * sqrt($n) + 0.999);
	$lo = 0 if $lo < 0;
	$hi = $n - 1 if $hi > $n - 1;
	return ($v[$lo], $v[$hi]);
}
# Figure 2: the 95% interval of the median of the per-run ratios (each run's
# ptbm time over the pg_buffercache time measured right after it).
sub ratio_ci {
	my ($p) = @_;
	return '' unless defined $p->{ratios};
	my ($lo, $hi) = median_ci(split /,/, $p->{ratios});
	return defined $lo ? sprintf(' (runs: median %s, 95%% interval %s .. %s)', f(median(split /,/, $p->{ratios}), 2), f($lo, 2), f($hi, 2)) : '';
}
sub ratio_ci_note {
	my ($p, $target) = @_;
	return '' unless defined $p->{ratios};
	my ($lo, $hi) = median_ci(split /,/, $p->{ratios});
	return defined $lo && $lo <= $target && $hi > $target ? " ($target lies inside the interval: this run cannot tell)" : '';
}
sub pick { my ($kind, %k) = @_; grep { my $r = $_; $r->{kind} eq $kind && !grep { ($r->{$_} // '') ne $k{$_} } keys %k } @rows }
sub f { my ($v, $d) = @_; defined $v ? sprintf("%.${d}f", $v) : 'n/a' }
sub yes { $_[0] ? '**yes**' : '**NO**' }
sub mpages { f($_[0] / 1e6, 0) . ' M' }
sub cr { my ($a, $b) = @_; (defined $a && defined $b && $b > 0) ? f($a / $b, 2) : '' }

my @out;
my $big = $plan{big} // '?';
push @out, "# ptbm benchmark results" . ($quick eq 'yes' ? ' (--quick: smaller sizes, fewer repetitions)' : ''), '';
push @out, "Produced by `bash bench/run.sh" . ($quick eq 'yes' ? ' --quick' : '') . "` on " . scalar(gmtime) . " UTC.", '';
push @out, "Machine: $machine.", '';
push @out, "ptbm measured: built from commit $plan{build} (`make && make install` at the start of the run).", '' if $plan{build};
push @out, "Every figure is a median over alternating runs ($plan{reps1} for figure 1, " . ($plan{reps2} // $plan{reps}) . " for figure 2, $plan{reps} elsewhere) of ptbm and its baseline in the same run "
	. "(figure 4: over the cancellations; figure 3: $plan{pgb_runs} pgbench runs of $plan{pgb_t} s, "
	. "each running one client against three clusters one after another (without ptbm, with ptbm, and without ptbm again as a control), "
	. "the order rotated from run to run, the client and its backend pinned to one CPU, "
	. "the ratio being the median of the per-run ratios; and $plan{conn_runs} runs of $plan{conn_per} connections "
	. "alternating one by one between the clusters, each run's figure the median connection time). "
	. "Timings are client-side (libpq, one session, unix socket) for SQL and in-process for the C baseline.", '';
push @out, "Other load on the machine: 1-minute load average $plan{load_start} at start, $plan{load_end} at the end "
	. "(2 cores; anything above ~1 is other work sharing the CPUs with the benchmark). The run took $plan{seconds} s.", '';
push @out, "Memory used: $plan{avail_mb} MB were available at start; figure 1 used 20 backends writing "
	. "$plan{t1} random pages each of a $big region (" . f(100 * $plan{t1} / ($plan{big_pages} || 1), 2)
	. "% of it), figure 5 $plan{t5} random pages per backend.", '';

# ---- the table ------------------------------------------------------------------
my ($f1) = pick('scale', tag => 'fig1');
my ($c1) = pick('cancel', tag => 'fig1');
my ($pt) = pick('pte', tag => 'default');
my ($pt_mem) = pick('pte', tag => 'work_mem_1GB');
my ($pt_use) = pick('pte', tag => 'buffers_in_use');
my ($cn) = pick('connect');
my @pg = pick('pgbench');

push @out, '## Table of ratios', '';
push @out, 'ratio: ptbm over the baseline, elapsed time (what the targets are about). CPU ratio: the same with the CPU time '
	. 'the server backend (ptbm) and the baseline process spent, from /proc/PID/schedstat: it does not grow when other '
	. 'work takes the CPUs away, so it shows whether a ratio comes from ptbm or from the load.', '';
push @out, '| # | measure | ptbm | baseline | ratio | CPU ratio | target | met |';
push @out, '|---|---|---|---|---|---|---|---|';
my %met;
if ($f1) {
	my $r = $f1->{ptbm_ms} / $f1->{scan_ms};
	my $rf = $f1->{ptbm_ms} / $f1->{smaps_ms};
	my $touched_pages = 20 * $f1->{region_pages};
	my $rate = $touched_pages / ($f1->{ptbm_ms} / 1000);
	my $rate_all = $f1->{procs} * $f1->{region_pages} / ($f1->{ptbm_ms} / 1000);
	$met{1} = $r <= 1.5;
	$met{'1b'} = $rate >= 100e6;
	push @out, sprintf('| 1 | summary scan, `SELECT * FROM ptbm_backends()`, 20 idle backends x %s pages of %s (%d processes listed) | %s ms | kscan, PAGEMAP_SCAN + pagemap + smaps + status: %s ms | %s | %s | <= 1.5 | %s |',
		$f1->{touch}, $big, $f1->{procs}, f($f1->{ptbm_ms}, 1), f($f1->{scan_ms}, 1), f($r, 2),
		cr($f1->{ptbm_cpu_ms}, $f1->{scan_cpu_ms}), yes($met{1}));
	push @out, sprintf('| 1 | the same, against the kernel\'s floor | %s ms | kscan, smaps + status only: %s ms | %s | %s | (<= 1.5) | %s |',
		f($f1->{ptbm_ms}, 1), f($f1->{smaps_ms}, 1), f($rf, 2), cr($f1->{ptbm_cpu_ms}, $f1->{smaps_cpu_ms}), yes($rf <= 1.5));
	push @out, sprintf('| 1 | region pages per second (20 backends x %s pages / time) | %s/s | | | | >= 100 M/s | %s |',
		$f1->{region_pages}, mpages($rate), yes($met{'1b'}));
	push @out, sprintf('| 1 | (the same over all %d processes scanned) | %s/s | | | | | |', $f1->{procs}, mpages($rate_all));
}
if ($pt) {
	my $r = $pt->{ptbm_ms} / $pt->{bufcache_ms};
	$met{2} = $r <= 1.0;
	push @out, sprintf('| 2 | row output, `SELECT count(*) FROM ptbm_pte()`, 1 GB fully written (%d rows) | %s ms | `SELECT count(*) FROM pg_buffercache`, shared_buffers = 2GB (%d rows, buffers unused): %s ms | %s | %s | <= 1.0 | %s |',
		$pt->{ptbm_rows}, f($pt->{ptbm_ms}, 1), $pt->{bufcache_rows}, f($pt->{bufcache_ms}, 1), f($r, 2) . ratio_ci($pt),
		cr($pt->{ptbm_cpu_ms}, $pt->{bufcache_cpu_ms}), yes($met{2}) . ratio_ci_note($pt, 1.0));
}
if ($pt && defined $pt->{pagemap_ms}) {
	# ptbm_pte() = the kernel's pagemap read (timed from C on the same
	# backend, same chunks) + building and storing the rows
	my $rows_ms = $pt->{ptbm_ms} - $pt->{pagemap_ms};
	push @out, sprintf('| 2 | the kernel\'s part of it: pread of the same %d pagemap entries of the same backend from C, in ptbm\'s chunks of 8192 | %s ms | %s ms | %s | | (the kernel\'s floor) | |',
		$pt->{ptbm_rows}, f($pt->{pagemap_ms}, 1), f($pt->{bufcache_ms}, 1), f($pt->{pagemap_ms} / $pt->{bufcache_ms}, 2));
	push @out, sprintf('| 2 | the rest of it: ptbm_pte() less that read (building and storing 15-column rows) | %s ms | %s ms | %s | | (<= 1.0) | %s |',
		f($rows_ms, 1), f($pt->{bufcache_ms}, 1), f($rows_ms / $pt->{bufcache_ms}, 2), yes($rows_ms <= $pt->{bufcache_ms}));
	push @out, sprintf('| 2 | the same query from a backend whose page table holds none of the region (no pagemap read; rows without via, 6 bytes narrower) | %s ms | %s ms | %s | | | |',
		f($pt->{untouched_ms}, 1), f($pt->{bufcache_ms}, 1), f($pt->{untouched_ms} / $pt->{bufcache_ms}, 2))
		if defined $pt->{untouched_ms};
}
for my $v ([$pt_mem, 'the same with work_mem = 1GB (both results stay in memory, no temporary file)'],
		   [$pt_use, 'the same with every buffer in use (pg_prewarm of a 2 GB table; default work_mem)']) {
	my ($p, $what) = @$v;
	next unless $p;
	push @out, sprintf('| 2 | %s | %s ms | %s ms | %s | %s | (<= 1.0) | %s |',
		$what, f($p->{ptbm_ms}, 1), f($p->{bufcache_ms}, 1), f($p->{ptbm_ms} / $p->{bufcache_ms}, 2) . ratio_ci($p),
		cr($p->{ptbm_cpu_ms}, $p->{bufcache_cpu_ms}), yes($p->{ptbm_ms} <= $p->{bufcache_ms}) . ratio_ci_note($p, 1.0));
}
if (@pg) {
	my $w = median(map { $_->{with_tps} } @pg);
	my $wo = median(map { $_->{without_tps} } @pg);
	my $pair = median(map { $_->{with_tps} / $_->{without_tps} } @pg);
	$met{3} = $pair >= 0.99;
	my $aa = defined $pg[0]{without2_tps} ? median(map { $_->{without2_tps} / $_->{without_tps} } @pg) : undef;
	my ($clo, $chi) = median_ci(map { $_->{with_tps} / $_->{without_tps} } @pg);
	my $note = defined $aa && abs($aa - 1) > 0.01 ? sprintf(' (but the A/A control is %s: this run cannot resolve 1%%)', f($aa, 3)) : '';
	$note .= ' (0.99 lies inside the interval: this run cannot tell)' if defined $clo && $clo < 0.99 && $chi >= 0.99;
	push @out, sprintf('| 3 | idle overhead, pgbench -S TPS, ptbm preloaded (default region, untouched) | %s TPS | not loaded: %s TPS | %s%s | | >= 0.99 | %s%s |',
		f($w, 0), f($wo, 0), f($pair, 3), defined $clo ? sprintf(' (95%% interval of the median %s .. %s)', f($clo, 3), f($chi, 3)) : '', yes($met{3}), $note);
	if (defined $aa) {
		my @aa = sort { $a <=> $b } map { $_->{without2_tps} / $_->{without_tps} } @pg;
		push @out, sprintf('| 3 | control: the same without ptbm on both sides (A/A; 1.000 if the run could resolve 1%%) | %s TPS | %s TPS | %s (runs %s .. %s) | | (1.00) | |',
			f(median(map { $_->{without2_tps} } @pg), 0), f($wo, 0), f($aa, 3), f($aa[0], 3), f($aa[-1], 3));
	}
}
if ($cn) {
	my $r = $cn->{a_ms} / $cn->{b_ms};
	$met{'3b'} = $r >= 0.95;
	push @out, sprintf('| 3 | connection set-up (connect + disconnect), 1 TB region (ratio: time without / time with) | %s ms | not loaded: %s ms | %s | | >= 0.95 | %s |',
		f($cn->{b_ms}, 3), f($cn->{a_ms}, 3), f($r, 3), yes($met{'3b'}));
	push @out, sprintf('| 3 | control: the same without ptbm on both sides (A/A) | %s ms | %s ms | %s | | (1.00) | |',
		f($cn->{a2_ms}, 3), f($cn->{a_ms}, 3), f($cn->{a_ms} / $cn->{a2_ms}, 3)) if defined $cn->{a2_ms};
}
if ($c1) {
	push @out, sprintf('| 4 | cancel latency, pg_cancel_backend() to the error, during the largest scan (%s ms) | median %s ms, max %s ms (%d cancels) | | | | (none) | |',
		f($c1->{scan_ms}, 0), f($c1->{cancel_median_ms}, 1), f($c1->{cancel_max_ms}, 1), $c1->{cancelled} // 0);
}
push @out, '| 5 | scaling: see below and the figure | | | | | cost follows touched pages | see below |';
push @out, '';

# ---- figure 5 ------------------------------------------------------------------
push @out, '## Figure 5: cost of ptbm_backends() against touched pages', '';
push @out, "![ptbm_backends() time against touched pages]($png)", '';
push @out, 'x: pages present in the region, summed over all processes; page-table pages: the PTE tables (one per 2 MB slice '
	. 'with at least one present entry) that hold them, each of 512 entries, which every walk (PAGEMAP_SCAN, pagemap, smaps) reads whole.', '';
push @out, '| series | backends | region | pages written per backend | processes | present pages | page-table pages | ptbm ms | ptbm CPU ms | kscan scan ms | kscan smaps ms | ptbm ms per 100k present pages | ptbm us per page-table page |';
push @out, '|---|---|---|---|---|---|---|---|---|---|---|---|---|';
open(my $dat, '>', $out_dat) or die "$out_dat: $!";
my @series = (
	['backends', [pick('scale', tag => "n_$big")], $big],
	['region', [pick('scale', tag => 'region_1GB'), grep({ $_->{backends} == 10 } pick('scale', tag => "n_$big")), pick('scale', tag => 'region_1TB')], undef],
	['fig1', [$f1 ? $f1 : ()], $big],
);
my $si = 0;
for my $s (@series) {
	my ($name, $list) = @$s;
	for my $r (@$list) {
		my $region = $r->{tag} =~ /region_(\w+)/ ? $1 : $big;
		my $label = $name eq 'backends' ? "$r->{backends}" : $name eq 'region' ? $region : "20 x 1%";
		push @out, sprintf('| %s | %d | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |',
			$name eq 'fig1' ? 'figure 1' : $name, $r->{backends}, $region, $r->{touch}, $r->{procs},
			$r->{present_total}, $r->{pte_tables} // 'n/a', f($r->{ptbm_ms}, 1), f($r->{ptbm_cpu_ms}, 1), f($r->{scan_ms}, 1), f($r->{smaps_ms}, 1),
			$r->{present_total} ? f($r->{ptbm_ms} / $r->{present_total} * 1e5, 1) : 'n/a',
			$r->{pte_tables} ? f($r->{ptbm_ms} / $r->{pte_tables} * 1e3, 1) : 'n/a');
		printf $dat "%d %s %s %s %s %s \"%s\" %s\n", $si, $r->{present_total}, $r->{pte_tables} // 0,
			$r->{ptbm_ms}, $r->{scan_ms}, $r->{smaps_ms}, $label, $r->{ptbm_cpu_ms} // $r->{ptbm_ms};
	}
	print $dat "\n\n";
	$si++;
}
close $dat;
push @out, '';
my @mm = grep { ($_->{mismatch_scan} // 0) + ($_->{mismatch_smaps} // 0) > 0 } pick('scale');
my $moved = 0;
$moved += $_->{vmpte_moved} // 0 for pick('scale');
push @out, 'Agreement: before each timing, kscan\'s answer (both methods) was compared with ptbm\'s, cell by cell, '
	. 'for every process ptbm listed: ' . (@mm ? scalar(@mm) . ' step(s) had differing cells (see the raw results).' : 'identical in every step')
	. " (page_table, the whole process's VmPTE, is compared apart, since it moves whenever a process that is not idle "
	. "maps or unmaps memory between the two reads: it differed in $moved of the comparisons).", '';

push @out, '## Raw results', '', '```';
open($fh, '<', $in) or die;
push @out, map { chomp; $_ } <$fh>;
close $fh;
push @out, '```', '';

open(my $o, '>', $out_md) or die "$out_md: $!";
print $o join("\n", @out), "\n";
close $o;
