#!/usr/bin/env bash
# The demo, on a fresh Debian 12 machine, as root: installs what is needed, builds Burrow,
# starts a private containerd of its own, runs a container with runtime io.containerd.burrow.v2
# and prints what the container sees, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
npm ci --no-audit --no-fund
npm run build
node dist/e2e/demo.js
