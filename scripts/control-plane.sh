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
#
# Stdout carries only results (kubeconfig path of `start`); progress goes to stderr
# so callers can do: export KUBECONFIG=$(scripts/control-plane.sh start /tmp/cp)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.35.4}"
K8S_VERSION="${K8S_VERSION#v}"               # accept both v1.35.4 and 1.35.4
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${STASIS_CACHE:-$HOME/.cache/stasis}"
BIN_DIR="$CACHE_ROOT/k8s/$K8S_VERSION"
BINARIES=(etcd kube-apiserver kubectl)

log() { echo "control-plane: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------

have_binaries() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
}

goarch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# Symlinks only: cheap, and re-pointing them is how a version bump takes effect.
link_binaries() {
  local b kat_dir
  kat_dir="$REPO_ROOT/.stasis/kube-api-test/k8s/$K8S_VERSION-linux-$(goarch)"
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

# Value of field $2 in the `go mod download -json` output $1 (avoids needing jq).
json_field() { sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"$1" | head -n1; }

build_binaries() {
  command -v go >/dev/null || die "go is required to build the control plane binaries"
  local work="$CACHE_ROOT/k8s/build-$K8S_VERSION"
  local out="$work/out"
  rm -rf "$out" && mkdir -p "$work/k8s" "$work/etcd" "$out"

  log "fetching k8s.io/kubernetes@v$K8S_VERSION from the Go module proxy"
  local dl gomod info
  dl="$(cd "$work" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION")" ||
    die "go mod download k8s.io/kubernetes@v$K8S_VERSION failed (is the version on the proxy?)"
  gomod="$(json_field "$dl" GoMod)"
  info="$(json_field "$dl" Info)"
  [[ -f "$gomod" ]] || die "no go.mod for k8s.io/kubernetes@v$K8S_VERSION in: $dl"

  # k8s.io/kubernetes requires its staging repos (k8s.io/api, client-go, ...) as
  # v0.0.0 and redirects them to ./staging/src, which a dependency's replaces
  # cannot do. Their published twins are tagged v0.<minor>.<patch> of the same
  # release, so re-point every such replace there. godebug/go lines are copied
  # because only the main module's settings reach the binary.
  local staging_ver="v0.${K8S_VERSION#*.}"
  {
    echo "module stasis.local/k8s-build"
    echo
    grep -E '^(go|godebug) ' "$gomod"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    sed -n -E "s#^[[:space:]]*(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/.*#replace \1 => \1 $staging_ver#p" "$gomod"
  } >"$work/k8s/go.mod"
  : >"$work/k8s/go.sum"

  # Same ldflags as hack/lib/version.sh, so `kubectl version` and /version report
  # the real release instead of v0.0.0-master. The proxy's release timestamp
  # stands in for the build date to keep builds reproducible.
  local build_date minor="${K8S_VERSION#*.}" ldflags="-s -w" pkg kv key val
  minor="${minor%%.*}"
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)"
  [[ -n "$build_date" ]] || build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for kv in "gitVersion=v$K8S_VERSION" "gitMajor=${K8S_VERSION%%.*}" "gitMinor=$minor" \
      "gitTreeState=clean" "buildDate=$build_date"; do
      key="${kv%%=*}" val="${kv#*=}"
      ldflags+=" -X $pkg.$key=$val"
    done
  done

  # -mod=mod lets `go build` fill in go.mod/go.sum of the throwaway modules
  # from k8s.io/kubernetes' own requirements (MVS), so we never hand-maintain them.
  export GOFLAGS="${GOFLAGS:-} -mod=mod"
  # Official release binaries are static; also avoids needing a C toolchain.
  export CGO_ENABLED=0

  log "building kube-apiserver + kubectl v$K8S_VERSION (cold: ~5-10 min on 2 cores)"
  (cd "$work/k8s" && go build -trimpath -ldflags "$ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)

  # etcd gets its own module so it builds with the dependency versions etcd
  # itself was released with, not whatever Kubernetes' graph bumps them to.
  # Default: the etcd server version k8s.io/kubernetes' go.mod pins (always
  # on the proxy, and the one its etcd client was tested against).
  local etcd_ver="${ETCD_VERSION:-}"
  [[ -n "$etcd_ver" ]] ||
    etcd_ver="$(sed -n -E 's#^[[:space:]]*go\.etcd\.io/etcd/server/v3[[:space:]]+(v[^[:space:]]+).*#\1#p' "$gomod" | head -n1)"
  [[ -n "$etcd_ver" ]] || die "cannot find go.etcd.io/etcd/server/v3 in $gomod; set ETCD_VERSION"
  etcd_ver="v${etcd_ver#v}"
  {
    echo "module stasis.local/etcd-build"
    echo
    grep -E '^go ' "$gomod"
    echo
    echo "require go.etcd.io/etcd/server/v3 $etcd_ver"
  } >"$work/etcd/go.mod"
  : >"$work/etcd/go.sum"
  # The upstream etcd binary's main() is exactly this (repo root main.go),
  # but that root module is not published, so recreate it.
  cat >"$work/etcd/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  log "building etcd $etcd_ver"
  (cd "$work/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" .)

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
    mkdir -p "$CACHE_ROOT/k8s"
    # Two clones (or CI + a developer) installing at once must not build twice
    # into the same directory.
    exec 9>"$CACHE_ROOT/k8s/.lock-$K8S_VERSION"
    flock 9
    have_binaries || build_binaries
    exec 9>&- # releases the lock; `start` must not leak the fd into daemons
  fi
  link_binaries
  log "binaries in $BIN_DIR (linked from $REPO_ROOT/.stasis/bin and .stasis/kube-api-test)"
}

# ---------------------------------------------------------------------------
# start / stop
# ---------------------------------------------------------------------------

# Let the kernel pick a free loopback port (perl-base is Essential on Debian,
# unlike python). Racy in theory; start() notices if a process dies instead.
free_port() {
  perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0)->sockport, "\n"'
}

# True iff $1 is a live, non-zombie process running binary $2 (guards against
# killing a recycled PID that now belongs to something else).
is_ours() {
  local pid="$1" exe="$2" state
  [[ -e "/proc/$pid" ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ "$state" != Z ]] || return 1
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$exe" ]]
}

gen_pki() {
  local pki="$1"
  [[ -f "$pki/admin.crt" && -f "$pki/sa.key" ]] && return 0 # reuse across restarts
  mkdir -p "$pki"
  (
    cd "$pki"
    umask 077
    # RSA + PKCS#1 ("BEGIN RSA PRIVATE KEY") is what every client, including
    # fabric8's kubeconfig parser, understands.
    openssl genrsa -traditional -out ca.key 2048 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=stasis-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out ca.crt 2>/dev/null

    openssl genrsa -traditional -out apiserver.key 2048 2>/dev/null
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null

    # O=system:masters is bound to cluster-admin by RBAC's bootstrap policy.
    openssl genrsa -traditional -out admin.key 2048 2>/dev/null
    openssl req -new -key admin.key -subj "/O=system:masters/CN=stasis-admin" -out admin.csr 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
      -extfile admin.ext -out admin.crt 2>/dev/null

    # Signs ServiceAccount tokens (TokenRequest / `kubectl create token`);
    # kube-apiserver derives the verification key from the private key.
    openssl genrsa -traditional -out sa.key 2048 2>/dev/null
    rm -f ./*.csr ./*.ext ./*.srl
  )
}

write_kubeconfig() {
  local dir="$1" port="$2" pki="$1/pki" b64="base64 -w0"
  cat >"$dir/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: stasis-local
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $($b64 "$pki/ca.crt")
users:
- name: stasis-admin
  user:
    client-certificate-data: $($b64 "$pki/admin.crt")
    client-key-data: $($b64 "$pki/admin.key")
contexts:
- name: stasis-local
  context:
    cluster: stasis-local
    user: stasis-admin
    namespace: default
current-context: stasis-local
EOF
  chmod 600 "$dir/kubeconfig.tmp"
  mv -f "$dir/kubeconfig.tmp" "$dir/kubeconfig"
}

# Lines of <dir>/pids: "<name> <pid> <absolute binary path>".
read_pids() { if [[ -f "$1/pids" ]]; then cat "$1/pids"; fi; }

cmd_status() {
  local dir="$1" name pid exe n=0
  while read -r name pid exe; do
    [[ -n "${pid:-}" ]] || continue
    is_ours "$pid" "$exe" || return 1
    n=$((n + 1))
  done < <(read_pids "$dir")
  ((n == 2))
}

cmd_stop() {
  local dir="$1" name pid exe i
  [[ -f "$dir/pids" ]] || { log "nothing to stop in $dir (no pids file)"; return 0; }
  # Reverse order: the apiserver (started last) goes first, so it doesn't spend
  # its shutdown retrying a vanished etcd.
  while read -r name pid exe; do
    [[ -n "${pid:-}" ]] || continue
    if ! is_ours "$pid" "$exe"; then
      log "$name (pid $pid) is not running"
      continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # 10 s grace, then SIGKILL
      is_ours "$pid" "$exe" || break
      sleep 0.1
    done
    if is_ours "$pid" "$exe"; then
      log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  done < <(tac "$dir/pids")
  rm -f "$dir/pids"
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
  [[ -n "$port" ]] || port="$(free_port)"
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

  # - ServiceAccount admission is off: it rejects any Pod whose ServiceAccount
  #   does not exist yet, and the "default" SA of each namespace is created by
  #   kube-controller-manager, which we do not run. TokenRequest
  #   (`kubectl create token`) does not depend on it.
  # - endpoint-reconciler none: the "kubernetes" Service endpoints would point
  #   at 127.0.0.1, which nothing in this setup needs.
  nohup "$BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --secure-port "$port" \
    --cert-dir "$dir/pki" \
    --tls-cert-file "$dir/pki/apiserver.crt" \
    --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/sa.key" \
    --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --disable-admission-plugins ServiceAccount \
    --endpoint-reconciler-type none \
    --allow-privileged \
    --profiling=false \
    >"$dir/kube-apiserver.log" 2>&1 </dev/null &
  echo "kube-apiserver $! $BIN_DIR/kube-apiserver" >>"$dir/pids"

  write_kubeconfig "$dir" "$port"

  # /readyz covers etcd, RBAC bootstrap roles and CRD informers; the default
  # namespace is created by a post-start controller slightly later, and
  # clients (kube-api-test does the same) expect it to exist.
  local timeout="${CP_START_TIMEOUT:-60}" deadline=$((SECONDS + ${CP_START_TIMEOUT:-60}))
  local kubectl=("$BIN_DIR/kubectl" --kubeconfig "$dir/kubeconfig" --request-timeout 5s)
  local name pid exe
  until [[ "$("${kubectl[@]}" get --raw /readyz 2>/dev/null)" == ok ]] &&
    "${kubectl[@]}" get namespace default >/dev/null 2>&1; do
    while read -r name pid exe; do
      if ! is_ours "$pid" "$exe"; then
        log "$name exited during startup; last lines of $dir/$name.log:"
        tail -n 20 "$dir/$name.log" >&2 || true
        cmd_stop "$dir"
        exit 1
      fi
    done < <(read_pids "$dir")
    if ((SECONDS >= deadline)); then
      log "kube-apiserver not ready after ${timeout}s; see $dir/kube-apiserver.log and $dir/etcd.log"
      cmd_stop "$dir"
      exit 1
    fi
    sleep 0.2
  done
  log "ready in $((SECONDS - t0))s: https://127.0.0.1:$port (etcd 127.0.0.1:$etcd_client)"
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
