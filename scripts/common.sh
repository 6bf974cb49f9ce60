# Shared by scripts/demo.sh and scripts/test.sh: install what is missing,
# then build and install ptbm.  Sourced, not run.

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
export PG_CONFIG

# Run as root, or through sudo when there is one.
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Run as the postgres OS user (the server refuses root).
as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

ptbm_install_deps() {
	local missing=()
	[ -x "$PG_BIN/postgres" ] || missing+=(postgresql-15)
	# pgxs, the server headers and pg_isolation_regress: postgresql-server-dev-15
	# (a machine may have some of them without the package)
	[ -x "$PG_CONFIG" ] && [ -f "$($PG_CONFIG --pgxs 2>/dev/null)" ] &&
		[ -f "$($PG_CONFIG --includedir-server 2>/dev/null)/postgres.h" ] &&
		[ -x "$($PG_CONFIG --pkglibdir 2>/dev/null)/pgxs/src/test/isolation/pg_isolation_regress" ] ||
		missing+=(postgresql-server-dev-15)
	perl -MIPC::Run -e 1 2>/dev/null || missing+=(libipc-run-perl)
	command -v make >/dev/null || missing+=(make)
	command -v gcc >/dev/null || missing+=(gcc)
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing: ${missing[*]}"
		as_root apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	id postgres >/dev/null 2>&1 || { echo "no postgres OS user" >&2; exit 1; }
}

ptbm_build_install() {
	echo "== building and installing ptbm"
	make -s PG_CONFIG="$PG_CONFIG" >/dev/null
	as_root make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# A copy of the tree the postgres user can write (pg_regress writes into it).
ptbm_tree_for_postgres() {
	local dir
	dir=$(mktemp -d /tmp/ptbm-run.XXXXXX)
	tar -C "$1" --exclude=.git -cf - . | tar -C "$dir" -xf -
	[ "$(id -u)" = 0 ] && chown -R postgres "$dir"
	chmod 755 "$dir"
	echo "$dir"
}
