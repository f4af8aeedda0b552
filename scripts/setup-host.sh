#!/usr/bin/env bash
# Prepare a Debian 12 host (CI machine or dev VM) for building and testing Burrow.
#
# Idempotent: installs only what is missing and runs `apt-get update` only when
# something has to be installed. Never starts, restarts or reconfigures the
# system containerd service: the e2e harness runs its own private containerd
# instances (see e2e/README.md), so the system one is irrelevant to us.
#
# Usage: sudo scripts/setup-host.sh        (BURROW_SETUP_VERBOSE=1 shows apt output)
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*"; }
die() { printf 'setup-host: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  die "must run as root (current uid $(id -u)); try: sudo $0"
fi
if [ ! -r /etc/debian_version ] || ! command -v dpkg-query >/dev/null 2>&1; then
  die "expected a Debian-based host (no /etc/debian_version or dpkg-query)"
fi

# A rustup toolchain takes precedence over Debian's cargo/rustc; this only
# affects this script's own `command -v cargo` check and the final report.
if [ -x /root/.cargo/bin/cargo ]; then
  case ":$PATH:" in
    *:/root/.cargo/bin:*) ;;
    *) PATH="/root/.cargo/bin:$PATH"; export PATH ;;
  esac
fi

packages=(
  containerd runc crun busybox-static containernetworking-plugins iproute2
  libseccomp-dev pkg-config
  librust-libc-dev librust-serde-dev librust-serde-derive-dev librust-serde-json-dev
)
if ! command -v cargo >/dev/null 2>&1; then
  packages+=(cargo rustc)
fi

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

missing=()
for p in "${packages[@]}"; do
  is_installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  log "all packages present"
else
  log "installing: ${missing[*]}"
  apt_log="$(mktemp /tmp/burrow-setup-apt.XXXXXX.log)"

  # policy-rc.d exit 101 = "action forbidden": invoke-rc.d and
  # deb-systemd-invoke then skip starting containerd.service from the
  # package's postinst. Only install ours if the admin has none, and always
  # remove it again.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, written by burrow scripts/setup-host.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
  fi
  cleanup() {
    if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
  }
  trap cleanup EXIT

  apt_run() {
    if [ "${BURROW_SETUP_VERBOSE:-0}" = "1" ]; then
      "$@"
    elif ! "$@" >>"$apt_log" 2>&1; then
      tail -n 40 "$apt_log" >&2
      die "'$*' failed; full output in $apt_log"
    fi
  }
  export DEBIAN_FRONTEND=noninteractive
  apt_run apt-get update -qq
  apt_run apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"
  rm -f "$apt_log"
fi

# Verify the tools the build and the e2e harness actually call, so a broken
# package (or a PATH problem) fails here with a name instead of mid-test.
need_bins=(containerd ctr runc crun busybox ip tar timeout umount cargo rustc pkg-config)
for b in "${need_bins[@]}"; do
  command -v "$b" >/dev/null 2>&1 || die "'$b' not found on PATH after install (PATH=$PATH)"
done
[ -x /usr/bin/containerd-shim-runc-v2 ] || die "/usr/bin/containerd-shim-runc-v2 missing (package containerd)"
[ -x /usr/lib/cni/bridge ] || die "/usr/lib/cni/bridge missing (package containernetworking-plugins)"
pkg-config --exists libseccomp || die "pkg-config cannot find libseccomp (package libseccomp-dev)"
for crate in libc serde serde_derive serde_json; do
  ls -d /usr/share/cargo/registry/"$crate"-[0-9]* >/dev/null 2>&1 \
    || die "Rust crate '$crate' missing under /usr/share/cargo/registry"
done
log "ok: containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'), $(cargo --version)"
