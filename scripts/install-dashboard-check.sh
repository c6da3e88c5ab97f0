#!/usr/bin/env bash
# Builds scripts/dashboard-check (Grafana's dashboard schema and Prometheus' PromQL parser, from the Go
# module proxy) and makes it available as
#   ${STASIS_CACHE:-$HOME/.cache/stasis}/dashboard-check-<hash of its sources>/dashboard-check,
#   linked as <repo>/.stasis/bin/dashboard-check
# ObservabilityIT runs it on the chart's Grafana dashboard with the metrics of a real run.
# Idempotent: a second run with the same sources only links the cached binary; changed sources build anew.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$REPO_ROOT/scripts/dashboard-check"
CACHE="${STASIS_CACHE:-$HOME/.cache/stasis}"
REPO_LINK="$REPO_ROOT/.stasis/bin/dashboard-check"

log() { echo "install-dashboard-check: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

hash="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-16)"
VERSIONED="$CACHE/dashboard-check-$hash/dashboard-check"

mkdir -p "$CACHE"
exec 9>"$CACHE/.install-dashboard-check.lock"
flock 9
if [ ! -x "$VERSIONED" ]; then
  command -v go >/dev/null || die "go is required to build dashboard-check"
  log "building dashboard-check from the Go module proxy (cold: about a minute)"
  mkdir -p "$(dirname "$VERSIONED")"
  (cd "$SRC" && CGO_ENABLED=0 go build -trimpath -o "$VERSIONED.tmp" .)
  mv -f "$VERSIONED.tmp" "$VERSIONED"
fi
if [ "$(readlink "$REPO_LINK" 2>/dev/null || true)" != "$VERSIONED" ]; then
  mkdir -p "$(dirname "$REPO_LINK")"
  ln -sfn "$VERSIONED" "$REPO_LINK"
fi
flock -u 9
echo "dashboard-check: $VERSIONED (linked from $REPO_LINK)"
