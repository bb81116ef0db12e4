#!/usr/bin/env bash
# Install the Debian packages listed in tests/system/packages.txt that are not
# installed yet. Run by `make test`, so a fresh machine needs no manual step.
# Where apt is missing or we are not root, say so loudly and go on: the tests
# that need a package skip with a reason of their own.
set -uo pipefail
cd "$(dirname "$0")"
wanted=$(grep -v '^\s*#' packages.txt | tr -s ' \n' ' ')
missing=()
for pkg in $wanted; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
        || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    echo "!!! cannot install ${missing[*]} (needs apt-get as root):" \
         "the tests that drive them will be skipped" >&2
    exit 0
fi
echo "installing system packages for the tests: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "!!! apt-get could not install ${missing[*]}:" \
         "the tests that drive them will be skipped" >&2
fi
exit 0
