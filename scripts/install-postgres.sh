#!/bin/sh
# Install Debian's postgresql-15 for the test suite, which runs a throwaway server of
# its own (tests/postgres_server.py). A no-op when the binaries are already there.
# Without root it only explains: the PostgreSQL tests then skip with the same hint.
set -eu

PG_BIN=/usr/lib/postgresql/15/bin

if [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    cat >&2 <<MSG
install-postgres: $PG_BIN/postgres is missing and installing it needs root.
  The PostgreSQL variants of the tests will be SKIPPED. To run them:
    sudo apt-get install --no-install-recommends postgresql-15
MSG
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-postgres: no apt-get here; install PostgreSQL 15 so that $PG_BIN/postgres exists" >&2
    echo "  (the PostgreSQL variants of the tests will be SKIPPED until then)" >&2
    exit 0
fi

echo "install-postgres: installing postgresql-15 (Debian) for the test suite" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
test -x "$PG_BIN/postgres"
