#!/usr/bin/env bash
# Builds Stasis' images without a container engine, the one recipe for the images users run and the
# images the tests run:
#   stasis-operator  the jar on a Java runtime, as user 65532:65532
#   stasis-agent     the jar on a Java runtime, as root, plus CRIU 4.2.1 as a self-contained prefix
#                    (scripts/install-criu.sh), the scripts that copy it to the node and run it in the
#                    host's namespaces (criu-host, install-host-criu) and the tools they and the agent
#                    run (sh, coreutils, nsenter, renice)
#   stasis-counter   a demo workload: prints 1, 2, 3, ... to its log, one a second
#
#   images/build.sh [--push URL]    URL: http://127.0.0.1:5000 or https://registry.example.com/stasis
#
# Every file comes from Debian's archive (`apt-get download` + `dpkg -x` through private package lists,
# scripts/lib/debian-prefix.sh), from this machine's JDK 17 (`jlink` of the modules the jar needs) or
# from this repository (operator/target/stasis.jar: `make build` first). Layers are tars written the
# same way every time (sorted, fixed times and owners, `gzip -n`), so the same inputs give the same
# digests; each is built once per inputs and kept in $STASIS_CACHE/images. The images go into an OCI
# image layout in .stasis/images (index.json names them <name>:<version>); --push pushes each to
# URL/<name>:<version> with the project's own registry client (dev.stasis.image) and prints one line
# per image: "<name> <reference>@<digest>". As root, each new image is first run once (chroot) to show
# that it starts.
#
# Environment: STASIS_CACHE (cache root), VERSION (image tag, default the chart's appVersion),
#   STASIS_IMAGES_REFRESH=1 (fetch Debian's package lists even when they are less than a day old),
#   STASIS_IMAGES_STORE (layers and blobs, default $STASIS_CACHE/images), STASIS_IMAGES_LAYOUT
#   (default .stasis/images).
set -euo pipefail
umask 022

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${STASIS_CACHE:-$HOME/.cache/stasis}"
STORE="${STASIS_IMAGES_STORE:-$CACHE/images}"
LAYOUT="${STASIS_IMAGES_LAYOUT:-$REPO_ROOT/.stasis/images}"
DEBIAN="$CACHE/debian-bookworm"
JAR="$REPO_ROOT/operator/target/stasis.jar"
VERSION="${VERSION:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO_ROOT/charts/stasis/Chart.yaml")}"
EPOCH=1 # every file's mtime and the images' creation time: 1970-01-01T00:00:01Z
SUITES=(bookworm bookworm-updates bookworm-security)
# `jdeps --print-module-deps --ignore-missing-deps --multi-release 17` of the jar, and jdk.crypto.ec: TLS key
# exchange (ECDHE, X25519) is a service provider that jdeps cannot see.
JAVA_MODULES=java.base,java.compiler,java.desktop,java.net.http,java.security.jgss,java.sql,jdk.httpserver,jdk.management,jdk.net,jdk.unsupported,jdk.crypto.ec
PATH_IN_IMAGE=/opt/java/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The C library and what the Java runtime links (libjvm: libstdc++, libgcc_s, libm; java: libz);
# libc-bin for the C.UTF-8 locale, so that the JVM reads and writes file names as UTF-8.
BASE_PKGS=(libc6 libc-bin libgcc-s1 libstdc++6 zlib1g)
# What the agent runs besides Java: sh and coreutils (install-host-criu; mkfifo for CRIU's post-dump
# hook), nsenter (criu-host), renice and nice (the upload's and CRIU's priorities), and the libraries
# those link. No kill: the agent signals processes through pidfds, and CRIU, not the agent, stops and
# ends the trees it dumps.
AGENT_PKGS=(dash coreutils util-linux bsdutils libselinux1 libpcre2-8-0 libacl1 libattr1)
COUNTER_PKGS=(busybox-static)
COUNTER_LOOP='i=0; while true; do i=$((i+1)); echo "$i"; sleep 1; done'

log() { echo "images: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../scripts/lib/debian-prefix.sh
. "$REPO_ROOT/scripts/lib/debian-prefix.sh"

sha256() { sha256sum "$@" | cut -c1-64; }

# --- Debian packages -------------------------------------------------------------------------------

# Private package lists, fetched at most once a day and whenever SUITES changes: the layers' keys are
# the exact .deb files the lists name, so a refresh that brings new versions (security fixes included)
# brings new layers, and one that does not changes nothing.
debian_ready() {
  local work="$DEBIAN" stamp="$DEBIAN/.fetched"
  if [ "${STASIS_IMAGES_REFRESH:-0}" = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ] ||
    [ "$(cat "$stamp")" != "${SUITES[*]}" ]; then
    debian_lists "$work" "${SUITES[@]}"
    echo "${SUITES[*]}" >"$stamp"
  else
    debian_apt "$work" "${SUITES[@]}"
  fi
}

# The .deb files (name_version_arch.deb and sha256) that the lists give for these packages.
debian_files() {
  apt-get "${DEBIAN_APT[@]}" download --print-uris "$@" | awk '{print $2, $4}' | sort
}

# unpack_debs ROOT LAYER PKG...: the packages' files in ROOT, without documentation except the
# copyright files; /usr/share/stasis/LAYER.packages lists what went in.
unpack_debs() {
  local root="$1" name="$2"
  shift 2
  debian_unpack "$DEBIAN" "$root" "$@" || die "apt-get download $* failed"
  mkdir -p "$root/usr/share/stasis"
  sort "$root/.stasis-packages" >"$root/usr/share/stasis/$name.packages"
  rm -f "$root/.stasis-packages"
  rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/locale" "$root/usr/share/lintian" \
    "$root/usr/share/bug" "$root/usr/share/doc-base" "$root/usr/share/bash-completion"
  if [ -d "$root/usr/share/doc" ]; then
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  fi
}

# --- layers ----------------------------------------------------------------------------------------

# pack ROOT: writes the layer of ROOT into the blob store; prints "<digest> <size> <diff_id>". No file
# keeps a setuid or setgid bit: nothing in the images needs one (su, mount and the like come along
# with their packages, unused).
pack() {
  local root="$1" tar gz diff digest
  find "$root" -type f -perm /6000 -exec chmod ug-s {} +
  tar="$(mktemp "$STORE/tmp/layer.XXXXXX")"
  (cd "$root" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) |
    tar --create --file="$tar" --directory="$root" --no-recursion --verbatim-files-from --files-from=- \
      --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
      --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner --no-acls --no-xattrs --no-selinux
  diff="$(sha256 "$tar")"
  gz="$tar.gz"
  gzip -n -6 -c "$tar" >"$gz"
  rm -f "$tar"
  digest="$(sha256 "$gz")"
  mv -f "$gz" "$STORE/blobs/sha256/$digest"
  echo "$digest $(stat -c %s "$STORE/blobs/sha256/$digest") $diff"
}

# layer NAME KEY FILL: the layer FILL makes in an empty folder, built once per NAME, KEY (what goes
# in) and the code that makes it; prints "<digest> <size> <diff_id>".
layer() {
  local name="$1" key="$2" fill="$3" id record root
  id="$(printf '%s\n' "$name" "$key" "$EPOCH" "$(declare -f pack unpack_debs "$fill")" | sha256)"
  record="$STORE/layers/$name-$id"
  if [ -f "$record" ] && [ -f "$STORE/blobs/sha256/$(cut -d' ' -f1 "$record")" ]; then
    cat "$record"
    return
  fi
  log "building layer $name"
  root="$(mktemp -d "$STORE/tmp/$name.XXXXXX")"
  "$fill" "$root"
  pack "$root" >"$record.tmp"
  rm -rf "$root"
  mv -f "$record.tmp" "$record"
  cat "$record"
}

fill_base() {
  local root="$1"
  unpack_debs "$root" base "${BASE_PKGS[@]}"
  mkdir -p "$root/etc" "$root/tmp" "$root/root"
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$root/etc/group"
  # Names from /etc/hosts (the kubelet writes the pod's own) before DNS: a cluster may have none.
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$root/etc/nsswitch.conf"
}

fill_java() {
  local root="$1"
  mkdir -p "$root/opt"
  jlink --add-modules "$JAVA_MODULES" --strip-debug --no-man-pages --no-header-files \
    --output "$root/opt/java" >/dev/null
}

fill_agent_tools() {
  local root="$1"
  unpack_debs "$root" agent-tools "${AGENT_PKGS[@]}"
  mkdir -p "$root/opt/stasis/bin"
  cp "$REPO_ROOT/images/criu-host" "$REPO_ROOT/images/install-host-criu" "$root/opt/stasis/bin/"
  chmod 755 "$root/opt/stasis/bin/"*
}

fill_criu() {
  local root="$1"
  mkdir -p "$root/opt/stasis"
  cp -a "$CRIU_PREFIX" "$root/opt/stasis/criu"
  rm -f "$root/opt/stasis/criu/.stasis-complete" # when it was built: the packages say what it is
}

fill_jar() {
  local root="$1"
  mkdir -p "$root/opt/stasis"
  cp "$JAR" "$root/opt/stasis/stasis.jar"
  chmod 644 "$root/opt/stasis/stasis.jar"
}

fill_counter() {
  local root="$1"
  unpack_debs "$root" counter "${COUNTER_PKGS[@]}"
  ln -s busybox "$root/bin/sh"
  ln -s busybox "$root/bin/sleep"
}

# --- images ----------------------------------------------------------------------------------------

json_array() { # a 'b "c"' -> ["a","b \"c\""]
  local out="" v
  for v in "$@"; do
    v="${v//\\/\\\\}"
    out+="${out:+,}\"${v//\"/\\\"}\""
  done
  echo "[$out]"
}

# image NAME USER ENTRYPOINT_JSON CMD_JSON ENV_JSON LAYER...: writes config and manifest into the blob
# store; prints the manifest's "<digest> <size>".
image() {
  local name="$1" user="$2" entrypoint="$3" cmd="$4" env="$5" config manifest diffs="" layers="" l digest size diff
  shift 5
  for l in "$@"; do
    read -r digest size diff <<<"$l"
    diffs+="${diffs:+,}\"sha256:$diff\""
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$digest\",\"size\":$size}"
  done
  config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"$(date -u -d "@$EPOCH" +%FT%TZ)\",\"config\":{\"User\":\"$user\",\"Env\":$env,\"Entrypoint\":$entrypoint,\"Cmd\":$cmd,\"WorkingDir\":\"/\",\"Labels\":{\"org.opencontainers.image.title\":\"$name\",\"org.opencontainers.image.version\":\"$VERSION\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diffs]}}"
  manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$(blob "$config")\",\"size\":${#config}},\"layers\":[$layers]}"
  echo "$(blob "$manifest") ${#manifest}"
}

# blob TEXT: stores TEXT (ASCII) as a blob; prints its digest.
blob() {
  local digest
  digest="$(printf '%s' "$1" | sha256)"
  [ -f "$STORE/blobs/sha256/$digest" ] || {
    printf '%s' "$1" >"$STORE/tmp/blob.$$"
    mv -f "$STORE/tmp/blob.$$" "$STORE/blobs/sha256/$digest"
  }
  echo "$digest"
}

# smoke_test NAME MANIFEST USER PATH COMMAND...: unpacks the image and runs COMMAND in it as USER with
# that PATH (chroot, in a mount namespace of its own with /proc and /dev), once per image digest.
smoke_test() {
  local name="$1" manifest="$2" user="$3" path="$4" root d out rc=0
  shift 4
  [ -f "$STORE/checked/$manifest" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "not root: $name is not test-run (chroot needs root)"
    return 0
  fi
  root="$(mktemp -d "$STORE/tmp/run.XXXXXX")"
  chmod 755 "$root"
  # The manifest's digests: its config first, then its layers in order.
  for d in $(grep -o '"digest":"sha256:[0-9a-f]*"' "$STORE/blobs/sha256/$manifest" | tail -n +2 | cut -d: -f3 | tr -d '"'); do
    tar -xzf "$STORE/blobs/sha256/$d" -C "$root"
  done
  mkdir -p "$root/proc" "$root/dev"
  out="$(unshare --mount --propagation private -- sh -c 'r="$1" u="$2" p="$3"; shift 3
    mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" && exec env -i PATH="$p" LANG=C.UTF-8 /usr/sbin/chroot --userspec="$u" "$r" "$@"' \
    sh "$root" "$user" "$path" "$@" 2>&1)" || rc=$?
  rm -rf "$root"
  [ "$rc" -eq 0 ] || die "$name does not run ($*): exit $rc
$out"
  mkdir -p "$STORE/checked"
  touch "$STORE/checked/$manifest"
}

write_layout() { # NAME=DIGEST:SIZE...
  local entries="" e name rest
  for e in "$@"; do
    name="${e%%=*}" rest="${e#*=}"
    entries+="${entries:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:${rest%%:*}\",\"size\":${rest#*:},\"annotations\":{\"org.opencontainers.image.ref.name\":\"$name:$VERSION\"}}"
  done
  mkdir -p "$LAYOUT"
  ln -sfn "$STORE/blobs" "$LAYOUT/blobs"
  printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
  printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[$entries]}" >"$LAYOUT/index.json.tmp"
  mv -f "$LAYOUT/index.json.tmp" "$LAYOUT/index.json"
}

main() {
  local push=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --push) push="${2:?--push needs a registry URL}"; shift 2 ;;
      *) die "unknown argument $1 (usage: images/build.sh [--push URL])" ;;
    esac
  done
  [ -f "$JAR" ] || die "no $JAR: run \`make build\` first"
  command -v jlink >/dev/null || die "jlink (a JDK 17) is needed to make the images' Java runtime"
  local java_home java_version
  java_home="$(dirname "$(dirname "$(readlink -f "$(command -v jlink)")")")"
  java_version="$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"$/\1/p' "$java_home/release")"
  case "$java_version" in 17.*) ;; *) die "jlink is from Java ${java_version:-?} ($java_home); the images need a JDK 17" ;; esac

  mkdir -p "$STORE/blobs/sha256" "$STORE/layers" "$STORE/tmp" "$CACHE"
  exec 8>"$CACHE/.images.lock"
  flock 8 # one build at a time on this machine: the stores and the Debian folder are shared
  find "$STORE/tmp" -mindepth 1 -maxdepth 1 -exec rm -rf {} +

  CRIU_PREFIX="$(STASIS_CRIU_PREFIX_ONLY=1 STASIS_CRIU_FORCE_PREFIX=1 "$REPO_ROOT/scripts/install-criu.sh")"
  debian_ready
  local base java tools criu jar counter
  base="$(layer base "$(debian_files "${BASE_PKGS[@]}")" fill_base)"
  java="$(layer java "$java_version $JAVA_MODULES" fill_java)"
  tools="$(layer agent-tools "$(debian_files "${AGENT_PKGS[@]}")
$(sha256 "$REPO_ROOT/images/criu-host" "$REPO_ROOT/images/install-host-criu")" fill_agent_tools)"
  criu="$(layer criu "$(sha256 "$CRIU_PREFIX/.stasis-packages")" fill_criu)"
  jar="$(layer jar "$(sha256 "$JAR")" fill_jar)"
  counter="$(layer counter "$(debian_files "${COUNTER_PKGS[@]}")" fill_counter)"

  local java_cmd env operator agent demo java_options
  mapfile -t java_options < <(grep -v '^#' "$REPO_ROOT/images/java-options")
  java_cmd="$(json_array /opt/java/bin/java "${java_options[@]}" -jar /opt/stasis/stasis.jar)"
  env="$(json_array "PATH=$PATH_IN_IMAGE" LANG=C.UTF-8 JAVA_HOME=/opt/java)"
  operator="$(image stasis-operator 65532:65532 "$java_cmd" '["operator"]' "$env" "$base" "$java" "$jar")"
  agent="$(image stasis-agent 0:0 "$java_cmd" '["agent"]' \
    "$(json_array "PATH=/opt/stasis/bin:$PATH_IN_IMAGE" LANG=C.UTF-8 JAVA_HOME=/opt/java STASIS_IMAGE_CRIU=/opt/stasis/criu)" \
    "$base" "$java" "$tools" "$criu" "$jar")"
  # Root, as most images run: CRIU can checkpoint it also where root lacks CAP_SYS_RESOURCE (as on
  # these development machines), which it needs to read another user's resource limits.
  demo="$(image stasis-counter 0:0 "$(json_array /bin/sh -c "$COUNTER_LOOP")" '[]' \
    "$(json_array PATH=/bin)" "$counter")"

  local criu_in_image="/opt/stasis/criu/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path /opt/stasis/criu/usr/lib/x86_64-linux-gnu /opt/stasis/criu/usr/sbin/criu"
  smoke_test stasis-operator "${operator%% *}" 65532:65532 "$PATH_IN_IMAGE" /opt/java/bin/java -jar /opt/stasis/stasis.jar --help
  smoke_test stasis-agent "${agent%% *}" 0:0 "/opt/stasis/bin:$PATH_IN_IMAGE" /bin/sh -c "set -e; /opt/java/bin/java -jar /opt/stasis/stasis.jar --help >/dev/null
    nsenter --version; mkfifo --version >/dev/null; renice --version; nice -n 1 true; $criu_in_image --version
    install-host-criu /tmp/host-criu && test -x /tmp/host-criu/usr/sbin/criu"
  smoke_test stasis-counter "${demo%% *}" 0:0 /bin /bin/sh -c 'sleep 0; echo $((1+1))'

  write_layout "stasis-operator=${operator/ /:}" "stasis-agent=${agent/ /:}" "stasis-counter=${demo/ /:}"
  flock -u 8
  log "images in $LAYOUT: stasis-operator, stasis-agent, stasis-counter ($VERSION)"
  if [ -n "$push" ]; then
    java -cp "$JAR" dev.stasis.cli.PushImages "$LAYOUT" "$push"
  fi
}

main "$@"
