#!/usr/bin/env bash
# All the tests, from a fresh Debian machine with Node 20, as root: installs what they need, then
# builds, type-checks, runs the unit tests and the conformance suites (npm test), then the same
# against the packaged binary (a part of them; see below).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm test </dev/null

# Served mode (README "Served mode"): the suites of the chain (bridge, host-local, portmap,
# firewall, tuning) again, through the stubs of dist/served, each sandbox host with its own
# service started on demand and stopped by pid at cleanup (conformance/helpers/served.ts).
CONFORMANCE_SERVED=1 CNI_PLUGIN_DIR="$PWD/dist/served" npx jest -c jest.config.conformance.js --runInBand \
  conformance/bridge conformance/host-local conformance/portmap conformance/firewall conformance/tuning </dev/null

# The packaged binary (`npm run package`: no node needed on the host): its own suite (tarball,
# install.sh, plugins run with every node binary hidden), a representative part of the
# conformance suites and the podman/containerd client suites, against dist/package. All eight
# core suites against it take ~8 min more on 2 cores; CONFORMANCE_PACKAGED=all runs every suite.
node scripts/package.mjs </dev/null
if [ "${CONFORMANCE_PACKAGED:-}" = all ]; then
  CNI_PLUGIN_DIR="$PWD/dist/package" npx jest -c jest.config.conformance.js --runInBand </dev/null
else
  CNI_PLUGIN_DIR="$PWD/dist/package" npx jest -c jest.config.conformance.js --runInBand \
    conformance/package conformance/served conformance/host-local conformance/loopback conformance/tuning conformance/macvlan conformance/clients </dev/null
fi
