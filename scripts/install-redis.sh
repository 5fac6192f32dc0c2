#!/bin/sh
# Install Debian's redis-server for the test suite, which runs a throwaway server of
# its own (tests/redis_server.py) for the rate-limit tests across API processes.
# A no-op when the binary is already there. Without root it only explains: those
# tests then skip with the same hint.
set -eu

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    cat >&2 <<MSG
install-redis: redis-server is missing and installing it needs root.
  The tests that share a real Redis between API processes will be SKIPPED. To run them:
    sudo apt-get install --no-install-recommends redis-server
MSG
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-redis: no apt-get here; install Redis so that redis-server is on PATH" >&2
    echo "  (the tests that need a real Redis will be SKIPPED until then)" >&2
    exit 0
fi

echo "install-redis: installing redis-server (Debian) for the test suite" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server >/dev/null
