#!/usr/bin/env bash
# The demo, from a fresh Debian machine with Node 20, as root: installs what it needs, builds the
# plugins and runs the walkthrough in a sandbox network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
node build.mjs
node demo/demo.mjs
