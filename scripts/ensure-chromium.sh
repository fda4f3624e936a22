#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (Playwright drives it through
# executable_path=/usr/bin/chromium; `playwright install` would download a browser, which we never do).
# Idempotent: does nothing when /usr/bin/chromium already exists. Uses sudo when not root.
# Exit status 0 when chromium is there afterwards; non-zero (with a reason) when it could not be
# installed: `make test` then stops (CI must run the browser tests); plain pytest skips them with the reason.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [[ -x "$CHROMIUM" ]]; then
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    echo "ensure-chromium: $CHROMIUM is missing and this user is not root and has no sudo;" \
         "install it with: apt-get install chromium" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available (not Debian/Ubuntu);" \
         "install chromium yourself" >&2
    exit 1
fi

echo "ensure-chromium: installing Debian's chromium (about 80 MB download, once)" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [[ ! -x "$CHROMIUM" ]]; then
    echo "ensure-chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "ensure-chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed" >&2
