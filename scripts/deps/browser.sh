#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver, and poppler-utils: the report's layout check
# (tests/tests/e2e/verification.rs) renders the management report in headless Chromium, and the
# web interface's tests drive it over WebDriver. Both start it with --headless --no-sandbox and
# the background-networking switches off, on file:// or 127.0.0.1 pages only.
# Idempotent: installs only what is missing. Runs as root.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v fc-list >/dev/null 2>&1 && fc-list | grep -qi dejavu || missing+=(fonts-dejavu-core)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "browser deps: all present"
    exit 0
fi

echo "browser deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
