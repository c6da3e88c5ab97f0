#!/usr/bin/env bash
# `make cluster`: a real one-node Kubernetes cluster on this machine with Stasis installed from its own
# images, in the foreground until Ctrl-C or SIGTERM.
#   1. the node (scripts/node.sh start .stasis/node): control plane, kubelet, containerd + runc +
#      CRIU, bridge networking, kube-proxy, and the OCI registry on port 5000 (NODE_REGISTRY_PORT)
#   2. `install`: the images (images/build.sh --push to the node's registry), then Stasis (helm
#      install charts/stasis, pinned to the images' digests) with a default storage: a folder on the
#      node (filesystem storage: a one-node cluster needs nothing more) and the node's registry for
#      the checkpoint images of pod restores
# Its kubeconfig is .stasis/node/kubeconfig. Ctrl-C or SIGTERM stops it all: scripts/node.sh stop
# ends every process by PID and undoes what the node changed on the machine. A part that fails
# stops everything with a message naming it and the tail of its log; a second `make cluster` while
# one runs says so.
#
#   scripts/cluster.sh                  run it (make cluster runs `make build` first: the images hold the jar)
#   scripts/cluster.sh install NODE_DIR step 2 on a node scripts/node.sh started in NODE_DIR (the tests
#                                       install Stasis so: HelmInstallOnNodeIT)
#
# Environment: STASIS_CACHE, NODE_REGISTRY_PORT (default 5000), ALLOW_HOST_PROCESSES (the namespaces
# that may checkpoint processes in no pod, Helm allowHostProcesses, comma-separated or `*`; default
# `default`, as `stasis local` allows, for the README's process walkthrough), and scripts/node.sh's.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_SH="$REPO_ROOT/scripts/node.sh"
KUBECTL="$REPO_ROOT/.stasis/bin/kubectl"
HELM="$REPO_ROOT/.stasis/bin/helm"
NAMESPACE=stasis-system
NODE_LOCK=/run/lock/stasis-node.lock
NODE_LOCK_OWNER=/run/lock/stasis-node.owner

log() { echo "cluster: $*" >&2; }

# --- install ---------------------------------------------------------------------------------------

# install_failed PART LOG: the part that failed and the tail of its log; exits.
install_failed() {
  log "ERROR: $1 failed; last lines of $2:"
  tail -n 25 "$2" >&2 || true
  exit 1
}

# What Kubernetes says about Stasis' pods when they do not get ready: their state, events and logs.
describe_stasis() {
  local pod
  "$KUBECTL" -n "$NAMESPACE" get pods -o wide
  "$KUBECTL" -n "$NAMESPACE" get events --sort-by=.lastTimestamp | tail -n 15
  for pod in $("$KUBECTL" -n "$NAMESPACE" get pods -o name); do
    echo "--- $pod"
    "$KUBECTL" -n "$NAMESPACE" logs "$pod" --all-containers --tail 10
  done
}

values() { # OPERATOR_DIGEST AGENT_DIGEST: the chart's values for this node
  cat <<EOF
operator:
  image: {repository: $REGISTRY/stasis-operator, digest: "$1"}
agent:
  image: {repository: $REGISTRY/stasis-agent, digest: "$2"}
  workDir: $DIR/stasis/work
  kubeletCheckpointDir: $KUBELET_CHECKPOINT_DIR
  kubeletUrl: $KUBELET_URL
  # The kubelet's: this machine's PID 1 refuses to be entered (docs/agent-on-a-node.md).
  hostNamespacesPid: $(awk '$1 == "kubelet" {print $2}' "$DIR/pids")
  # The node's containerd keeps its configuration and images in the node's folder.
  runtime: {restore: auto, containerdConfig: $CONTAINERD_CONFIG, crioSocket: /run/crio/crio.sock, storageDir: $CONTAINERD_ROOT}
allowHostProcesses: [$(sed 's/[^,][^,]*/"&"/g' <<<"${ALLOW_HOST_PROCESSES-default}")]
defaultStorage:
  enabled: true
  filesystem:
    path: $DIR/stasis/archives
    volume: {hostPath: {path: $DIR/stasis/archives, type: Directory}}
  # Where pods reach the registry; the node pulls from it there too.
  registry: {url: "http://$POD_REGISTRY", insecure: true}
EOF
}

cmd_install() {
  DIR="$(cd "$1" && pwd)"
  [[ -f "$DIR/node.env" ]] || { log "ERROR: no node runs in $DIR (scripts/node.sh start $DIR)"; exit 1; }
  # shellcheck source=/dev/null
  . "$DIR/node.env"
  export KUBECONFIG
  mkdir -p "$DIR/logs"

  log "building the images and pushing them to $REGISTRY"
  "$REPO_ROOT/images/build.sh" --push "http://$REGISTRY" >"$DIR/logs/images.out" 2>"$DIR/logs/images.log" ||
    install_failed "the image build (images/build.sh)" "$DIR/logs/images.log"
  local operator agent
  operator="$(awk '$1 == "stasis-operator" {sub(/.*@/, "", $2); print $2}' "$DIR/logs/images.out")"
  agent="$(awk '$1 == "stasis-agent" {sub(/.*@/, "", $2); print $2}' "$DIR/logs/images.out")"

  log "installing Stasis (helm install charts/stasis)"
  rm -rf "$DIR/stasis"
  mkdir -p "$DIR/stasis/work" "$DIR/stasis/archives"
  # The operator (user 65532) checks the storage and deletes the archives the agent (root) writes.
  chgrp 65532 "$DIR/stasis/archives"
  chmod 2770 "$DIR/stasis/archives"
  values "$operator" "$agent" >"$DIR/stasis-values.yaml"
  # --take-ownership: the namespace and RBAC may be there already (kubectl apply -k config/rbac).
  {
    "$KUBECTL" create namespace "$NAMESPACE" --dry-run=client -o yaml | "$KUBECTL" apply -f - &&
      "$KUBECTL" label --overwrite namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=privileged &&
      "$HELM" install stasis "$REPO_ROOT/charts/stasis" -n "$NAMESPACE" -f "$DIR/stasis-values.yaml" \
        --take-ownership --wait --timeout 5m &&
      "$KUBECTL" wait --for=jsonpath='{.status.phase}'=Available ckptstore/default --timeout 60s
  } >"$DIR/logs/helm.log" 2>&1 || { describe_stasis >>"$DIR/logs/helm.log" 2>&1; install_failed "helm install" "$DIR/logs/helm.log"; }
  log "Stasis runs: $("$KUBECTL" -n "$NAMESPACE" get pods --no-headers | wc -l) pods, storage default Available"
}

# --- run -------------------------------------------------------------------------------------------

stop() {
  trap - INT TERM
  log "stopping"
  "$NODE_SH" stop "$DIR" >"$DIR/node.sh-stop.log" 2>&1 || { tail -n 20 "$DIR/node.sh-stop.log" >&2; exit 1; }
  log "stopped: nothing of the cluster runs, its changes to this machine are undone (logs stay in $DIR/logs)"
}

cmd_run() {
  local t0=$SECONDS owner
  DIR="$REPO_ROOT/.stasis/node"
  mkdir -p "$DIR"
  owner="$(cat "$NODE_LOCK_OWNER" 2>/dev/null || true)"
  if [[ -n "$owner" ]] && ! flock -n "$NODE_LOCK" true 2>/dev/null; then
    if [[ "$owner" == "$DIR" ]]; then
      log "ERROR: make cluster already runs in this clone ($DIR); stop it with Ctrl-C there"
    else
      log "ERROR: a node already runs on this machine, started in $owner (tests, or make cluster in another clone); wait until it stops"
    fi
    exit 1
  fi

  log "starting the node (control plane, kubelet, containerd, registry)"
  trap 'log "interrupted"; stop; exit 130' INT
  trap 'log "terminated"; stop; exit 143' TERM
  export NODE_REGISTRY_PORT="${NODE_REGISTRY_PORT:-5000}"
  # Not in logs/: scripts/node.sh start empties that (its parts log there).
  "$NODE_SH" start "$DIR" >"$DIR/node.sh.log" 2>&1 || {
    log "ERROR: the node did not start:"
    tail -n 30 "$DIR/node.sh.log" >&2
    exit 1 # scripts/node.sh stopped what it had started
  }
  ( cmd_install "$DIR" ) || { stop; exit 1; }
  # shellcheck source=/dev/null
  . "$DIR/node.env"

  cat <<EOF

Stasis runs on a one-node Kubernetes cluster, ready in $((SECONDS - t0)) s: node $NODE_NAME, registry $REGISTRY.
  export KUBECONFIG=$DIR/kubeconfig PATH=$REPO_ROOT/.stasis/bin:\$PATH
  kubectl -n $NAMESPACE get pods                     # the operator (2 replicas, one leading) and the agent
  kubectl get nodeprof,ckptstore                     # the node's profile; the default storage
  kubectl apply -f config/samples/pod-counter.yaml   # then "Five minutes with pods" in README.md
Logs: $DIR/logs. Ctrl-C stops it all.
EOF
  # In the foreground until told to stop, or until a part of the node dies.
  while "$NODE_SH" status "$DIR" >/dev/null 2>&1; do
    sleep 5 &
    wait $! || true
  done
  log "ERROR: a part of the node stopped running; its logs are in $DIR/logs"
  stop
  exit 1
}

case "${1:-run}" in
  run) cmd_run ;;
  install) cmd_install "${2:?usage: scripts/cluster.sh install NODE_DIR}" ;;
  *) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
