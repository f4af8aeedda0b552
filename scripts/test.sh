#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine, as root: host packages, npm dependencies,
# build (TypeScript and the Rust native library), then every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
# A rustup toolchain, when the machine has one, is preferred to Debian's cargo.
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
npm ci --no-audit --no-fund
# The native crate's own unit tests (seccomp compilation, the -ENOSYS stub).
(cd native && cargo test --release --offline)
npm test
