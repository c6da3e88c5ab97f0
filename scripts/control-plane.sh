#!/usr/bin/env bash
# Local Kubernetes control plane (etcd + kube-apiserver, no controller-manager,
# no scheduler, no kubelet) for Stasis' integration tests.
#
#   scripts/control-plane.sh install            build/cache etcd, kube-apiserver, kubectl
#   scripts/control-plane.sh start <dir> [port] start etcd + kube-apiserver, print kubeconfig path
#   scripts/control-plane.sh stop <dir>         stop what `start <dir>` started
#   scripts/control-plane.sh status <dir>       exit 0 iff both processes of <dir> are alive
#
# Why we build instead of download: this machine (and CI) reaches only package
# registries, never dl.k8s.io or GitHub releases. The Go module proxy serves
# k8s.io/kubernetes and go.etcd.io/etcd, so everything is compiled from those.
#
# Environment:
#   K8S_VERSION       Kubernetes release to build (default below). 1.36.x / 1.37.x
#                     also exist on the proxy and need nothing but this variable.
#   STASIS_CACHE      cache root (default ~/.cache/stasis); binaries go to
#                     $STASIS_CACHE/k8s/<version>/ so every clone shares one build.
#   ETCD_VERSION      etcd server to build (default: the one k8s.io/kubernetes' go.mod pins).
#   CP_START_TIMEOUT  seconds to wait for /readyz (default 60).
#   CP_ADDRESS        the one address the API server listens on and advertises
#                     (default 127.0.0.1; scripts/node.sh uses its bridge's, which pods reach).
#   CP_WITH_NODES=1   for a cluster with kubelets (scripts/node.sh): Node,RBAC authorization,
#                     NodeRestriction and ServiceAccount admission, the "kubernetes" Service's
#                     endpoints kept, and the API server's client certificate for kubelets.
#
# Stdout carries only results (kubeconfig path of `start`); progress goes to stderr
# so callers can do: export KUBECONFIG=$(scripts/control-plane.sh start /tmp/cp)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${STASIS_CACHE:-$HOME/.cache/stasis}"
BINARIES=(etcd kube-apiserver kubectl)

log() { echo "control-plane: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=lib/k8s-build.sh
. "$REPO_ROOT/scripts/lib/k8s-build.sh"
# shellcheck source=lib/processes.sh
. "$REPO_ROOT/scripts/lib/processes.sh"
# shellcheck source=lib/pki.sh
. "$REPO_ROOT/scripts/lib/pki.sh"
BIN_DIR="$K8S_BIN_DIR"
CP_ADDRESS="${CP_ADDRESS:-127.0.0.1}"

# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------

have_binaries() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
}

# Symlinks only: cheap, and re-pointing them is how a version bump takes effect.
link_binaries() {
  local b kat_dir
  kat_dir="$REPO_ROOT/.stasis/kube-api-test/k8s/$K8S_VERSION-linux-$(k8s_goarch)"
  mkdir -p "$REPO_ROOT/.stasis/bin" "$kat_dir" # .stasis/ is git-ignored
  for b in "${BINARIES[@]}"; do
    # fabric8 kube-api-test looks for <kubeAPITestDir>/k8s/<X.Y.Z>-linux-<arch>/<binary>
    # (version without "v": it parses the parts as integers), so point
    # kubeAPITestDir at .stasis/kube-api-test and it never tries to download.
    [[ "$(readlink "$REPO_ROOT/.stasis/bin/$b" 2>/dev/null)" == "$BIN_DIR/$b" ]] ||
      ln -sfn "$BIN_DIR/$b" "$REPO_ROOT/.stasis/bin/$b"
    [[ "$(readlink "$kat_dir/$b" 2>/dev/null)" == "$BIN_DIR/$b" ]] ||
      ln -sfn "$BIN_DIR/$b" "$kat_dir/$b"
  done
}

build_binaries() {
  local out="$K8S_WORK/out"
  rm -rf "$out"
  k8s_build_commands "$out" kube-apiserver kubectl

  # etcd gets its own module so it builds with the dependency versions etcd
  # itself was released with, not whatever Kubernetes' graph bumps them to.
  # Default: the etcd server version k8s.io/kubernetes' go.mod pins (always
  # on the proxy, and the one its etcd client was tested against).
  local etcd_ver="${ETCD_VERSION:-}"
  [[ -n "$etcd_ver" ]] ||
    etcd_ver="$(sed -n -E 's#^[[:space:]]*go\.etcd\.io/etcd/server/v3[[:space:]]+(v[^[:space:]]+).*#\1#p' "$K8S_GOMOD" | head -n1)"
  [[ -n "$etcd_ver" ]] || die "cannot find go.etcd.io/etcd/server/v3 in $K8S_GOMOD; set ETCD_VERSION"
  etcd_ver="v${etcd_ver#v}"
  mkdir -p "$K8S_WORK/etcd"
  {
    echo "module stasis.local/etcd-build"
    echo
    grep -E '^go ' "$K8S_GOMOD"
    echo
    echo "require go.etcd.io/etcd/server/v3 $etcd_ver"
  } >"$K8S_WORK/etcd/go.mod"
  : >"$K8S_WORK/etcd/go.sum"
  # The upstream etcd binary's main() is exactly this (repo root main.go),
  # but that root module is not published, so recreate it.
  cat >"$K8S_WORK/etcd/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  log "building etcd $etcd_ver"
  (cd "$K8S_WORK/etcd" && GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" .)

  "$out/kube-apiserver" --version >&2
  "$out/kubectl" version --client >&2
  "$out/etcd" --version >&2

  # Move into place one by one (rename is atomic); have_binaries() needs all
  # three, so an interrupted install is simply redone next time.
  mkdir -p "$BIN_DIR"
  for b in "${BINARIES[@]}"; do mv -f "$out/$b" "$BIN_DIR/$b"; done
  rm -rf "$out"
}

cmd_install() {
  if ! have_binaries; then
    k8s_lock
    have_binaries || build_binaries
    k8s_unlock
  fi
  link_binaries
  log "binaries in $BIN_DIR (linked from $REPO_ROOT/.stasis/bin and .stasis/kube-api-test)"
}

# ---------------------------------------------------------------------------
# start / stop
# ---------------------------------------------------------------------------

# The API server's certificates, kept across restarts of one <dir>. Its serving certificate names
# the address it listens on and the "kubernetes" Service's first IP (10.0.0.1), which pods use.
gen_pki() {
  local pki="$1"
  pki_ca "$pki"
  pki_issue "$pki" apiserver "/CN=kube-apiserver" serverAuth \
    "IP:$CP_ADDRESS,IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # O=system:masters is bound to cluster-admin by RBAC's bootstrap policy.
  pki_issue "$pki" admin "/O=system:masters/CN=stasis-admin" clientAuth
  # How the API server shows itself to kubelets (logs, exec, port-forward).
  pki_issue "$pki" apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  # Signs ServiceAccount tokens (TokenRequest / `kubectl create token`);
  # kube-apiserver derives the verification key from the private key.
  pki_key "$pki" sa
}

cmd_status() {
  local dir="$1" name pid exe n=0
  while read -r name pid exe; do
    [[ -n "${pid:-}" ]] || continue
    is_ours "$pid" "$exe" || return 1
    n=$((n + 1))
  done < <(read_pids "$dir/pids")
  ((n == 2))
}

cmd_stop() {
  local dir="$1"
  [[ -f "$dir/pids" ]] || { log "nothing to stop in $dir (no pids file)"; return 0; }
  # Reverse order: the apiserver (started last) goes first, so it doesn't spend
  # its shutdown retrying a vanished etcd.
  stop_pids "$dir/pids"
}

cmd_start() {
  local dir="$1" port="${2:-}"
  cmd_install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [[ -f "$dir/pids" ]]; then
    cmd_status "$dir" && die "a control plane is already running in $dir (stop it first)"
    cmd_stop "$dir" # leftovers of a crashed run
  fi
  [[ -n "$port" ]] || port="$(free_port "$CP_ADDRESS")"
  local etcd_client etcd_peer t0=$SECONDS
  etcd_client="$(free_port)"
  etcd_peer="$(free_port)"

  gen_pki "$dir/pki"

  # --unsafe-no-fsync: a throwaway test store; fsync on every write is what
  # makes etcd slow on shared CI disks, and losing it on a crash is fine.
  nohup "$BIN_DIR/etcd" \
    --name stasis \
    --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "stasis=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync \
    --log-level warn \
    >"$dir/etcd.log" 2>&1 </dev/null &
  echo "etcd $! $BIN_DIR/etcd" >"$dir/pids"

  local cluster_args=()
  if [[ "${CP_WITH_NODES:-0}" == 1 ]]; then
    # As a real cluster: kubelets are authorized by the Node authorizer and NodeRestriction, Pods
    # get their ServiceAccount's token (kube-controller-manager creates the "default" ones), and the
    # "kubernetes" Service leads to this API server, whose address pods can reach.
    cluster_args=(
      --authorization-mode Node,RBAC
      --enable-admission-plugins NodeRestriction
      --endpoint-reconciler-type lease
      --kubelet-client-certificate "$dir/pki/apiserver-kubelet-client.crt"
      --kubelet-client-key "$dir/pki/apiserver-kubelet-client.key"
      --kubelet-certificate-authority "$dir/pki/ca.crt"
      --kubelet-preferred-address-types InternalIP)
  else
    # - ServiceAccount admission is off: it rejects any Pod whose ServiceAccount
    #   does not exist yet, and the "default" SA of each namespace is created by
    #   kube-controller-manager, which we do not run. TokenRequest
    #   (`kubectl create token`) does not depend on it.
    # - endpoint-reconciler none: the "kubernetes" Service endpoints would point
    #   at 127.0.0.1, which nothing in this setup needs.
    cluster_args=(
      --authorization-mode RBAC
      --disable-admission-plugins ServiceAccount
      --endpoint-reconciler-type none)
  fi
  nohup "$BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address "$CP_ADDRESS" \
    --advertise-address "$CP_ADDRESS" \
    --secure-port "$port" \
    --cert-dir "$dir/pki" \
    --tls-cert-file "$dir/pki/apiserver.crt" \
    --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/sa.key" \
    --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    "${cluster_args[@]}" \
    --allow-privileged \
    --profiling=false \
    >"$dir/kube-apiserver.log" 2>&1 </dev/null &
  echo "kube-apiserver $! $BIN_DIR/kube-apiserver" >>"$dir/pids"

  pki_kubeconfig "$dir/kubeconfig" "$CP_ADDRESS:$port" "$dir/pki" admin

  # /readyz covers etcd, RBAC bootstrap roles and CRD informers; the default
  # namespace is created by a post-start controller slightly later, and
  # clients (kube-api-test does the same) expect it to exist.
  local timeout="${CP_START_TIMEOUT:-60}" deadline=$((SECONDS + ${CP_START_TIMEOUT:-60}))
  local kubectl=("$BIN_DIR/kubectl" --kubeconfig "$dir/kubeconfig" --request-timeout 5s)
  local dead
  until [[ "$("${kubectl[@]}" get --raw /readyz 2>/dev/null)" == ok ]] &&
    "${kubectl[@]}" get namespace default >/dev/null 2>&1; do
    if dead="$(first_dead "$dir/pids")"; then
      log "$dead exited during startup; last lines of $dir/$dead.log:"
      tail -n 20 "$dir/$dead.log" >&2 || true
      cmd_stop "$dir"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "kube-apiserver not ready after ${timeout}s; see $dir/kube-apiserver.log and $dir/etcd.log"
      cmd_stop "$dir"
      exit 1
    fi
    sleep 0.2
  done
  log "ready in $((SECONDS - t0))s: https://$CP_ADDRESS:$port (etcd 127.0.0.1:$etcd_client)"
  echo "$dir/kubeconfig"
}

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  install) cmd_install ;;
  start) [[ $# -ge 2 ]] || usage; cmd_start "$2" "${3:-}" ;;
  stop) [[ $# -ge 2 ]] || usage; cmd_stop "$2" ;;
  status) [[ $# -ge 2 ]] || usage; cmd_status "$2" ;;
  *) usage ;;
esac
