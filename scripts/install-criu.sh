#!/usr/bin/env bash
# Installs what Stasis' CRIU tests need and makes a working CRIU >= 4.2 available as
#   ${STASIS_CACHE:-$HOME/.cache/stasis}/bin/criu   and   <repo>/.stasis/bin/criu
#
# - A system `criu` >= 4.2 is used as it is (both paths become symlinks to it).
# - Otherwise (Debian 12 ships 3.17, which does not work on kernels >= 6.13) CRIU 4.2.1 is
#   taken from Debian's archive without touching the system: criu and libcompel1 from sid, the
#   libraries it links from trixie (libnet9/libnl-3-200 from sid), each fetched with
#   `apt-get download` through private apt lists and unpacked with `dpkg -x` into
#   ${STASIS_CACHE}/criu-4.2.1/. The wrapper runs criu through that prefix's own dynamic
#   loader, so nothing leaks into the programs CRIU restores or runs (no LD_LIBRARY_PATH).
# - Debian 12 packages the tests need (gcc, zstd, util-linux, iproute2) are apt-get installed
#   if missing.
# Idempotent: a second run only re-checks (well under a second). Ends with `criu check`;
# exits non-zero if CRIU does not work.
#
# Environment: STASIS_CACHE (cache root, default $HOME/.cache/stasis),
#   STASIS_CRIU_FORCE_PREFIX=1 (ignore a system criu), STASIS_CRIU_REFRESH=1 (rebuild prefix),
#   STASIS_CRIU_PREFIX_ONLY=1 (only build the prefix and print its path: the agent image does this;
#   no test packages, no wrapper or links, no `criu check`, which needs privileges a build lacks).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${STASIS_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/stasis}"
CRIU_VERSION=4.2.1
CRIU_DEB_VERSION=4.2.1-1
PREFIX="$CACHE/criu-$CRIU_VERSION"
WRAPPER="$CACHE/bin/criu"
REPO_LINK="$REPO_ROOT/.stasis/bin/criu"
MIN_MAJOR=4
MIN_MINOR=2

# package/suite pairs unpacked into the prefix (criu/libcompel1 are pinned to CRIU_DEB_VERSION)
SID_PKGS=(libnet9 libnl-3-200)
TRIXIE_PKGS=(libc6 libgcc-s1 libbsd0 libmd0 libgnutls30t64 libgmp10 libnettle8t64 libhogweed6t64
  libp11-kit0 libffi8 libtasn1-6 libidn2-0 libunistring5 libnftables1 libjansson4 libmnl0 libnftnl11
  libxtables12 libprotobuf-c1 libuuid1)
# command -> Debian 12 package needed by the tests
SYSTEM_NEEDS=(gcc:gcc zstd:zstd unshare:util-linux setsid:util-linux flock:util-linux ip:iproute2)

log() { echo "install-criu: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=lib/debian-prefix.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/debian-prefix.sh"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
    die "need root for: $*"; fi
}

install_system_packages() {
  local missing=() entry cmd pkg
  for entry in "${SYSTEM_NEEDS[@]}"; do
    cmd="${entry%%:*}"; pkg="${entry#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y --no-install-recommends "${missing[@]}"; then
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}

# prints "major minor" of a criu binary/wrapper, or nothing
criu_version() {
  local v
  v="$("$@" --version 2>/dev/null | sed -n 's/^Version: *\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p' | head -n1)" || true
  echo "$v"
}

version_ok() { # major minor
  [ -n "${1:-}" ] && { [ "$1" -gt "$MIN_MAJOR" ] || { [ "$1" -eq "$MIN_MAJOR" ] && [ "$2" -ge "$MIN_MINOR" ]; }; }
}

find_system_criu() {
  [ "${STASIS_CRIU_FORCE_PREFIX:-0}" = 1 ] && return 1
  local c real
  for c in $(type -ap criu 2>/dev/null) /usr/sbin/criu /usr/local/sbin/criu; do
    [ -x "$c" ] || continue
    real="$(readlink -f "$c")"
    case "$real" in "$CACHE"/*|"$REPO_ROOT"/.stasis/*) continue ;; esac
    # shellcheck disable=SC2046
    if version_ok $(criu_version "$real"); then echo "$real"; return 0; fi
  done
  return 1
}

prefix_ok() {
  [ -f "$PREFIX/.stasis-complete" ] && [ -x "$PREFIX/usr/sbin/criu" ] &&
    [ -x "$PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ]
}

build_prefix() {
  [ "$(uname -m)" = x86_64 ] || die "the CRIU prefix is only prepared for x86_64 (this is $(uname -m))"
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "apt-get and dpkg are required"
  mkdir -p "$CACHE"
  local work
  work="$(mktemp -d "$CACHE/.criu-build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  debian_lists "$work" sid trixie
  local pkgs=() p
  for p in "${SID_PKGS[@]}"; do pkgs+=("$p/sid"); done
  for p in "${TRIXIE_PKGS[@]}"; do pkgs+=("$p/trixie"); done
  log "downloading criu $CRIU_DEB_VERSION and ${#pkgs[@]} libraries"
  if ! debian_unpack "$work" "$work/root" "criu=$CRIU_DEB_VERSION" "libcompel1=$CRIU_DEB_VERSION" "${pkgs[@]}"; then
    log "criu $CRIU_DEB_VERSION not available; trying sid's current criu"
    debian_unpack "$work" "$work/root" criu/sid libcompel1/sid "${pkgs[@]}" || die "apt-get download failed"
  fi
  local tmp="$PREFIX.tmp.$$"
  rm -rf "$tmp"
  mv "$work/root" "$tmp"
  # shellcheck disable=SC2046
  version_ok $(criu_version "$tmp/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
    --library-path "$tmp/usr/lib/x86_64-linux-gnu" "$tmp/usr/sbin/criu") ||
    { rm -rf "$tmp"; die "the downloaded criu does not run or is older than $MIN_MAJOR.$MIN_MINOR"; }
  date -u +%FT%TZ >"$tmp/.stasis-complete"
  rm -rf "$PREFIX"
  mv "$tmp" "$PREFIX"
  rm -rf "$work"
  trap - EXIT
  log "CRIU prefix ready: $PREFIX"
  sed 's/^/install-criu:   /' "$PREFIX/.stasis-packages" >&2
}

write_wrapper() {
  local content
  content="#!/bin/sh
# Generated by scripts/install-criu.sh: CRIU $CRIU_VERSION from Debian, run through its own loader.
P='$PREFIX'
exec \"\$P/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\" --library-path \"\$P/usr/lib/x86_64-linux-gnu\" --argv0 criu \"\$P/usr/sbin/criu\" \"\$@\"
"
  if [ -L "$WRAPPER" ] || [ ! -f "$WRAPPER" ] || [ "$(cat "$WRAPPER")" != "${content%$'\n'}" ]; then
    mkdir -p "$(dirname "$WRAPPER")"
    printf '%s' "$content" >"$WRAPPER.tmp.$$"
    chmod 755 "$WRAPPER.tmp.$$"
    mv -f "$WRAPPER.tmp.$$" "$WRAPPER"
  fi
}

link() { # target linkname
  if [ "$(readlink "$2" 2>/dev/null || true)" != "$1" ]; then
    mkdir -p "$(dirname "$2")"
    ln -sfn "$1" "$2"
  fi
}

prefix_only() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.install-criu.lock"
  flock 9
  if [ "${STASIS_CRIU_REFRESH:-0}" = 1 ] || ! prefix_ok; then build_prefix; fi
  flock -u 9
  echo "$PREFIX"
}

main() {
  if [ "${STASIS_CRIU_PREFIX_ONLY:-0}" = 1 ]; then prefix_only; return; fi
  install_system_packages
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.install-criu.lock"
  flock 9
  local sys
  if sys="$(find_system_criu)"; then
    log "using system criu: $sys"
    link "$sys" "$WRAPPER"
  else
    if [ "${STASIS_CRIU_REFRESH:-0}" = 1 ] || ! prefix_ok; then build_prefix; fi
    write_wrapper
  fi
  link "$WRAPPER" "$REPO_LINK"
  flock -u 9
  local out rc=0
  out="$("$WRAPPER" check 2>&1)" || rc=$?
  echo "criu $("$WRAPPER" --version 2>/dev/null | sed -n 's/^Version: //p'): $WRAPPER (linked from $REPO_LINK)"
  echo "criu check: $out"
  [ "$rc" -eq 0 ] || die "criu check failed (exit $rc)"
}

main "$@"
