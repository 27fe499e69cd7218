#!/usr/bin/env bash
# Make sure Debian's headless Chromium is present for the admin panel's browser tests.
#
# The browser tests drive /usr/bin/chromium with Playwright's executable_path
# (`playwright install` cannot download browsers everywhere). This installs the
# distribution package when it is missing and we can: running as root with
# apt-get. Otherwise it says why and exits 0: the browser tests then skip, with
# that reason in the pytest summary. Call it from `make test` before pytest.
set -u

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM is missing and apt-get is not available;" \
         "install Chromium yourself (browser tests will be skipped)." >&2
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure_chromium: $CHROMIUM is missing; run 'sudo apt-get install chromium'" \
         "(browser tests will be skipped)." >&2
    exit 0
fi
echo "ensure_chromium: installing Debian's chromium package..." >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "ensure_chromium: apt-get could not install chromium (browser tests will be skipped)." >&2
    exit 0
fi
echo "ensure_chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)." >&2
exit 0
