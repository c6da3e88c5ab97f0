#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine: the control plane (scripts/control-plane.sh
# with kube-scheduler and kube-controller-manager), a node (kubelet, containerd + runc with CRIU,
# the bridge CNI plugin, kube-proxy) and a local OCI registry the node pulls from.
#
#   scripts/node.sh install                     build/cache every part (start does it too)
#   scripts/node.sh start <dir> [--wait SECS]   start it all; prints <dir>/kubeconfig on stdout
#   scripts/node.sh stop <dir>                  stop what `start <dir>` started and undo what it changed
#   scripts/node.sh status <dir>                exit 0 iff every process of <dir> runs
#   scripts/node.sh restore-via-create <dir> true|false
#                                               containerd's enable_experimental_restore_via_create,
#                                               set in its config; containerd restarts to read it
#
# One node per machine: the kubelet's cgroup root, /var/lib/kubelet/device-plugins, containerd's
# /run/containerd/s and the bridge are the machine's. `start` takes the machine-wide lock
# /run/lock/stasis-node.lock and holds it until `stop`; a second `start` fails at once saying
# which <dir> holds it, or with --wait SECS waits that long for it (tests do).
#
# What `start` leaves in <dir> for its users (all paths absolute):
#   kubeconfig   cluster-admin; the API server listens on the bridge's host address, which pods
#                reach directly and through the "kubernetes" Service (kube-proxy, nftables)
#   node.env     shell-sourceable facts: NODE_NAME NODE_IP KUBECONFIG CLUSTER_CA KUBELET_URL
#                KUBELET_CHECKPOINT_DIR CONTAINERD_ROOT CONTAINERD_ADDRESS CONTAINERD_CONFIG CTR (containerd's
#                client) REGISTRY POD_REGISTRY POD_CIDR SERVICE_CIDR CRIU (the criu runc runs)
#   logs/<part>.log, and the state `stop` undoes (state/, pids)
# An earlier node's files in <dir> are removed by `start`: every start is a new cluster.
# The kubelet serves https://$NODE_IP:10250 with a certificate of the cluster CA (CLUSTER_CA, the
# CA in every ServiceAccount's ca.crt) and authenticates and authorizes every request against the
# API server (webhook; no anonymous access). The registry is plain HTTP without credentials, one
# storage served on 127.0.0.1:<port> (REGISTRY) and on $NODE_IP:<port> (POD_REGISTRY): name pods'
# images "$REGISTRY/<repository>:<tag>" (containerd pulls a checkpoint's base image again when it
# restores it, plain HTTP only from localhost); pods push to POD_REGISTRY, as Stasis' agent pushes
# checkpoint images (CheckpointStorage spec.registry.url http://$POD_REGISTRY/..., insecure: true).
# Pods get addresses in POD_CIDR on the bridge and reach nothing outside this machine.
#
# `stop` (also after a `start` that failed halfway) ends every process by PID, containers
# included, unmounts what the node mounted, removes its cgroups, bridge, veths and nftables
# tables, puts back the sysctls the kubelet changes, and removes what it wrote outside <dir>
# (/var/lib/kubelet, /var/log/containers and /var/log/pods, /var/lib/cni, /run/containerd);
# <dir> itself (logs included) stays, and so does the empty lock file. Then it checks: anything
# still there is listed and `stop` exits 1. A part that cannot start stops everything with a message
# naming the part and the tail of its log.
#
# Environment:
#   STASIS_CACHE        cache root (default ~/.cache/stasis): Kubernetes binaries in k8s/<version>/
#                       (built as scripts/control-plane.sh builds its own), containerd in
#                       containerd-<version>/, the Debian parts in node-<arch>/
#   K8S_VERSION         as for scripts/control-plane.sh
#   CONTAINERD_VERSION  containerd release to build (default 2.3.4)
#   NODE_NAME           the Node's name (default stasis-node)
#   NODE_POD_CIDR       a /24 for pods (default 10.250.77.0/24); the bridge has its .1
#   NODE_REGISTRY_PORT  the registry's port on 127.0.0.1 (default: a free one)
#   NODE_START_TIMEOUT  seconds each part may take to get ready (default 120)
#   NODE_REFRESH=1      fetch the Debian parts again
set -Eeuo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${STASIS_CACHE:-$HOME/.cache/stasis}"

log() { echo "node: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=lib/k8s-build.sh
. "$REPO_ROOT/scripts/lib/k8s-build.sh"
# shellcheck source=lib/processes.sh
. "$REPO_ROOT/scripts/lib/processes.sh"
# shellcheck source=lib/pki.sh
. "$REPO_ROOT/scripts/lib/pki.sh"
# shellcheck source=lib/debian-prefix.sh
. "$REPO_ROOT/scripts/lib/debian-prefix.sh"

K8S_BINARIES=(kubelet kube-scheduler kube-controller-manager kube-proxy)
PREFIX="$CACHE_ROOT/node-$(k8s_goarch)"
# From sid; runc and nft need sid's glibc, which comes along into the prefix (Debian 12 has 2.36).
PREFIX_PACKAGES=(runc containernetworking-plugins nftables libnftables1 libedit2 libgmp10
  libjansson4 libmnl0 libnftnl11 libxtables12 libc6 libgcc-s1 libseccomp2 libbsd0 libmd0 libtinfo6)
# containerd, its runc shim and ctr, built from the Go module proxy: 2.3.4 is the first 2.3 release
# that restores containers from checkpoint images only when its administrator turns it on
# (enable_experimental_restore_via_create), as the releases users run since August 2026 do.
CONTAINERD_VERSION="${CONTAINERD_VERSION:-2.3.4}"
CONTAINERD_VERSION="${CONTAINERD_VERSION#v}"
CONTAINERD_BIN="$CACHE_ROOT/containerd-$CONTAINERD_VERSION/bin"
PAUSE_VERSION=3.10.1
CRIU="$CACHE_ROOT/bin/criu"

NODE_NAME="${NODE_NAME:-stasis-node}"
NODE_POD_CIDR="${NODE_POD_CIDR:-10.250.77.0/24}"
[[ "$NODE_POD_CIDR" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] || die "NODE_POD_CIDR must be a /24 such as 10.250.77.0/24"
NODE_IP="${BASH_REMATCH[1]}.1"
# scripts/control-plane.sh gives Services this range; the "kubernetes" Service is its first address.
SERVICE_CIDR=10.0.0.0/24
BRIDGE=stasisbr0
KUBELET_PORT=10250
CGROUP_ROOT=stasis-node
LOCK=/run/lock/stasis-node.lock
LOCK_OWNER=/run/lock/stasis-node.owner
TIMEOUT="${NODE_START_TIMEOUT:-120}"
# What a node keeps in <dir>; `start` removes an earlier node's.
NODE_FILES=(cni containerd control-plane kubelet pod-logs registry logs state kubeconfig node.env
  kubelet.yaml kube-proxy.yaml kubelet-client.kubeconfig kube-scheduler.kubeconfig
  kube-controller-manager.kubeconfig kube-proxy.kubeconfig)
# Written by the kubelet, containerd and the CNI plugins where no setting moves them.
OUTSIDE_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd)
# Set by the kubelet when it starts (unless protectKernelDefaults), by the bridge plugin (forwarding)
# and possibly by kube-proxy: put back on stop.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait)

# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------

have_k8s_binaries() {
  local b
  for b in "${K8S_BINARIES[@]}"; do [[ -x "$K8S_BIN_DIR/$b" ]] || return 1; done
}

build_k8s_binaries() {
  local out="$K8S_WORK/out-node" b
  rm -rf "$out"
  k8s_build_commands "$out" "${K8S_BINARIES[@]}"
  "$out/kubelet" --version >&2
  mkdir -p "$K8S_BIN_DIR"
  for b in "${K8S_BINARIES[@]}"; do mv -f "$out/$b" "$K8S_BIN_DIR/$b"; done
  rm -rf "$out"
}

prefix_ok() { [[ -f "$PREFIX/.stasis-complete" ]]; }

have_containerd() { [[ -x "$CONTAINERD_BIN/containerd" && -x "$CONTAINERD_BIN/containerd-shim-runc-v2" && -x "$CONTAINERD_BIN/ctr" ]]; }

# Without cgo: the snapshotters that need it (btrfs, devmapper, zfs) are left out; the node uses overlayfs.
build_containerd() {
  command -v go >/dev/null || die "go is required to build containerd $CONTAINERD_VERSION"
  local tmp="$CONTAINERD_BIN.tmp.$$" cmd pkgs=()
  for cmd in containerd containerd-shim-runc-v2 ctr; do
    pkgs+=("github.com/containerd/containerd/v2/cmd/$cmd@v$CONTAINERD_VERSION")
  done
  log "building containerd $CONTAINERD_VERSION from the Go module proxy"
  mkdir -p "$tmp"
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" "${pkgs[@]}" >&2 ||
    { rm -rf "$tmp"; die "go install of containerd $CONTAINERD_VERSION failed (is the version on the proxy?)"; }
  rm -rf "$CONTAINERD_BIN"
  mv "$tmp" "$CONTAINERD_BIN"
  "$CONTAINERD_BIN/containerd" --version >&2
}

# runc, the CNI plugins and nft from Debian sid in $PREFIX; runc and nft are pointed
# at the prefix's glibc with patchelf (runc re-executes itself as `runc init`, so a wrapper would
# not do), patchelf itself coming from Debian 12.
build_prefix() {
  [[ "$(uname -m)" == x86_64 ]] || die "the node's Debian parts are only prepared for x86_64 (this is $(uname -m))"
  local work tmp="$PREFIX.tmp.$$" lib
  work="$(mktemp -d "$CACHE_ROOT/.node-build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$work' '$tmp'" EXIT
  debian_lists "$work" sid bookworm
  log "downloading ${PREFIX_PACKAGES[*]} from sid"
  local pkgs=() p
  for p in "${PREFIX_PACKAGES[@]}"; do pkgs+=("$p/sid"); done
  debian_unpack "$work" "$tmp" "${pkgs[@]}" || die "apt-get download of the node's packages failed"
  debian_unpack "$work" "$work/patchelf" patchelf/bookworm || die "apt-get download of patchelf failed"
  lib="$PREFIX/usr/lib/x86_64-linux-gnu"
  mkdir -p "$tmp/bin"
  for p in usr/sbin/runc usr/sbin/nft; do
    cp "$tmp/$p" "$tmp/bin/"
    "$work/patchelf/usr/bin/patchelf" --set-interpreter "$lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$lib" "$tmp/bin/${p##*/}"
  done
  # runc always hands CRIU /etc/criu/runc.conf, and CRIU's network lock defaults to iptables,
  # which is not installed: this criu reads a config that asks for nftables.
  mkdir -p "$tmp/etc"
  echo "network-lock nftables" >"$tmp/etc/criu.conf"
  cat >"$tmp/bin/criu" <<EOF
#!/bin/sh
# Generated by scripts/node.sh: the project's CRIU (scripts/install-criu.sh) with the node's settings.
CRIU_CONFIG_FILE='$PREFIX/etc/criu.conf' exec '$CRIU' "\$@"
EOF
  chmod 755 "$tmp/bin/criu"
  build_pause "$tmp/pause"
  date -u +%FT%TZ >"$tmp/.stasis-complete"
  rm -rf "$PREFIX"
  mv "$tmp" "$PREFIX"
  rm -rf "$work"
  trap - EXIT
  "$PREFIX/bin/runc" --version >&2
  sed 's/^/node:   /' "$PREFIX/.stasis-packages" >&2
}

# The sandbox ("pause") image: Kubernetes' pause.c from the module, static, as a one-layer OCI
# image (layer.tar, config.json, manifest.json) that `start` pushes to the node's registry.
build_pause() {
  local out="$1" root
  k8s_module
  root="$(mktemp -d)"
  gcc -Os -static -DVERSION="v$PAUSE_VERSION-stasis" -o "$root/pause" "$K8S_MODULE_DIR/build/pause/linux/pause.c" ||
    die "gcc -static of pause.c failed (is libc6-dev installed?)"
  strip "$root/pause"
  mkdir -p "$out"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$out/layer.tar" pause
  rm -rf "$root"
  local layer_sha layer_size config_sha config_size
  layer_sha="$(sha256sum "$out/layer.tar" | cut -d' ' -f1)"
  layer_size="$(stat -c %s "$out/layer.tar")"
  printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(k8s_goarch)" "$layer_sha" >"$out/config.json"
  config_sha="$(sha256sum "$out/config.json" | cut -d' ' -f1)"
  config_size="$(stat -c %s "$out/config.json")"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_sha" "$config_size" "$layer_sha" "$layer_size" >"$out/manifest.json"
}

cmd_install() {
  [[ -x "$CRIU" ]] || "$REPO_ROOT/scripts/install-criu.sh" >/dev/null
  "$REPO_ROOT/scripts/install-test-tools.sh" # docker-registry
  if ! have_k8s_binaries; then
    k8s_lock
    have_k8s_binaries || build_k8s_binaries
    k8s_unlock
  fi
  if [[ "${NODE_REFRESH:-0}" == 1 ]] || ! prefix_ok; then
    mkdir -p "$CACHE_ROOT"
    exec 8>"$CACHE_ROOT/.node-prefix.lock"
    flock 8
    if [[ "${NODE_REFRESH:-0}" == 1 ]] || ! prefix_ok; then build_prefix; fi
    exec 8>&-
  fi
  if ! have_containerd; then
    mkdir -p "$CACHE_ROOT"
    exec 8>"$CACHE_ROOT/.node-containerd.lock"
    flock 8
    have_containerd || build_containerd
    exec 8>&-
  fi
  "$REPO_ROOT/scripts/control-plane.sh" install
  log "node parts in $K8S_BIN_DIR, $CONTAINERD_BIN and $PREFIX"
}

# ---------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------

# Runs a part in the background, logging to logs/<name>.log, and records its PID. The lock's fd
# stays with the lock holder only.
daemon() {
  local name="$1" exe="$2"
  shift 2
  nohup "$exe" "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo "$name $! $exe" >>"$DIR/pids"
}

# Stops everything and exits when part $1 is not ready: the tail of its log says why.
part_failed() {
  local name="$1" why="$2"
  log "$name $why; last lines of $DIR/logs/$name.log:"
  tail -n 25 "$DIR/logs/$name.log" >&2 2>/dev/null || true
  trap - ERR INT TERM
  cmd_stop "$DIR"
  exit 1
}

# Waits until "$@" succeeds while part $1 runs.
await_part() {
  local name="$1" deadline=$((SECONDS + TIMEOUT)) dead
  shift
  until "$@" >/dev/null 2>&1; do
    if dead="$(first_dead "$DIR/pids")"; then part_failed "$dead" "exited during startup"; fi
    ((SECONDS < deadline)) || part_failed "$name" "was not ready within ${TIMEOUT}s"
    sleep 0.3
  done
}

kubectl() { "$K8S_BIN_DIR/kubectl" --kubeconfig "$DIR/kubeconfig" --request-timeout 10s "$@"; }

take_lock() {
  local wait="$1" owner waited=$SECONDS
  mkdir -p "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  if [[ -n "$wait" ]]; then
    if ! flock -n 9; then
      log "waiting up to ${wait}s for the node of $(cat "$LOCK_OWNER" 2>/dev/null || echo '?') to stop"
      flock -w "$wait" 9 || die "the node of $(cat "$LOCK_OWNER" 2>/dev/null || echo '?') still runs after ${wait}s"
      log "the machine's node is free after $((SECONDS - waited))s"
    fi
  elif ! flock -n 9; then
    owner="$(cat "$LOCK_OWNER" 2>/dev/null || echo '?')"
    die "a node already runs on this machine, started in $owner: stop it (scripts/node.sh stop $owner) or pass --wait SECONDS"
  fi
  # The lock was free: a node whose holder died may have left parts behind.
  owner="$(cat "$LOCK_OWNER" 2>/dev/null || true)"
  if [[ -n "$owner" && "$owner" != "$DIR" && -d "$owner/state" ]]; then
    log "cleaning up what the node of $owner left behind"
    cmd_stop "$owner"
  fi
  echo "$DIR" >"$LOCK_OWNER"
  # Holds the lock until `stop` ends it; nothing else inherits fd 9.
  nohup sleep infinity >/dev/null 2>&1 </dev/null &
  echo "lock $! $(readlink -f "$(command -v sleep)")" >"$DIR/pids"
  exec 9>&-
}

# What the node changes outside <dir>, recorded before it does, so that `stop` can undo exactly it.
record_machine_state() {
  local state="$DIR/state" key p
  mkdir -p "$state"
  : >"$state/sysctl"
  for key in "${SYSCTLS[@]}"; do
    if [[ -e "/proc/sys/${key//.//}" ]]; then echo "$key $(sysctl -n "$key")" >>"$state/sysctl"; fi
  done
  : >"$state/outside"
  for p in "${OUTSIDE_PATHS[@]}"; do
    if [[ -e "$p" ]]; then
      echo "existed $p" >>"$state/outside"
      find "$p" -mindepth 1 -xdev | LC_ALL=C sort >"$state/outside-$(echo "$p" | tr / _)"
    else
      echo "new $p" >>"$state/outside"
    fi
  done
}

start_network() {
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "a bridge $BRIDGE exists already; is another node running?"
  echo "$BRIDGE" >"$DIR/state/bridge"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Service addresses go to the bridge, never to the default route: kube-proxy translates them
  # on their way there, and without it they reach no one outside.
  ip route add "$SERVICE_CIDR" dev "$BRIDGE"
  mkdir -p "$DIR/cni/net.d"
  cat >"$DIR/cni/net.d/10-stasis.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "stasis",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$NODE_POD_CIDR"}, {"dst": "$SERVICE_CIDR"}],
        "dataDir": "$DIR/cni/ipam"
      }
    }
  ]
}
EOF
}

start_control_plane() {
  CP_ADDRESS="$NODE_IP" CP_WITH_NODES=1 CP_START_TIMEOUT="$TIMEOUT" \
    "$REPO_ROOT/scripts/control-plane.sh" start "$DIR/control-plane" >/dev/null 9>&- ||
    { trap - ERR INT TERM; cmd_stop "$DIR"; die "the control plane did not start (see above and $DIR/control-plane/*.log)"; }
  cp "$DIR/control-plane/kubeconfig" "$DIR/kubeconfig"
  PKI="$DIR/control-plane/pki"
  local server
  server="$(sed -n 's#^ *server: https://##p' "$DIR/kubeconfig")"
  pki_issue "$PKI" kube-scheduler "/CN=system:kube-scheduler" clientAuth
  pki_issue "$PKI" kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
  pki_issue "$PKI" kube-proxy "/CN=system:kube-proxy" clientAuth
  pki_issue "$PKI" kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  pki_issue "$PKI" kubelet "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  local part
  for part in kube-scheduler kube-controller-manager kube-proxy kubelet-client; do
    pki_kubeconfig "$DIR/$part.kubeconfig" "$server" "$PKI" "$part"
  done

  daemon kube-scheduler "$K8S_BIN_DIR/kube-scheduler" --kubeconfig "$DIR/kube-scheduler.kubeconfig" \
    --secure-port 0 --leader-elect-lease-duration 15s --leader-elect-renew-deadline 10s
  daemon kube-controller-manager "$K8S_BIN_DIR/kube-controller-manager" \
    --kubeconfig "$DIR/kube-controller-manager.kubeconfig" --secure-port 0 \
    --use-service-account-credentials --service-account-private-key-file "$PKI/sa.key" \
    --root-ca-file "$PKI/ca.crt" --cluster-name stasis --allocate-node-cidrs=false \
    --leader-elect-lease-duration 15s --leader-elect-renew-deadline 10s
}

# One registry, served twice over the same storage: on 127.0.0.1 (REGISTRY), where containerd pulls
# images from (its restore pulls a checkpoint's base image with a client that allows plain HTTP
# only for localhost), and on the bridge (POD_REGISTRY), where pods reach it (the agent pushes
# checkpoint images there when it runs as a pod).
start_registry() {
  local port="${NODE_REGISTRY_PORT:-$(free_port)}" pod_port secret name addr
  pod_port="$(free_port "$NODE_IP")"
  REGISTRY="127.0.0.1:$port"
  POD_REGISTRY="$NODE_IP:$pod_port"
  secret="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mkdir -p "$DIR/registry"
  for name in registry registry-pods; do
    addr="$REGISTRY"
    [[ "$name" == registry ]] || addr="$POD_REGISTRY"
    cat >"$DIR/registry/$name.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $DIR/registry/data}
  delete: {enabled: true}
http:
  addr: $addr
  secret: $secret
EOF
    daemon "$name" "$(readlink -f "$(command -v docker-registry)")" serve "$DIR/registry/$name.yml"
    await_part "$name" curl -sf "http://$addr/v2/"
  done
  # Containerd pulls the sandbox image like any other.
  PAUSE_IMAGE="$REGISTRY/pause:$PAUSE_VERSION"
  push_image "$PREFIX/pause" pause "$PAUSE_VERSION"
}

# Pushes a one-layer image (layer.tar, config.json, manifest.json in $1) as $2:$3 (OCI distribution API).
push_image() {
  local image="$1" repository="$2" tag="$3" blob digest location
  for blob in layer.tar config.json; do
    digest="sha256:$(sha256sum "$image/$blob" | cut -d' ' -f1)"
    location="$(curl -sSf -X POST -D - -o /dev/null "http://$REGISTRY/v2/$repository/blobs/uploads/" |
      sed -n 's/^[Ll]ocation: *\([^[:space:]]*\).*/\1/p')"
    [[ "$location" == http* ]] || location="http://$REGISTRY$location"
    [[ "$location" == *\?* ]] && location+="&" || location+="?"
    curl -sSf -X PUT -H "Content-Type: application/octet-stream" --data-binary "@$image/$blob" \
      "${location}digest=$digest" -o /dev/null
  done
  curl -sSf -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
    --data-binary "@$image/manifest.json" "http://$REGISTRY/v2/$repository/manifests/$tag" -o /dev/null
}

start_containerd() {
  local c="$DIR/containerd"
  # containerd's socket path must fit a sockaddr_un (108 bytes).
  ((${#c} < 80)) || die "$DIR is too long a path for containerd's sockets; choose a shorter <dir>"
  local host
  for host in "$REGISTRY" "$POD_REGISTRY"; do
    mkdir -p "$c/certs.d/$host"
    cat >"$c/certs.d/$host/hosts.toml" <<EOF
server = "http://$host"
[host."http://$host"]
  capabilities = ["pull", "resolve"]
EOF
  done
  mkdir -p "$c/tmp"
  # restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, and every sandbox failed without it.
  cat >"$c/config.toml" <<EOF
version = 3
root = "$c/root"
state = "$c/state"
temp = "$c/tmp"

[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[debug]
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = "$c/opt/image-verifier/bin"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$c/certs.d"

# Restores from checkpoint images, as a node Stasis restores pods on needs (containerd 2.2.7+ and
# 2.3.4+ have it off by default); the command restore-via-create of this script turns it off.
[plugins."io.containerd.cri.v1.runtime"]
  enable_experimental_restore_via_create = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$PREFIX/bin/runc"
        Root = "$c/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$PREFIX/usr/lib/cni"]
    conf_dir = "$DIR/cni/net.d"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
  run_containerd
}

# containerd finds its shim and runc on this PATH, runc and its `criu swrk` find criu there.
run_containerd() {
  local c="$DIR/containerd"
  PATH="$CONTAINERD_BIN:$PREFIX/bin:$PATH" daemon containerd "$CONTAINERD_BIN/containerd" --config "$c/config.toml"
  await_part containerd "$CONTAINERD_BIN/ctr" --address "$c/containerd.sock" version
}

# The kubelet's cgroup root, in every cgroup v1 hierarchy (and the unified one of a hybrid setup).
make_cgroups() {
  local h
  : >"$DIR/state/cgroups"
  for h in /sys/fs/cgroup/*/; do
    h="${h%/}"
    [[ -d "$h" && ! -L "$h" ]] || continue
    mkdir -p "$h/$CGROUP_ROOT"
    echo "$h/$CGROUP_ROOT" >>"$DIR/state/cgroups"
    if [[ -f "$h/cpuset.cpus" ]]; then
      cat "$h/cpuset.cpus" >"$h/$CGROUP_ROOT/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h/$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

start_kubelet() {
  local healthz
  healthz="$(free_port)"
  mkdir -p "$DIR/kubelet" "$DIR/pod-logs"
  cat >"$DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
# Kubernetes 1.35 refuses cgroup v1 unless told otherwise; these machines have v1 controllers.
failCgroupV1: false
cgroupsPerQOS: true
cgroupRoot: /$CGROUP_ROOT
containerRuntimeEndpoint: unix://$DIR/containerd/containerd.sock
imageServiceEndpoint: unix://$DIR/containerd/containerd.sock
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 10s}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 10s, cacheUnauthorizedTTL: 10s}
podLogsDir: $DIR/pod-logs
volumePluginDir: $DIR/kubelet/volume-plugins
featureGates:
  ContainerCheckpoint: true
failSwapOn: false
clusterDomain: cluster.local
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  daemon kubelet "$K8S_BIN_DIR/kubelet" --config "$DIR/kubelet.yaml" --kubeconfig "$DIR/kubelet-client.kubeconfig" \
    --root-dir "$DIR/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
  await_part kubelet node_ready
}

node_ready() {
  [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

# The kubelet reports containerd's version again: while it could not reach containerd it said
# "containerd://Unknown", and an agent that read that would say the node cannot restore.
node_runtime_known() {
  [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.nodeInfo.containerRuntimeVersion}')" =~ ^containerd://v?[0-9] ]]
}

start_kube_proxy() {
  local healthz metrics
  healthz="$(free_port)"
  metrics="$(free_port)"
  cat >"$DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: $DIR/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
clusterCIDR: $NODE_POD_CIDR
healthzBindAddress: 127.0.0.1:$healthz
metricsBindAddress: 127.0.0.1:$metrics
# NodePorts only on the bridge, never on the machine's own network.
nodePortAddresses: ["$NODE_IP/32"]
# 0: leave the machine's conntrack settings as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
EOF
  echo "kube-proxy" >"$DIR/state/nftables"
  PATH="$PREFIX/bin:$PATH" daemon kube-proxy "$K8S_BIN_DIR/kube-proxy" --config "$DIR/kube-proxy.yaml"
  await_part kube-proxy curl -sf "http://127.0.0.1:$healthz/healthz"
}

controllers_ready() {
  kubectl -n kube-system get lease kube-scheduler -o 'jsonpath={.spec.holderIdentity}' | grep -q . &&
    kubectl -n kube-system get lease kube-controller-manager -o 'jsonpath={.spec.holderIdentity}' | grep -q . &&
    kubectl -n default get serviceaccount default
}

write_env() {
  cat >"$DIR/node.env.tmp" <<EOF
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
KUBECONFIG=$DIR/kubeconfig
CLUSTER_CA=$PKI/ca.crt
KUBELET_URL=https://$NODE_IP:$KUBELET_PORT
KUBELET_CHECKPOINT_DIR=$DIR/kubelet/checkpoints
CONTAINERD_ROOT=$DIR/containerd/root
CONTAINERD_ADDRESS=$DIR/containerd/containerd.sock
CONTAINERD_CONFIG=$DIR/containerd/config.toml
CTR=$CONTAINERD_BIN/ctr
REGISTRY=$REGISTRY
POD_REGISTRY=$POD_REGISTRY
POD_CIDR=$NODE_POD_CIDR
SERVICE_CIDR=$SERVICE_CIDR
CRIU=$PREFIX/bin/criu
EOF
  mv -f "$DIR/node.env.tmp" "$DIR/node.env"
}

cmd_start() {
  local wait="$2" t0
  cmd_install
  mkdir -p "$1"
  DIR="$(cd "$1" && pwd)"
  take_lock "$wait"
  t0=$SECONDS
  trap 'log "interrupted"; trap - ERR INT TERM; cmd_stop "$DIR"; exit 1' INT TERM
  trap 'log "start failed at line $LINENO"; trap - ERR INT TERM; cmd_stop "$DIR"; exit 1' ERR
  if [[ -d "$DIR/state" ]]; then
    log "cleaning up what an earlier node in $DIR left behind"
    stop_parts "$DIR"
  fi
  # A new cluster every time: an earlier one's etcd, images and pods would come back with it.
  rm -rf --one-file-system "${NODE_FILES[@]/#/$DIR/}"
  mkdir -p "$DIR/logs"
  record_machine_state
  start_network
  start_control_plane
  start_registry
  start_containerd
  make_cgroups
  start_kubelet
  start_kube_proxy
  await_part kube-controller-manager controllers_ready
  write_env
  trap - ERR INT TERM
  log "ready in $((SECONDS - t0))s: node $NODE_NAME ($NODE_IP), kubelet https://$NODE_IP:$KUBELET_PORT, registry $REGISTRY"
  echo "$DIR/kubeconfig"
}

# containerd's enable_experimental_restore_via_create set to $2 in its config, and containerd
# restarted to read it; the containers run on under their shims meanwhile.
cmd_restore_via_create() {
  local value="$2" config
  [[ "$value" == true || "$value" == false ]] || usage
  DIR="$(cd "$1" && pwd)"
  [[ -f "$DIR/node.env" ]] || die "no node runs in $DIR"
  config="$DIR/containerd/config.toml"
  sed -i "s/^\(  enable_experimental_restore_via_create = \).*/\1$value/" "$config"
  grep -q "^  enable_experimental_restore_via_create = $value\$" "$config" || die "could not set the option in $config"
  stop_part "$DIR" containerd
  awk '$1 != "containerd"' "$DIR/pids" >"$DIR/pids.tmp"
  mv -f "$DIR/pids.tmp" "$DIR/pids"
  mv -f "$DIR/logs/containerd.log" "$DIR/logs/containerd.log.$(date +%s)"
  run_containerd
  await_part kubelet node_ready
  await_part kubelet node_runtime_known
  log "containerd restarted with enable_experimental_restore_via_create = $value"
}

# ---------------------------------------------------------------------------
# stop
# ---------------------------------------------------------------------------

pid_of() { awk -v n="$2" '$1 == n {print $2 " " $3}' "$1/pids" 2>/dev/null; }

stop_part() {
  local dir="$1" name="$2" pid exe
  read -r pid exe < <(pid_of "$dir" "$name") || return 0
  [[ -n "${pid:-}" ]] && stop_pid "$name" "$pid" "$exe"
  return 0
}

# The processes in the node's cgroups (containers, and the runc or CRIU of a checkpoint under way).
cgroup_pids() {
  local cg
  [[ -f "$1/state/cgroups" ]] || return 0
  while read -r cg; do
    [[ -d "$cg" ]] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
  done <"$1/state/cgroups" | sort -un
}

# Every container of the node, through containerd while it still runs, then whatever is left in
# the node's cgroups (thawed first: a frozen process cannot die). Each container's process is a
# child of its containerd shim, which outlives containerd: their PIDs are kept for stop_shims.
stop_containers() {
  local dir="$1" pid ppid id i cg pids
  local ctr=("$CONTAINERD_BIN/ctr" --address "$dir/containerd/containerd.sock" --namespace k8s.io)
  for pid in $(cgroup_pids "$dir"); do
    ppid="$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null)" || continue
    if is_ours "$ppid" "$CONTAINERD_BIN/containerd-shim-runc-v2"; then echo "$ppid" >>"$dir/state/shims"; fi
  done
  if [[ -S "$dir/containerd/containerd.sock" ]] && "${ctr[@]}" version >/dev/null 2>&1; then
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1
    done
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      timeout 20 "${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1
    done
    for id in $("${ctr[@]}" sandboxes ls 2>/dev/null | awk 'NR > 1 {print $1}'); do
      timeout 20 "${ctr[@]}" sandboxes rm -f "$id" >/dev/null 2>&1
    done
  fi
  [[ -f "$dir/state/cgroups" ]] || return 0
  for ((i = 0; i < 50; i++)); do
    while read -r cg; do
      find "$cg" -name freezer.state 2>/dev/null | while read -r f; do echo THAWED >"$f"; done
    done <"$dir/state/cgroups"
    pids="$(cgroup_pids "$dir")"
    [[ -n "$pids" ]] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.2
  done
  log "processes left in the node's cgroups after SIGKILL: $(cgroup_pids "$dir" | tr '\n' ' ')"
}

stop_shims() {
  local dir="$1" pid
  [[ -f "$dir/state/shims" ]] || return 0
  for pid in $(sort -un "$dir/state/shims"); do
    stop_pid containerd-shim "$pid" "$CONTAINERD_BIN/containerd-shim-runc-v2" 5
  done
}

# Mounts under <dir> and the paths outside it the node writes, deepest first.
unmount_all() {
  local dir="$1" mp p
  local prefixes=("$dir" "${OUTSIDE_PATHS[@]}")
  while read -r mp; do
    for p in "${prefixes[@]}"; do
      if [[ "$mp" == "$p" || "$mp" == "$p"/* ]]; then
        umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "cannot unmount $mp"
        break
      fi
    done
  done < <(awk '{print $5}' /proc/self/mountinfo | sed 's/\\040/ /g' | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
}

remove_cgroups() {
  local dir="$1" cg d
  [[ -f "$dir/state/cgroups" ]] || return 0
  while read -r cg; do
    [[ -d "$cg" ]] || continue
    while read -r d; do
      rmdir "$d" 2>/dev/null || log "cannot remove cgroup $d"
    done < <(find "$cg" -depth -type d)
  done <"$dir/state/cgroups"
}

restore_sysctls() {
  local dir="$1" key value
  [[ -f "$dir/state/sysctl" ]] || return 0
  while read -r key value; do
    [[ "$(sysctl -n "$key" 2>/dev/null)" == "$value" ]] || sysctl -q -w "$key=$value" || log "cannot put back $key=$value"
  done <"$dir/state/sysctl"
}

# Removes what the node wrote outside <dir>: paths it created whole, and new entries in paths that
# existed before.
clean_outside() {
  local dir="$1" how p listing e
  [[ -f "$dir/state/outside" ]] || return 0
  while read -r how p; do
    if [[ "$how" == new ]]; then
      rm -rf "$p"
    elif [[ -d "$p" ]]; then
      listing="$dir/state/outside-$(echo "$p" | tr / _)"
      while read -r e; do
        [[ -e "$e" || -L "$e" ]] && rm -rf "$e"
      done < <(find "$p" -mindepth 1 -xdev | LC_ALL=C sort | LC_ALL=C comm -23 - "$listing" | sort -r)
    fi
  done <"$dir/state/outside"
}

# Everything but the lock: also what `start` runs first when it finds an earlier node's leftovers.
# Goes on past any step that fails: the next ones still have things to undo.
stop_parts() (
  local dir="$1" part
  set +e
  for part in kube-proxy kube-scheduler kube-controller-manager kubelet; do stop_part "$dir" "$part"; done
  stop_containers "$dir"
  stop_part "$dir" containerd
  stop_shims "$dir"
  stop_part "$dir" registry-pods
  stop_part "$dir" registry
  "$REPO_ROOT/scripts/control-plane.sh" stop "$dir/control-plane" >/dev/null 2>&1 || true
  unmount_all "$dir"
  remove_cgroups "$dir"
  if [[ -f "$dir/state/nftables" ]]; then
    local family
    for family in ip ip6; do
      "$PREFIX/bin/nft" list table "$family" kube-proxy >/dev/null 2>&1 &&
        "$PREFIX/bin/nft" delete table "$family" kube-proxy
    done
  fi
  if [[ -f "$dir/state/bridge" ]]; then
    ip link show "$(cat "$dir/state/bridge")" >/dev/null 2>&1 && ip link delete "$(cat "$dir/state/bridge")"
  fi
  restore_sysctls "$dir"
  clean_outside "$dir"
  local left
  left="$(leftovers "$dir")"
  rm -rf "$dir/state" "$dir/node.env"
  # Keep only the lock holder's line.
  if [[ -f "$dir/pids" ]]; then
    awk '$1 == "lock"' "$dir/pids" >"$dir/pids.tmp"
    mv -f "$dir/pids.tmp" "$dir/pids"
  fi
  if [[ -n "$left" ]]; then
    log "could not undo everything the node of $dir did:"
    sed 's/^/node:   /' <<<"$left" >&2
    return 1
  fi
)

# What is still there of the node after stop_parts undid it, one line each (nothing: all undone).
# Checked while the node still holds the machine's lock: a node started next cannot be mistaken for it.
leftovers() {
  local dir="$1" name pid exe cg key value how p mp
  while read -r name pid exe; do
    [[ "$name" == lock ]] || ! is_ours "$pid" "$exe" || echo "process $name (pid $pid)"
  done < <(read_pids "$dir/pids")
  [[ ! -f "$dir/control-plane/pids" ]] || echo "the control plane's processes ($dir/control-plane/pids)"
  if [[ -f "$dir/state/shims" ]]; then
    for pid in $(sort -un "$dir/state/shims"); do
      ! is_ours "$pid" "$CONTAINERD_BIN/containerd-shim-runc-v2" || echo "process containerd-shim (pid $pid)"
    done
  fi
  while read -r mp; do
    for p in "$dir" "${OUTSIDE_PATHS[@]}"; do
      [[ "$mp" != "$p" && "$mp" != "$p"/* ]] || { echo "mount $mp"; break; }
    done
  done < <(awk '{print $5}' /proc/self/mountinfo | sed 's/\\040/ /g')
  if [[ -f "$dir/state/cgroups" ]]; then
    while read -r cg; do [[ ! -d "$cg" ]] || echo "cgroup $cg"; done <"$dir/state/cgroups"
  fi
  if [[ -f "$dir/state/bridge" ]] && ip link show "$(cat "$dir/state/bridge")" >/dev/null 2>&1; then
    echo "bridge $(cat "$dir/state/bridge")"
  fi
  if [[ -f "$dir/state/nftables" ]]; then
    for p in ip ip6; do
      ! "$PREFIX/bin/nft" list table "$p" kube-proxy >/dev/null 2>&1 || echo "nftables table $p kube-proxy"
    done
  fi
  if [[ -f "$dir/state/sysctl" ]]; then
    while read -r key value; do
      [[ "$(sysctl -n "$key" 2>/dev/null)" == "$value" ]] || echo "sysctl $key=$(sysctl -n "$key") (was $value)"
    done <"$dir/state/sysctl"
  fi
  if [[ -f "$dir/state/outside" ]]; then
    while read -r how p; do
      if [[ "$how" == new ]]; then
        [[ ! -e "$p" ]] || echo "$p"
      elif [[ -d "$p" ]]; then
        find "$p" -mindepth 1 -xdev | LC_ALL=C sort |
          LC_ALL=C comm -23 - "$dir/state/outside-$(echo "$p" | tr / _)" | sed 's/^/file /'
      fi
    done <"$dir/state/outside"
  fi
}

cmd_stop() (
  local dir
  set +e
  trap - ERR
  dir="$(cd "$1" 2>/dev/null && pwd)" || { log "nothing to stop: no folder $1"; return 0; }
  local undone=0
  stop_parts "$dir" || undone=1
  stop_part "$dir" lock
  rm -f "$dir/pids"
  [[ "$(cat "$LOCK_OWNER" 2>/dev/null)" != "$dir" ]] || rm -f "$LOCK_OWNER"
  if ((undone)); then return 1; fi
  log "stopped the node of $dir; nothing of it is left"
)

cmd_status() {
  local dir="$1" name pid exe n=0
  [[ -f "$dir/node.env" ]] || return 1
  while read -r name pid exe; do
    [[ -n "${pid:-}" ]] || continue
    is_ours "$pid" "$exe" || return 1
    n=$((n + 1))
  done < <(read_pids "$dir/pids")
  ((n > 0)) && "$REPO_ROOT/scripts/control-plane.sh" status "$dir/control-plane"
}

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ "$(id -u)" == 0 || "${1:-}" == install ]] || die "the node needs root (cgroups, mounts, a bridge)"
case "${1:-}" in
  install) cmd_install ;;
  start)
    [[ $# -ge 2 ]] || usage
    wait=""
    if [[ "${3:-}" == --wait ]]; then wait="${4:?--wait needs seconds}"; fi
    cmd_start "$2" "$wait"
    ;;
  stop) [[ $# -ge 2 ]] || usage; cmd_stop "$2" ;;
  status) [[ $# -ge 2 ]] || usage; cmd_status "$2" ;;
  restore-via-create) [[ $# -ge 3 ]] || usage; cmd_restore_via_create "$2" "$3" ;;
  *) usage ;;
esac
