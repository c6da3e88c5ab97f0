#!/usr/bin/env bash
# Installs the Debian packages the pod checkpoint tests run for real:
#   docker-registry  a real OCI registry (distribution 2.8) the restore tests push checkpoint images to
#   apache2-utils    htpasswd, for that registry's bcrypt password file
#   openssl          the test CAs and TLS certificates of the kubelet double and the registry
#   lua5.1           runs the Argo CD health checks of docs/argocd (Argo CD's Lua is 5.1, gopher-lua)
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail

NEEDS=(docker-registry:docker-registry htpasswd:apache2-utils openssl:openssl lua5.1:lua5.1)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

missing=()
for entry in "${NEEDS[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
echo "install-test-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! as_root apt-get install -y --no-install-recommends "${missing[@]}"; then
  as_root apt-get update
  as_root apt-get install -y --no-install-recommends "${missing[@]}"
fi
