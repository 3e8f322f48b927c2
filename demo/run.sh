#!/usr/bin/env bash
# The demo, from a fresh Debian machine with Node 20, as root: installs what it needs, builds the
# plugins and runs the walkthrough (demo/demo.mjs, helpers in demo/lib.mjs) in sandbox network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
node build.mjs
node demo/demo.mjs
