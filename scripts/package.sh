#!/usr/bin/env bash
# Builds the Debian package postgresql-15-ptbm (debian/) from a copy of the
# tree, installs it, checks in a throw-away cluster that CREATE EXTENSION
# ptbm and a report work from the packaged files, then removes the package
# and puts back the ptbm files that were installed before (by make install),
# byte for byte.  scripts/test.sh runs it last, as root.
#
# The build runs as the postgres user on a copy it owns, so that the
# pg_regress suite runs at build time (initdb refuses root; debian/rules
# skips the suite when it is root).  Prints TAP-style lines and ends with
# "package: N passed, M failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SRC=$(pwd)
. scripts/common.sh

PGV=15
PKG=postgresql-$PGV-ptbm
LIBDIR=/usr/lib/postgresql/$PGV/lib
EXTDIR=/usr/share/postgresql/$PGV/extension
APT=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -qq)

n=0
passed=0
failed=0
ok() {							# ok DESCRIPTION
	n=$((n + 1))
	passed=$((passed + 1))
	echo "ok $n - $1"
}
not_ok() {						# not_ok DESCRIPTION [DIAGNOSTICS]
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && echo "$2" | sed 's/^/# /'
	return 0
}
check() {						# check DESCRIPTION command...
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what" "$out"; fi
}
finish() {
	echo "1..$n"
	echo "package: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

if [ "$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then
	echo "ok 1 # SKIP installing a package needs root or sudo"
	echo "package: 0 passed, 0 failed"
	exit 0
fi
if dpkg -s "$PKG" 2>/dev/null | grep -q '^Status: install ok installed'; then
	not_ok "$PKG is not installed already" \
		"it is: this script installs and removes it, so remove it first (apt-get purge $PKG)"
	finish
fi

# Build dependencies (debian/control's Build-Depends and the tools).
missing=()
for p in debhelper postgresql-server-dev-all postgresql-server-dev-$PGV postgresql-$PGV \
	dpkg-dev build-essential; do
	dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "# installing: ${missing[*]}"
	as_root "${APT[@]}" update
	as_root "${APT[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
fi
check "the build dependencies are installed" \
	dpkg-checkbuilddeps "$SRC/debian/control"

WORK=$(mktemp -d /tmp/ptbm-package.XXXXXX)
SOCK=$(mktemp -d /tmp/ptbm-package-sock.XXXXXX)
BACKUP=$WORK/installed-before.tar
DATA=$WORK/cluster
installed=
backed_up=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	if [ -f "$DATA/postmaster.pid" ]; then
		as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
	fi
	if [ -n "$installed" ]; then
		as_root "${APT[@]}" purge "$PKG" >/dev/null 2>&1
		installed=
	fi
	if [ -n "$backed_up" ]; then
		as_root tar -C / -xpf "$BACKUP"
		backed_up=
	fi
	cd / && as_root rm -rf "$WORK" "$SOCK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A copy of the tree without what builds and test runs leave behind,
# owned by postgres; the .deb files land next to it in $WORK.
mkdir "$WORK/ptbm"
tar -C "$SRC" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude='./tmp_check*' --exclude=./results --exclude='./output_iso*' \
	--exclude=./log --exclude=./regression.diffs --exclude=./regression.out \
	--exclude=./test/unit/test_kmem --exclude=./bench/out \
	--exclude='./build-*' --exclude="./debian/$PKG" --exclude=./debian/.debhelper \
	-cf - . | tar -C "$WORK/ptbm" -xf -
chmod 755 "$WORK"
[ "$(id -u)" = 0 ] && chown -R postgres "$WORK" "$SOCK"

# 1. Build.
start=$SECONDS
if (cd "$WORK/ptbm" && as_postgres env DEB_BUILD_OPTIONS=noddebs \
	dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1; then
	ok "dpkg-buildpackage -b builds $PKG as postgres ($((SECONDS - start)) s)"
else
	not_ok "dpkg-buildpackage -b builds $PKG as postgres" "$(tail -n 40 "$WORK/build.log")"
	finish
fi
debs=("$WORK/${PKG}"_*.deb)
DEB=${debs[0]}
if grep -qE '^ *All [0-9]+ tests passed' "$WORK/build.log"; then
	ok "the build ran the pg_regress suite against the packaged files: $(grep -oE 'All [0-9]+ tests passed' "$WORK/build.log")"
else
	not_ok "the build ran the pg_regress suite against the packaged files" \
		"$(grep -E 'ptbm: building as root|tests? (failed|passed)|FAILED' "$WORK/build.log")"
fi
version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$SRC/ptbm.control")
debversion=$(dpkg-deb -f "$DEB" Version)
check "the package's version ($debversion) is ptbm.control's default_version ($version) plus a revision" \
	test "${debversion%-*}" = "$version"

# Every file the extension needs is in the package, at PostgreSQL 15's places.
contents=$(dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's#^\./#/#')
want=("$LIBDIR/ptbm.so" "$EXTDIR/ptbm.control")
for f in "$SRC"/ptbm--*.sql; do want+=("$EXTDIR/$(basename "$f")"); done
absent=$(for f in "${want[@]}"; do echo "$contents" | grep -qxF "$f" || echo "$f"; done)
if [ -z "$absent" ]; then
	ok "the package holds ptbm.so, ptbm.control and the tree's $((${#want[@]} - 2)) ptbm--*.sql"
else
	not_ok "the package holds ptbm.so, ptbm.control and every ptbm--*.sql" "missing: $absent"
fi

# 2. A fresh cluster, made before the package goes in so that the time the
# developer's install is replaced stays short.
PORT=
for p in $(shuf -i 20000-29999 -n 50); do
	if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q . && [ ! -e "/tmp/.s.PGSQL.$p" ]; then
		PORT=$p
		break
	fi
done
if as_postgres "$PG_BIN/initdb" -D "$DATA" -A trust -U postgres -N >"$WORK/initdb.log" 2>&1; then
	cat >>"$DATA/postgresql.conf" <<-EOF
		port = $PORT
		listen_addresses = ''
		unix_socket_directories = '$SOCK'
		shared_preload_libraries = 'ptbm'
		ptbm.region_size = '16MB'
	EOF
	ok "initdb makes a fresh cluster (port $PORT, socket in $SOCK)"
else
	not_ok "initdb makes a fresh cluster" "$(tail -n 20 "$WORK/initdb.log")"
	finish
fi

# 3. Install, over the developer's install: keep a copy of it first.
mapfile -t before < <(cd / && ls -d "${LIBDIR#/}"/ptbm.so "${LIBDIR#/}"/bitcode/ptbm \
	"${LIBDIR#/}"/bitcode/ptbm.* "${EXTDIR#/}"/ptbm.control "${EXTDIR#/}"/ptbm--*.sql 2>/dev/null)
sums_before=
if [ ${#before[@]} -gt 0 ]; then
	# posix format: the times are kept to the nanosecond
	as_root tar --format=posix -C / -cpf "$BACKUP" "${before[@]}" && backed_up=1
	sums_before=$(cd / && find "${before[@]}" -type f -exec md5sum {} + | sort -k 2)
	echo "# kept a copy of the ptbm files installed before: ${before[*]}"
fi
installed=1
if out=$(as_root "${APT[@]}" install --no-install-recommends "$DEB" 2>&1); then
	ok "apt-get install $(basename "$DEB")"
else
	not_ok "apt-get install $(basename "$DEB")" "$out"
	finish
fi
check "dpkg -S $LIBDIR/ptbm.so names $PKG" \
	bash -c "dpkg -S $LIBDIR/ptbm.so | grep -qx '$PKG: $LIBDIR/ptbm.so'"
check "dpkg --verify $PKG: the installed files are the packaged ones" \
	as_root dpkg --verify "$PKG"

# 4. The cluster with the packaged ptbm.
sql() { as_postgres "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -d postgres "$@"; }
if as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 start >/dev/null 2>&1; then
	ok "the server starts with shared_preload_libraries = 'ptbm'"
	pmpid=$(head -n 1 "$DATA/postmaster.pid")
	check "the postmaster maps the packaged $LIBDIR/ptbm.so" \
		as_root grep -q " $LIBDIR/ptbm.so\$" "/proc/$pmpid/maps"
	check "CREATE EXTENSION ptbm installs version $version" \
		test "$(sql -c 'CREATE EXTENSION ptbm' -c "SELECT extversion FROM pg_extension WHERE extname = 'ptbm'" 2>&1)" = "$version"
	out=$(sql -F ' ' -c 'SELECT kind, pages * page_size FROM ptbm_region()' 2>&1)
	check "ptbm_region() reports the shared_anon region of 16MB (got: $out)" \
		test "$out" = "shared_anon 16777216"
	check "ptbm_backends() answers with rows" \
		test "$(sql -c 'SELECT count(*) > 0 FROM ptbm_backends()' 2>&1)" = t
	as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1
	check "the server stops" test ! -f "$DATA/postmaster.pid"
else
	not_ok "the server starts with shared_preload_libraries = 'ptbm'" "$(tail -n 20 "$WORK/server.log")"
fi

# 5. Remove the package, then put back what was there before.
if out=$(as_root "${APT[@]}" purge "$PKG" 2>&1); then
	installed=
	ok "apt-get purge $PKG"
else
	not_ok "apt-get purge $PKG" "$out"
fi
check "dpkg no longer knows $PKG" \
	bash -c "! dpkg -s $PKG 2>/dev/null | grep -q '^Status: install ok installed'"
left=$(for f in "${want[@]}"; do [ -e "$f" ] && echo "$f"; done)
check "the purge removed the package's files" test -z "$left"
if [ -n "$backed_up" ]; then
	as_root tar -C / -xpf "$BACKUP" && backed_up=
	sums_after=$(cd / && find "${before[@]}" -type f -exec md5sum {} + | sort -k 2)
	if [ "$sums_after" = "$sums_before" ]; then
		ok "the ptbm files installed before are back, byte for byte ($(echo "$sums_before" | wc -l) files)"
	else
		not_ok "the ptbm files installed before are back, byte for byte" \
			"$(diff <(echo "$sums_before") <(echo "$sums_after"))"
	fi
else
	echo "# no ptbm was installed before: nothing to put back"
fi
finish
