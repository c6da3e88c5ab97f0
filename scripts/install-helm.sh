#!/usr/bin/env bash
# Builds helm from the Go module proxy (helm.sh/helm/v3) and makes it available as
#   ${STASIS_CACHE:-$HOME/.cache/stasis}/bin/helm   and   <repo>/.stasis/bin/helm
# The chart tests (ChartIT) and `make chart-lint` use it. Why build: this machine and CI reach only
# package registries, never helm's release downloads; the Go module proxy serves helm's source.
# Idempotent: a second run only checks the cached binary's version.
#
# Environment: STASIS_CACHE (cache root), HELM_VERSION (default below).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-3.22.0}"
HELM_VERSION="${HELM_VERSION#v}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${STASIS_CACHE:-$HOME/.cache/stasis}"
BIN="$CACHE/bin/helm"
VERSIONED="$CACHE/helm-$HELM_VERSION/helm"
REPO_LINK="$REPO_ROOT/.stasis/bin/helm"

log() { echo "install-helm: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

build() {
  command -v go >/dev/null || die "go is required to build helm"
  local work="$CACHE/helm-build-$HELM_VERSION"
  rm -rf "$work" && mkdir -p "$work"
  # A throwaway module that requires helm, so `go build` resolves helm's own dependency versions.
  printf 'module stasis.local/helm-build\n\ngo 1.24\n\nrequire helm.sh/helm/v3 v%s\n' "$HELM_VERSION" >"$work/go.mod"
  : >"$work/go.sum"
  # Helm's Makefile stamps its version and the Kubernetes version its client libraries speak (the
  # default for `helm template`'s .Capabilities.KubeVersion); without it helm claims Kubernetes 1.20.
  local gomod k8s_minor ldflags
  gomod="$(cd "$work" && go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  k8s_minor="$(sed -n -E 's#^[[:space:]]*k8s\.io/client-go v0\.([0-9]+)\..*#\1#p' "$gomod" | head -n1)"
  [ -n "$k8s_minor" ] || die "cannot find k8s.io/client-go in helm's go.mod ($gomod)"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  log "building helm v$HELM_VERSION (Kubernetes 1.$k8s_minor) from the Go module proxy (cold: a few minutes)"
  (cd "$work" && GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
    -o "$work/helm" helm.sh/helm/v3/cmd/helm)
  mkdir -p "$(dirname "$VERSIONED")"
  mv -f "$work/helm" "$VERSIONED"
  rm -rf "$work"
}

link() { # target linkname
  if [ "$(readlink "$2" 2>/dev/null || true)" != "$1" ]; then
    mkdir -p "$(dirname "$2")"
    ln -sfn "$1" "$2"
  fi
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.install-helm.lock"
flock 9
[ -x "$VERSIONED" ] || build
link "$VERSIONED" "$BIN"
link "$BIN" "$REPO_LINK"
flock -u 9
echo "helm $("$BIN" version --short): $BIN (linked from $REPO_LINK)"
