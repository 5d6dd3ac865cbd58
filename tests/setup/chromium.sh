#!/usr/bin/env bash
# Debian's chromium for tests/e2e/test_report_browser.py (the report opened headless).
# Idempotent and quiet: does nothing when chromium is already installed; exits non-zero only
# when an install it tried fails. Installing needs root (or passwordless sudo): a user without
# either gets one line saying so, and the browser test skips with the same reason (CI runs as
# root, so there it always runs).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
source "$(dirname "$0")/lib/apt.sh"
apt_install_or_skip chromium chromium tests/e2e/test_report_browser.py
if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
    command -v chromium >/dev/null 2>&1 || { echo "tests/setup/chromium.sh: apt-get installed chromium but it is not on PATH" >&2; exit 1; }
fi
