# META.json against the PGXN Meta Spec 1.0.0 (https://pgxn.org/meta/spec.txt):
# every key the spec requires, the type of every key it defines, no key it
# does not define (but x_ ones), and the agreement of the versions in
# META.json, ptbm.control and debian/changelog, and of META.json's
# PostgreSQL range with debian/pgversions.  Every file META.json names
# exists.  No server: it reads files only.
use strict;
use warnings;
use FindBin;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = "$FindBin::RealBin/..";

sub slurp
{
	my ($path) = @_;
	open(my $fh, '<', $path) or die "could not open $path: $!";
	local $/;
	my $text = <$fh>;
	close($fh);
	return $text;
}

# The spec's types.  A JSON string stays a string through JSON::PP: its
# encoder quotes it, where it would not quote a number.
my $json = JSON::PP->new->allow_nonref;
sub is_string { my ($v) = @_; return defined $v && !ref $v && $json->encode($v) =~ /^"./; }
sub is_object { my ($v) = @_; return ref $v eq 'HASH'; }
sub is_term   { my ($v) = @_; return is_string($v) && $v =~ /^[^\/\\\s\p{Cntrl}]{2,}$/; }
sub is_tag    { my ($v) = @_; return is_string($v) && $v =~ /^[^\/\\\p{Cntrl}]{2,255}$/; }
sub is_uri    { my ($v) = @_; return is_string($v) && $v =~ m{^[A-Za-z][A-Za-z0-9+.-]*:\S+$}; }
sub is_email  { my ($v) = @_; return is_string($v) && $v =~ /^[^\s@<>]+@[^\s@<>]+$/; }

# Path: relative, unix conventions, inside the distribution
sub is_path
{
	my ($v) = @_;
	return is_string($v) && length($v) >= 2 && $v !~ m{^/} && $v !~ /\\/
	  && !grep { $_ eq '..' } split(m{/}, $v);
}

# Version: Semantic Versioning 2.0.0
my $semver = qr/(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)
	(?:-(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?
	(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?/x;
sub is_version { my ($v) = @_; return is_string($v) && $v =~ /^$semver$/; }

# Version Range: 0 (any), or comparisons joined by commas
my $clause = qr/(?:(?:==|!=|<=|>=|<|>)\s*)?$semver/;
sub is_range
{
	my ($v) = @_;
	return 0 unless defined $v && !ref $v;
	return 1 if "$v" eq '0';
	return is_string($v) && $v =~ /^$clause(?:\s*,\s*$clause)*$/;
}

# keys that are neither the spec's nor custom (x_ or X_)
sub unknown_keys
{
	my ($h, @known) = @_;
	my %known = map { $_ => 1 } @known;
	return grep { !$known{$_} && !/^[xX]_./ } sort keys %$h;
}

my $meta_text = slurp("$root/META.json");
my $meta = eval { decode_json($meta_text) };
ok(is_object($meta), 'META.json is a JSON object') or diag($@);
$meta = {} unless is_object($meta);

# required: name, abstract, maintainer, license, provides, version, meta-spec
foreach my $key (qw(name abstract maintainer license provides version meta-spec))
{
	ok(exists $meta->{$key}, "required key $key is present");
}
is_deeply([ unknown_keys($meta,
	qw(name abstract maintainer license provides version meta-spec
	  description generated_by tags no_index prereqs release_status resources)) ],
	[], 'no top-level key outside the spec (custom keys start with x_)');

# meta-spec first: a consumer stops unless it knows the version
my $spec = $meta->{'meta-spec'};
ok(is_object($spec) && is_string($spec->{version}) && $spec->{version} =~ /^1\.0\.\d+$/,
	'meta-spec.version is 1.0.x');
ok(!defined $spec->{url} || $spec->{url} =~ m{^https?://pgxn\.org/meta/spec\.txt$},
	'meta-spec.url, if any, is the spec');
is_deeply([ unknown_keys($spec // {}, qw(version url)) ], [], 'meta-spec has only version and url');

ok(is_term($meta->{name}), 'name is a Term');
ok(is_string($meta->{abstract}), 'abstract is a non-empty String');
ok(is_version($meta->{version}), "version is a semantic version (" . ($meta->{version} // "none") . ")");
my $m = $meta->{maintainer};
ok((is_string($m) || (ref $m eq 'ARRAY' && @$m && !grep { !is_string($_) } @$m)),
	'maintainer is a String or an Array of Strings');

# license: a known name, an array of them, or names to URIs
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2
  bsd freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0
  mozilla_1_1 openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source restricted
  unrestricted unknown);
my $l = $meta->{license};
ok(( (is_string($l) && $licenses{$l})
	  || (ref $l eq 'ARRAY' && @$l && !grep { !is_string($_) || !$licenses{$_} } @$l)
	  || (is_object($l) && %$l && !grep { !is_uri($_) } values %$l)),
	'license is one the spec names, a list of them, or names to URIs');
is($l, 'postgresql', 'the license is the PostgreSQL License (debian/copyright)');

# provides: at least one extension, each with a file and a version
my $provides = $meta->{provides};
ok(is_object($provides) && %$provides, 'provides is a non-empty Object');
$provides = {} unless is_object($provides);
foreach my $ext (sort keys %$provides)
{
	my $e = $provides->{$ext};
	ok(is_term($ext), "provides: $ext is a Term");
	ok(is_object($e), "provides.$ext is an Object") or next;
	ok(is_path($e->{file}), "provides.$ext.file is a Path");
	ok(is_version($e->{version}), "provides.$ext.version is a semantic version");
	ok(!exists $e->{abstract} || is_string($e->{abstract}), "provides.$ext.abstract is a String");
	ok(!exists $e->{docfile} || is_path($e->{docfile}), "provides.$ext.docfile is a Path");
	is_deeply([ unknown_keys($e, qw(file version abstract docfile)) ], [],
		"provides.$ext has no key outside the spec");
}

# the optional keys, where present
ok(!exists $meta->{description} || is_string($meta->{description}), 'description is a String');
ok(!exists $meta->{generated_by} || is_string($meta->{generated_by}), 'generated_by is a String');
ok(!exists $meta->{release_status}
	  || (is_string($meta->{release_status}) && $meta->{release_status} =~ /^(stable|testing|unstable)$/),
	'release_status is stable, testing or unstable');
my $tags = $meta->{tags};
ok(!exists $meta->{tags} || (ref $tags eq 'ARRAY' && @$tags && !grep { !is_tag($_) } @$tags),
	'tags is an Array of Tags');

my $no_index = $meta->{no_index};
my @no_index_files;
my @no_index_dirs;
if (exists $meta->{no_index})
{
	ok(is_object($no_index) && (exists $no_index->{file} || exists $no_index->{directory}),
		'no_index is an Object with file or directory');
	$no_index = {} unless is_object($no_index);
	is_deeply([ unknown_keys($no_index, qw(file directory)) ], [], 'no_index has only file and directory');
	foreach my $kind (qw(file directory))
	{
		next unless exists $no_index->{$kind};
		my $list = $no_index->{$kind};
		my @paths = ref $list eq 'ARRAY' ? @$list : ($list);
		ok(@paths && !grep({ !is_path($_) } @paths), "no_index.$kind lists Paths: @paths");
		push @{ $kind eq 'file' ? \@no_index_files : \@no_index_dirs }, @paths;
	}
}

my $prereqs = $meta->{prereqs};
if (exists $meta->{prereqs})
{
	ok(is_object($prereqs), 'prereqs is an Object');
	$prereqs = {} unless is_object($prereqs);
	is_deeply([ unknown_keys($prereqs, qw(configure build test runtime develop)) ], [],
		'prereqs names only the spec\'s phases');
	foreach my $phase (sort keys %$prereqs)
	{
		my $p = $prereqs->{$phase};
		ok(is_object($p) && %$p, "prereqs.$phase is a non-empty Object") or next;
		is_deeply([ unknown_keys($p, qw(requires recommends suggests conflicts)) ], [],
			"prereqs.$phase names only the spec's relationships");
		foreach my $rel (sort keys %$p)
		{
			my $r = $p->{$rel};
			ok(is_object($r) && %$r && !grep({ !is_term($_) || !is_range($r->{$_}) } keys %$r),
				"prereqs.$phase.$rel maps Terms to Version Ranges");
		}
	}
}

my $res = $meta->{resources};
if (exists $meta->{resources})
{
	ok(is_object($res) && grep({ exists $res->{$_} } qw(homepage bugtracker repository)),
		'resources is an Object with homepage, bugtracker or repository');
	$res = {} unless is_object($res);
	is_deeply([ unknown_keys($res, qw(homepage bugtracker repository)) ], [],
		'resources has no key outside the spec');
	ok(!exists $res->{homepage} || is_uri($res->{homepage}), 'resources.homepage is a URI');
	if (exists $res->{bugtracker})
	{
		my $b = $res->{bugtracker};
		ok(is_object($b) && (exists $b->{web} || exists $b->{mailto})
			  && (!exists $b->{web} || is_uri($b->{web}))
			  && (!exists $b->{mailto} || is_email($b->{mailto}))
			  && !unknown_keys($b, qw(web mailto)),
			'resources.bugtracker has a web URI or a mailto address');
	}
	if (exists $res->{repository})
	{
		my $r = $res->{repository};
		ok(is_object($r)
			  && ((exists $r->{url} && exists $r->{type}) || exists $r->{web})
			  && (!exists $r->{url} || is_uri($r->{url}))
			  && (!exists $r->{web} || is_uri($r->{web}))
			  && (!exists $r->{type} || $r->{type} =~ /^\p{Lower}+$/)
			  && !unknown_keys($r, qw(url web type)),
			'resources.repository has a url and a type, or a web URI');
	}
}

# The versions agree: ptbm.control's default_version (1.2 means 1.2.0),
# META.json's, the extension's in provides, debian/changelog's upstream part.
my ($control) = slurp("$root/ptbm.control") =~ /^\s*default_version\s*=\s*'([^']+)'/m;
ok(defined $control, "ptbm.control has a default_version") or $control = '';
my @parts = split(/\./, $control);
push @parts, 0 while @parts < 3;
my $control_semver = join('.', @parts);
is($meta->{version}, $control_semver, "META.json's version is ptbm.control's default_version $control");
is($provides->{ptbm}{version}, $control_semver, "provides.ptbm.version is the same");
is($meta->{name}, 'ptbm', 'the distribution is named ptbm');
my ($changelog) = slurp("$root/debian/changelog") =~ /^ptbm \(([^)]+)\)/;
ok(defined $changelog, 'debian/changelog starts with an entry for ptbm') or $changelog = '';
(my $upstream = $changelog) =~ s/^\d+://;
$upstream =~ s/-[^-]+$//;
is($upstream, $control, "debian/changelog's version $changelog is ptbm.control's $control plus a revision");
is($provides->{ptbm}{file}, "ptbm--$control.sql",
	"provides.ptbm.file is the install script of the default version");

# META.json's PostgreSQL range admits exactly the majors debian/pgversions
# builds for (it names them one by one; "all" or "N+" would need no range).
sub cmp_semver
{
	my ($a, $b) = map { [ (split(/[-+]/, $_))[0] =~ /^(\d+)\.(\d+)\.(\d+)$/ ] } @_;
	return $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] || $a->[2] <=> $b->[2];
}
sub in_range
{
	my ($version, $range) = @_;
	return 1 if "$range" eq '0';
	foreach my $c (split(/\s*,\s*/, $range))
	{
		my ($op, $v) = $c =~ /^(==|!=|<=|>=|<|>)?\s*(\S+)$/;
		my $r = cmp_semver($version, $v);
		$op //= '>=';
		return 0 unless ($op eq '==' ? $r == 0 : $op eq '!=' ? $r != 0 : $op eq '<' ? $r < 0
			: $op eq '<=' ? $r <= 0 : $op eq '>' ? $r > 0 : $r >= 0);
	}
	return 1;
}
my @pgversions = grep { /\S/ && !/^#/ } map { s/^\s+|\s+$//gr } split(/\n/, slurp("$root/debian/pgversions"));
my $pg_range = is_object($prereqs) && is_object($prereqs->{runtime})
  && is_object($prereqs->{runtime}{requires}) ? $prereqs->{runtime}{requires}{PostgreSQL} : undef;
ok(is_range($pg_range), 'prereqs.runtime.requires names a PostgreSQL range');
if (is_range($pg_range) && @pgversions && !grep { !/^\d+$/ } @pgversions)
{
	my %built = map { $_ => 1 } @pgversions;
	my @admitted = grep { in_range("$_.0.0", $pg_range) } 10 .. 40;
	is_deeply(\@admitted, [ sort { $a <=> $b } keys %built ],
		"the PostgreSQL range \"$pg_range\" admits the majors of debian/pgversions: @pgversions");
}

# Every file META.json names exists.
foreach my $ext (sort keys %$provides)
{
	next unless is_object($provides->{$ext});
	foreach my $k (qw(file docfile))
	{
		my $f = $provides->{$ext}{$k};
		ok(-f "$root/$f", "provides.$ext.$k $f exists") if is_path($f);
	}
}
ok(-f "$root/$_", "no_index file $_ exists") foreach grep { is_path($_) } @no_index_files;
ok(-d "$root/$_", "no_index directory $_ exists") foreach grep { is_path($_) } @no_index_dirs;

done_testing();
