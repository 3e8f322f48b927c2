#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian machine with Node 20 (as
# root): the kernel tools the plugins drive, the reference plugins the conformance suite compares
# against, and the npm packages. Quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(iproute2 nftables iptables util-linux iputils-ping containernetworking-plugins)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
