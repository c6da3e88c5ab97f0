# Sourced by scripts/control-plane.sh and scripts/node.sh: builds Kubernetes commands from the
# k8s.io/kubernetes module on the Go module proxy (this machine and CI reach package registries
# only, never dl.k8s.io or GitHub releases) and caches them, one folder per release.
#
#   K8S_VERSION   release to build (default below; v1.35.4 and 1.35.4 both work)
#   K8S_BIN_DIR   where the binaries of that release are cached: $CACHE_ROOT/k8s/<version>
#   k8s_module                     downloads the module; sets K8S_GOMOD, K8S_INFO, K8S_MODULE_DIR
#   k8s_build_commands <out> <cmd>...  go build k8s.io/kubernetes/cmd/<cmd> into <out>/
#   k8s_lock / k8s_unlock           serialize builds of one release between clones (fd 9)
# Callers set CACHE_ROOT and define log() and die().

K8S_VERSION="${K8S_VERSION:-1.35.4}"
K8S_VERSION="${K8S_VERSION#v}"
K8S_BIN_DIR="$CACHE_ROOT/k8s/$K8S_VERSION"
K8S_WORK="$CACHE_ROOT/k8s/build-$K8S_VERSION"

k8s_goarch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# Value of field $2 in the `go mod download -json` output $1 (avoids needing jq).
k8s_json_field() { sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"$1" | head -n1; }

k8s_lock() {
  mkdir -p "$CACHE_ROOT/k8s"
  # Two clones (or CI + a developer) installing at once must not build twice into one folder.
  exec 9>"$CACHE_ROOT/k8s/.lock-$K8S_VERSION"
  flock 9
}

# Releases the lock; daemons started later must not inherit the fd.
k8s_unlock() { exec 9>&-; }

k8s_module() {
  [[ -n "${K8S_GOMOD:-}" ]] && return 0
  command -v go >/dev/null || die "go is required to build Kubernetes v$K8S_VERSION"
  mkdir -p "$K8S_WORK"
  log "fetching k8s.io/kubernetes@v$K8S_VERSION from the Go module proxy"
  local dl
  dl="$(cd "$K8S_WORK" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION")" ||
    die "go mod download k8s.io/kubernetes@v$K8S_VERSION failed (is the version on the proxy?)"
  K8S_GOMOD="$(k8s_json_field "$dl" GoMod)"
  K8S_INFO="$(k8s_json_field "$dl" Info)"
  K8S_MODULE_DIR="$(k8s_json_field "$dl" Dir)"
  [[ -f "$K8S_GOMOD" && -d "$K8S_MODULE_DIR" ]] || die "no go.mod for k8s.io/kubernetes@v$K8S_VERSION in: $dl"
}

k8s_build_commands() {
  local out="$1"
  shift
  k8s_module
  mkdir -p "$K8S_WORK/k8s" "$out"

  # k8s.io/kubernetes requires its staging repos (k8s.io/api, client-go, ...) as
  # v0.0.0 and redirects them to ./staging/src, which a dependency's replaces
  # cannot do. Their published twins are tagged v0.<minor>.<patch> of the same
  # release, so re-point every such replace there. godebug/go lines are copied
  # because only the main module's settings reach the binary.
  local staging_ver="v0.${K8S_VERSION#*.}"
  {
    echo "module stasis.local/k8s-build"
    echo
    grep -E '^(go|godebug) ' "$K8S_GOMOD"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    sed -n -E "s#^[[:space:]]*(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/.*#replace \1 => \1 $staging_ver#p" "$K8S_GOMOD"
  } >"$K8S_WORK/k8s/go.mod"
  : >"$K8S_WORK/k8s/go.sum"

  # Same ldflags as hack/lib/version.sh, so `kubectl version` and /version report
  # the real release instead of v0.0.0-master. The proxy's release timestamp
  # stands in for the build date to keep builds reproducible.
  local build_date minor="${K8S_VERSION#*.}" ldflags="-s -w" pkg kv key val cmd pkgs=()
  minor="${minor%%.*}"
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$K8S_INFO" 2>/dev/null || true)"
  [[ -n "$build_date" ]] || build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for kv in "gitVersion=v$K8S_VERSION" "gitMajor=${K8S_VERSION%%.*}" "gitMinor=$minor" \
      "gitTreeState=clean" "buildDate=$build_date"; do
      key="${kv%%=*}" val="${kv#*=}"
      ldflags+=" -X $pkg.$key=$val"
    done
  done
  for cmd in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done

  log "building $* v$K8S_VERSION (cold: several minutes on 2 cores)"
  # -mod=mod lets `go build` fill in go.mod/go.sum of the throwaway module from
  # k8s.io/kubernetes' own requirements (MVS), so we never hand-maintain them.
  # CGO_ENABLED=0: release binaries are static; no C toolchain needed.
  (cd "$K8S_WORK/k8s" && GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 \
    go build -trimpath -ldflags "$ldflags" -o "$out/" "${pkgs[@]}")
}
