# Sourced by tests/setup/*.sh (not run by `make test-deps`, which runs only tests/setup/*.sh).
# apt_install_or_skip NAME PACKAGE TEST: install Debian's PACKAGE quietly, as root or with
# passwordless sudo; a user with neither gets one line saying that TEST will skip, and status 0.
apt_install_or_skip() {
    local name=$1 package=$2 test=$3 sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
            echo "tests/setup/$name.sh: $package is missing and this user cannot install it (not root, no sudo):" \
                 "$test will skip; as root: apt-get install $package" >&2
            return 0
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
}
