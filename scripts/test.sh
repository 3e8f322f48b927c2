#!/usr/bin/env bash
# All the tests, from a fresh Debian machine with Node 20, as root: installs what they need, then
# builds, type-checks, runs the unit tests and the conformance suites (npm test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm test </dev/null
