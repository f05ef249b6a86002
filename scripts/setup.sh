#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for amp: ClamAV's library and tools
# from apt (libclamav for scanning, clamav/clamav-daemon for the benchmark's
# comparison runs, libclamav-dev and a C compiler for the struct layout
# tests, zip for test archives, time for peak RSS), then Deno and the npm
# dependencies from package-lock.json. Run as root. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2: the network tests make namespaces (ip netns); systemd: systemd-analyze
# verifies the units amp install writes (nothing is started: see policy-rc.d below).
packages=(libclamav12 libclamav-dev clamav clamav-daemon zip gcc libc6-dev time util-linux rpm
  iproute2 systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${missing[*]}: run as root (sudo $0)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the packages' services from starting: freshclam would try to reach
  # the internet, and the benchmark starts its own clamd.
  policy_rc=/usr/sbin/policy-rc.d
  [ -e "$policy_rc" ] || { printf '#!/bin/sh\nexit 101\n' > "$policy_rc"; chmod +x "$policy_rc"; trap 'rm -f "$policy_rc"' EXIT; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  systemctl disable --now clamav-daemon clamav-freshclam >/dev/null 2>&1 || true
fi

npm ci --no-audit --no-fund --loglevel=error
# The deno package's postinstall places the binary; do it here if scripts were skipped.
[ -x node_modules/deno/deno ] || node node_modules/deno/install.cjs
node_modules/deno/deno --version | head -1
