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
# The ampavflt kernel module and its VM test (tests/kmod_vm_test.ts, bench/kmod_bench.ts):
# Debian's kernel headers, make and kmod (modinfo) to build it, qemu, a static busybox
# and cpio for the VM. The kernel image itself is downloaded by the test (apt-get download).
packages+=(linux-headers-amd64 make kmod qemu-system-x86 busybox-static cpio)
# postgresql, openssl: the private cloud's tests run on a real PostgreSQL server
# (started below) and over TLS with a test CA made by openssl.
packages+=(postgresql openssl)
# chromium: the web console's end-to-end tests (tests/console_test.ts) drive Debian's headless
# Chromium with the npm package playwright-core; Playwright's own browser downloads are not
# reachable from our machines, Debian's package is.
packages+=(chromium)
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

# PostgreSQL for the cloud tests (amp cloud serve --db postgres://…): start the
# cluster apt created (policy-rc.d kept it from starting) and make a role that
# may create databases, each test making its own. .ci/run exports its URL as
# AMP_TEST_POSTGRES_URL. Loopback only (Debian's default listen_addresses).
if [ "$(id -u)" -eq 0 ] && command -v pg_lsclusters >/dev/null; then
  pg_version=$(pg_lsclusters -h | awk '$2 == "main" { print $1 }' | sort -n | tail -1)
  if [ -n "$pg_version" ]; then
    pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" { print $4 }' | grep -q online ||
      pg_ctlcluster "$pg_version" main start
    pg_isready -q -h 127.0.0.1 -t 30
    su postgres -c "psql -q -v ON_ERROR_STOP=1" <<'SQL'
do $$ begin
  if not exists (select 1 from pg_roles where rolname = 'amp_test') then
    create role amp_test login createdb password 'amp_test';
  end if;
end $$;
SQL
    su postgres -c "psql -tAc \"select 1 from pg_database where datname = 'amp_test'\"" | grep -q 1 ||
      su postgres -c "createdb -O amp_test amp_test"
    echo "setup: PostgreSQL $pg_version running (role amp_test)"
  fi
fi
