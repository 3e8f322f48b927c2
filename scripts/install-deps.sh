#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian machine with Node 20 (as
# root): the kernel tools the plugins drive, the reference plugins the conformance suite compares
# against, and the npm packages. Quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(iproute2 nftables iptables util-linux iputils-ping containernetworking-plugins dnsmasq-base time strace python3 busybox-static etcd-server etcd-client ethtool binutils openssl)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
fi

# npm ci refuses our lock file when the registry mirror omits some optional platform packages
# (@unrs/resolver-binding-*); npm install then installs the same locked versions.
npm_opts=(--no-audit --no-fund --loglevel=error)
if [ ! -x node_modules/.bin/esbuild ] || [ package-lock.json -nt node_modules ]; then
  npm ci "${npm_opts[@]}" </dev/null >/dev/null 2>&1 || npm install "${npm_opts[@]}" </dev/null
fi
