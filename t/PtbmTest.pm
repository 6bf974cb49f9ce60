
=pod

=head1 NAME

PtbmTest - helpers shared by ptbm's TAP tests

=head1 DESCRIPTION

What the kernel says about a process, read by the test itself from /proc
(the server's processes run as the same OS user as the test), so that the
tests can compare it with what ptbm reports.  Addresses are kept as the hex
strings the kernel prints and compared as numbers (perl has 64-bit
integers on every platform ptbm runs on).

=cut

package PtbmTest;

use strict;
use warnings;
no warnings 'portable';    # hex() of 64-bit addresses

use Carp;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  ptbm_node
  ptbm_settings
  ptbm_session
  region_smaps
  region_maps_vmas
  proc_status_kb
  proc_fd_count
  page_size
  postmaster_pid
  file_bytes
);

# The kernel's base page size, as ptbm uses it; from smaps of this process.
sub page_size
{
	my $kb = proc_smaps_first_field($$, 'KernelPageSize');
	return $kb * 1024;
}

sub proc_smaps_first_field
{
	my ($pid, $field) = @_;
	open my $fh, '<', "/proc/$pid/smaps"
	  or croak "could not open /proc/$pid/smaps: $!";
	while (my $line = <$fh>)
	{
		return $1 if $line =~ /^\Q$field\E:\s+(\d+) kB/;
	}
	croak "no $field in /proc/$pid/smaps";
}

=pod

=item ptbm_node($name, %settings)

A new initialized node (not started) whose postgresql.conf includes the
file ptbm_test.conf, which holds shared_preload_libraries and the ptbm
settings given; see ptbm_settings.  A setting whose value is undef is left
out.

=cut

sub ptbm_node
{
	my ($name, %settings) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	# nothing of this test needs more; keeps starts fast
	$node->append_conf(
		'postgresql.conf', qq(
max_connections = 20
shared_buffers = 16MB
max_wal_size = 64MB
log_min_messages = log
include_if_exists = 'ptbm_test.conf'
));
	ptbm_settings($node, %settings);
	return $node;
}

=pod

=item ptbm_settings($node, %settings)

Rewrites ptbm_test.conf in the data directory.  The key
shared_preload_libraries defaults to 'ptbm'; pass it as undef to leave it
out.  Values are written as given, quoted.

=cut

sub ptbm_settings
{
	my ($node, %settings) = @_;
	$settings{shared_preload_libraries} = 'ptbm'
	  unless exists $settings{shared_preload_libraries};
	my $conf = '';
	foreach my $k (sort keys %settings)
	{
		next unless defined $settings{$k};
		(my $v = $settings{$k}) =~ s/'/''/g;
		$conf .= "$k = '$v'\n";
	}
	my $file = $node->data_dir . '/ptbm_test.conf';
	open my $fh, '>', $file or croak "could not write $file: $!";
	print $fh $conf;
	close $fh;
	return;
}

# Parses the header line of a maps/smaps entry: (start, end, perms, path).
sub _vma_header
{
	my ($line) = @_;
	return () unless $line =~ /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+\S+\s+\S+\s+\d+\s*(.*?)\s*$/;
	return (hex($1), hex($2), $3, $4);
}

=pod

=item ptbm_session($node, $name)

A client session of $node that stays connected (a BackgroundPsql), with
application_name $name and notices off, so that query_safe does not take
ptbm's one-time notices for a failure; returns it and its backend's pid.

=cut

sub ptbm_session
{
	my ($node, $name) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 1);
	$s->query_safe("SET application_name = '$name'; SET client_min_messages = warning");
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	chomp $pid;
	return ($s, $pid);
}

=pod

=item region_smaps($pid, $base, $size)

Sums /proc/PID/smaps over the VMAs that overlap [base, base + size); base is
the text ptbm_region() reports ('0x...').  Returns a hash ref: vmas (count),
path (of the first), start (of the first) and end (of the last), as numbers,
and every "Key: N kB" field summed (Rss, Pss, ...).

=cut

sub region_smaps
{
	my ($pid, $base, $size) = @_;
	my $start = hex($base);
	my $end = $start + $size;
	my %r = (vmas => 0, Rss => 0);
	my $inside = 0;

	open my $fh, '<', "/proc/$pid/smaps"
	  or croak "could not open /proc/$pid/smaps: $!";
	while (my $line = <$fh>)
	{
		my ($s, $e, $perms, $path) = _vma_header($line);
		if (defined $s)
		{
			$inside = ($s < $end && $e > $start);
			if ($inside)
			{
				if ($r{vmas} == 0)
				{
					$r{path} = $path;
					$r{start} = $s;
				}
				$r{end} = $e;
				$r{vmas}++;
			}
			next;
		}
		next unless $inside;
		$r{$1} += $2 if $line =~ /^(\w+):\s+(\d+) kB/;
	}
	close $fh;
	return \%r;
}

=pod

=item region_maps_vmas($pid, $base, $size)

The lines of /proc/PID/maps whose VMA overlaps [base, base + size).

=cut

sub region_maps_vmas
{
	my ($pid, $base, $size) = @_;
	my $start = hex($base);
	my $end = $start + $size;
	my @lines;

	open my $fh, '<', "/proc/$pid/maps"
	  or croak "could not open /proc/$pid/maps: $!";
	while (my $line = <$fh>)
	{
		my ($s, $e) = _vma_header($line);
		next unless defined $s;
		push @lines, $line if $s < $end && $e > $start;
	}
	close $fh;
	return @lines;
}

=pod

=item proc_status_kb($pid, $key)

"Key: N kB" from /proc/PID/status, in kB.

=cut

sub proc_status_kb
{
	my ($pid, $key) = @_;
	open my $fh, '<', "/proc/$pid/status"
	  or croak "could not open /proc/$pid/status: $!";
	while (my $line = <$fh>)
	{
		if ($line =~ /^\Q$key\E:\s+(\d+) kB/)
		{
			close $fh;
			return $1;
		}
	}
	close $fh;
	croak "no $key in /proc/$pid/status";
}

=pod

=item file_bytes($file, $offset, $len)

The bytes of a file at an offset, as lowercase hex (read(2), so through the
page cache that a shared file mapping writes into).

=cut

sub file_bytes
{
	my ($file, $offset, $len) = @_;
	open my $fh, '<:raw', $file or croak "could not open $file: $!";
	sysseek($fh, $offset, 0) or croak "could not seek $file: $!";
	my $buf = '';
	my $got = sysread($fh, $buf, $len);
	croak "could not read $file: $!" unless defined $got;
	croak "short read of $file: $got of $len bytes" if $got != $len;
	close $fh;
	return unpack('H*', $buf);
}

=pod

=item postmaster_pid($node)

The pid in the first line of the running node's postmaster.pid.

=cut

sub postmaster_pid
{
	my ($node) = @_;
	my $file = $node->data_dir . '/postmaster.pid';
	open my $fh, '<', $file or croak "could not open $file: $!";
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	return $pid;
}

=pod

=item proc_fd_count($pid)

The number of open file descriptors of a process.

=cut

sub proc_fd_count
{
	my ($pid) = @_;
	opendir my $dh, "/proc/$pid/fd" or croak "could not open /proc/$pid/fd: $!";
	my $n = grep { /^\d+$/ } readdir $dh;
	closedir $dh;
	return $n;
}

1;
