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

# --- containerd 1.7 and 2.1 for the e2e version matrix -----------------------
# bookworm ships only containerd 1.6. The newer generations come from Debian's
# own archive: trixie (1.7) and sid (2.x). Their suites are added with a pin far
# below bookworm's 500, so nothing installed on this machine is ever upgraded
# from them; we only `apt-get download` the containerd .deb and unpack it into a
# private prefix with `dpkg -x` (no dpkg database entry, no service). Each deb
# carries its own ctr and containerd-shim-runc-v2, which the harness uses for
# that version. Go binaries: they link only against libc, and run on bookworm's.
e2e_prefix=/opt/burrow-e2e
matrix_lists=/etc/apt/sources.list.d/burrow-e2e-matrix.sources
matrix_pin=/etc/apt/preferences.d/burrow-e2e-matrix
# suite  dir-suffix  tested version  its .deb's SHA256 (from the suite's Packages index)
# The tested version is taken from the suite when it still has it; else from Debian's pool
# (it stays there while any suite lists it), checked against the hash; else the suite's
# newest release of the same minor version, with a note.
matrix=(
  "trixie 1.7 1.7.24~ds1-6+deb13u1 ed708deb96fe476a3bce4efa5c0538dfbcf717ab9a7c7944ba7260342c25899c"
  "sid 2.1 2.1.9+ds1-5 2dda86ce7033fd612fc50e136679d8174ccad680eb29cd4611e0d2a1b84cf591"
)
pool_url() { # version -> URL of the amd64 .deb in Debian's pool
  printf 'http://deb.debian.org/debian/pool/main/c/containerd/containerd_%s_amd64.deb' "${1/:/%3a}"
}
write_if_changed() { # path content
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then printf '%s\n' "$2" >"$1"; return 0; fi
  return 1
}
lists_changed=0
write_if_changed "$matrix_lists" "# written by burrow scripts/setup-host.sh: containerd for the e2e matrix only
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie sid
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" && lists_changed=1
write_if_changed "$matrix_pin" "# written by burrow scripts/setup-host.sh: never install or upgrade from these
Package: *
Pin: release n=trixie
Pin-Priority: 1

Package: *
Pin: release n=sid
Pin-Priority: 1" || true
matrix_apt_update() {
  # Refresh only our own list; the machine's other sources are not our business.
  apt-get update -qq -o Dir::Etc::sourcelist="$matrix_lists" -o Dir::Etc::sourceparts=- \
    -o APT::Get::List-Cleanup=0 >/dev/null
}
for entry in "${matrix[@]}"; do
  read -r suite short wanted sha <<<"$entry"
  dest="$e2e_prefix/containerd-$short"
  if [ -x "$dest/usr/bin/containerd" ] && [ -f "$dest/.deb-version" ]; then
    continue
  fi
  # (no `| grep -q`: under pipefail its early exit fails apt-cache with SIGPIPE)
  if [ "$lists_changed" -eq 1 ] || [[ "$(apt-cache madison containerd)" != *" $suite/"* ]]; then
    log "apt-get update for $matrix_lists"
    matrix_apt_update || die "apt-get update of $matrix_lists failed"
    lists_changed=0
  fi
  have="$(apt-cache madison containerd | awk -v s="$suite/" '$0 ~ s {print $3; exit}')"
  tmp="$(mktemp -d /tmp/burrow-containerd-deb.XXXXXX)"
  got=""
  if [ "$have" = "$wanted" ]; then
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "containerd=$have" >/dev/null) \
      || { rm -rf "$tmp"; die "apt-get download containerd=$have ($suite) failed"; }
    got="$have from $suite"
  elif /usr/lib/apt/apt-helper -qq download-file "$(pool_url "$wanted")" "$tmp/containerd_pool.deb" "SHA256:$sha" \
      >/dev/null 2>&1; then
    got="$wanted from Debian's pool (Debian $suite now has ${have:-none})"
  else
    rm -f "$tmp"/*.deb
    case "$have" in
      "$short".*) ;;
      *) rm -rf "$tmp"; die "containerd $wanted is neither in Debian $suite (has: ${have:-none}) nor in the pool with SHA256 $sha";;
    esac
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "containerd=$have" >/dev/null) \
      || { rm -rf "$tmp"; die "apt-get download containerd=$have ($suite) failed"; }
    got="$have from $suite"
    log "note: containerd $wanted is gone from Debian; using $have (untested by this project)"
  fi
  rm -rf "$dest.new" && mkdir -p "$dest.new"
  dpkg -x "$tmp"/containerd_*.deb "$dest.new"
  dpkg-deb -f "$tmp"/containerd_*.deb Version >"$dest.new/.deb-version"
  rm -rf "$tmp" "$dest" && mv "$dest.new" "$dest"
  log "unpacked containerd $got into $dest"
done
for entry in "${matrix[@]}"; do
  read -r suite short wanted sha <<<"$entry"
  dest="$e2e_prefix/containerd-$short"
  for b in containerd ctr containerd-shim-runc-v2; do
    [ -x "$dest/usr/bin/$b" ] || die "$dest/usr/bin/$b missing (remove $dest and rerun)"
  done
  v="$("$dest/usr/bin/containerd" --version 2>&1)" || die "$dest/usr/bin/containerd does not run here: $v"
  case "$v" in *" $short."*|*" v$short."*) ;; *) die "$dest/usr/bin/containerd reports '$v', expected $short.x";; esac
done

matrix_versions="$(for d in "$e2e_prefix"/containerd-*; do cat "$d/.deb-version"; done | paste -sd' ')"
log "ok: containerd $(containerd --version | awk '{print $3}') (+ e2e matrix: $matrix_versions), runc $(runc --version | awk 'NR==1{print $3}'), $(cargo --version)"
