#!/usr/bin/env bash
# Builds tools/kstatus (what Flux's health checks make of an object: sigs.k8s.io/cli-utils' kstatus)
# from the Go module proxy and makes it available as
#   ${STASIS_CACHE:-$HOME/.cache/stasis}/kstatus-<hash of its source>/kstatus   and   <repo>/.stasis/bin/kstatus
# GitOpsIT reads each kind through its life with it. Idempotent: a second run finds the cached binary
# of the same source and only links it.
#
# Environment: STASIS_CACHE (cache root).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$REPO_ROOT/tools/kstatus"
CACHE="${STASIS_CACHE:-$HOME/.cache/stasis}"
HASH="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-16)"
VERSIONED="$CACHE/kstatus-$HASH/kstatus"
REPO_LINK="$REPO_ROOT/.stasis/bin/kstatus"

log() { echo "install-kstatus: $*" >&2; }

build() {
  command -v go >/dev/null || { log "ERROR: go is required to build kstatus"; exit 1; }
  log "building kstatus from tools/kstatus (cold: a few minutes)"
  local out
  out="$(mktemp -d "$CACHE/kstatus-build.XXXXXX")"
  (cd "$SRC" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/kstatus" .)
  mkdir -p "$(dirname "$VERSIONED")"
  mv -f "$out/kstatus" "$VERSIONED"
  rm -rf "$out"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.install-kstatus.lock"
flock 9
[ -x "$VERSIONED" ] || build
if [ "$(readlink "$REPO_LINK" 2>/dev/null || true)" != "$VERSIONED" ]; then
  mkdir -p "$(dirname "$REPO_LINK")"
  ln -sfn "$VERSIONED" "$REPO_LINK"
fi
flock -u 9
echo "kstatus: $VERSIONED (linked from $REPO_LINK)"
