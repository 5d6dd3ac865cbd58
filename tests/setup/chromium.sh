#!/usr/bin/env bash
# Debian's chromium for tests/test_report_browser.py (the report opened headless).
# Idempotent and quiet: does nothing when chromium is already installed; exits non-zero only
# when an install it tried fails. Installing needs root (or passwordless sudo): a user without
# either gets one line saying so, and the browser test skips with the same reason (CI runs as
# root, so there it always runs).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "tests/setup/chromium.sh: chromium is missing and this user cannot install it (not root, no sudo):" \
             "tests/test_report_browser.py will skip; as root: apt-get install chromium" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "tests/setup/chromium.sh: apt-get installed chromium but it is not on PATH" >&2; exit 1; }
