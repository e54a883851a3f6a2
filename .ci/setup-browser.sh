#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the `browser` tests (Debian packages chromium and
# chromium-driver). Installs only what is missing; called by .ci/run before the tests.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "setup-browser: $(chromium --version 2>/dev/null || echo chromium) and chromedriver already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-browser: chromium/chromedriver missing and not root: install the Debian packages chromium and chromium-driver" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
echo "setup-browser: installed $(chromium --version 2>/dev/null || echo chromium)"
