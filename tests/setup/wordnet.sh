#!/usr/bin/env bash
# Debian's wordnet-base (the WordNet 3.0 database files under /usr/share/wordnet) for
# tests/unit/test_wordnet.py's check that the shipped lemma table is the build of WordNet 3.0.
# Idempotent and quiet: does nothing when the files are there; a user who cannot install
# (not root, no sudo) gets one line and that test skips with the same reason.
set -euo pipefail
if [ -f /usr/share/wordnet/data.noun ]; then
    exit 0
fi
source "$(dirname "$0")/lib/apt.sh"
apt_install_or_skip wordnet wordnet-base "one test of tests/unit/test_wordnet.py"
if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
    [ -f /usr/share/wordnet/data.noun ] || { echo "tests/setup/wordnet.sh: wordnet-base installed but /usr/share/wordnet/data.noun is missing" >&2; exit 1; }
fi
