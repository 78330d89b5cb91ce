# A private PostgreSQL server for the mirror's tests and benchmark (Debian's postgresql,
# binaries in /usr/lib/postgresql/15/bin): initdb into a temp dir as a non-root user
# (postgres when run as root), a Unix socket in that dir only (no TCP), stopped and removed
# by pg_down. Source after lib.sh; sets PGDIR, PGPORT_T, PGCONN (a libpq connection string,
# no password: local trust) and PSQL (psql on that server).
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
pg_as() {
	if [ "$(id -u)" = 0 ]; then
		su postgres -s /bin/sh -c "$*"
	else
		sh -c "$*"
	fi
}
# pg_up PORT: makes and starts the server; 0 when it answers
pg_up() {
	PGPORT_T=$1
	PGDIR=$(mktemp -d /tmp/zila-pg-XXXXXX)
	[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
	pg_as "'$PGBIN/initdb' -D '$PGDIR/data' -U zila --auth=trust -E UTF8 --locale=C.UTF-8 >'$PGDIR/initdb.log' 2>&1" ||
		{ cat "$PGDIR/initdb.log" >&2; return 1; }
	pg_start || return 1
	PGCONN="host=$PGDIR port=$PGPORT_T dbname=zila user=zila connect_timeout=5"
	PSQL="psql -X -q -v ON_ERROR_STOP=1 -h $PGDIR -p $PGPORT_T -U zila"
	$PSQL -d postgres -c "CREATE DATABASE zila" >/dev/null
}
pg_start() {
	pg_as "'$PGBIN/pg_ctl' -D '$PGDIR/data' -l '$PGDIR/server.log' -w -t 60 -o \"-k '$PGDIR' -p $PGPORT_T -c listen_addresses='' -c fsync=off\" start >/dev/null"
}
pg_stop() { pg_as "'$PGBIN/pg_ctl' -D '$PGDIR/data' -m fast -w stop >/dev/null"; }
pg_down() {
	[ -n "${PGDIR:-}" ] || return 0
	pg_stop 2>/dev/null
	rm -rf "$PGDIR"
	PGDIR=
}
