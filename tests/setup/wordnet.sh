#!/usr/bin/env bash
# Debian's wordnet-base (the WordNet 3.0 database files under /usr/share/wordnet) for
# tests/test_wordnet.py's check that the shipped lemma table is the build of WordNet 3.0.
# Idempotent and quiet: does nothing when the files are there; a user who cannot install
# (not root, no passwordless sudo) gets one line and that test skips with the same reason.
set -euo pipefail
if [ -f /usr/share/wordnet/data.noun ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "tests/setup/wordnet.sh: /usr/share/wordnet is missing and this user cannot install it" \
             "(not root, no sudo): one test of tests/test_wordnet.py will skip; as root: apt-get install wordnet-base" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends wordnet-base >/dev/null
[ -f /usr/share/wordnet/data.noun ] || { echo "tests/setup/wordnet.sh: wordnet-base installed but /usr/share/wordnet/data.noun is missing" >&2; exit 1; }
