#!/usr/bin/env bash
# What the tests need on a Debian machine, in one place (.ci/run and `npm run setup` call it):
# etcd, nats-server, systemd with a user bus, the tools the harness uses, and Debian's chromium
# for the visualizer's browser tests (playwright-core drives it; no browser download).
#
#   scripts/setup.sh           install what is missing (apt-get; run as root), then `npm ci`
#                              when node_modules is missing or does not match package.json
#   scripts/setup.sh --check   only report what is missing (exit 1 if anything is)
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[ "${1:-}" = "--check" ] && check=true

need=()
# binary:package pairs; a binary counts when on PATH or in /usr/sbin (not on a user's PATH).
for pair in etcd:etcd-server etcdctl:etcd-client nats-server:nats-server dbus-daemon:dbus \
  systemctl:systemd systemd-notify:systemd unshare:util-linux ip:iproute2 ps:procps openssl:openssl \
  chromium:chromium; do
  bin=${pair%%:*} pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need+=("$pkg")
done
# dbus-user-session provides the user bus socket unit that systemd --user serves.
dpkg -s dbus-user-session >/dev/null 2>&1 || need+=(dbus-user-session)
[ -x /usr/lib/systemd/systemd ] || need+=(systemd)
# Unique, in order.
mapfile -t need < <(printf '%s\n' "${need[@]+"${need[@]}"}" | awk 'NF && !seen[$0]++')

# npm's own check: every dependency in package.json installed at a version that satisfies it.
stale_modules=false
if [ ! -d node_modules ] || ! npm ls --depth=0 >/dev/null 2>&1; then
  stale_modules=true
fi

if $check; then
  missing=0
  if [ ${#need[@]} -gt 0 ]; then
    echo "missing Debian packages: ${need[*]}" >&2
    echo "  install them with: sudo apt-get install -y ${need[*]}   (or: npm run setup)" >&2
    missing=1
  fi
  if $stale_modules; then
    echo "node_modules is missing or does not match package.json: run npm ci (or: npm run setup)" >&2
    missing=1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "note: the systemd tests create cgroups and mount namespaces and need root" >&2
  fi
  exit $missing
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: installing ${need[*]} needs root: run it as root or with sudo" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if $stale_modules; then
  npm ci --no-audit --no-fund
fi
echo "setup: ready (npm test runs the suites)"
