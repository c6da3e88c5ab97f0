# Sourced by scripts/control-plane.sh and scripts/node.sh: the local cluster's certificates and
# kubeconfigs. RSA + PKCS#1 ("BEGIN RSA PRIVATE KEY") is what every client, including fabric8's
# kubeconfig parser, understands.
#
#   pki_ca <pki>                                     ca.key + ca.crt, once
#   pki_key <pki> <name>                             <name>.key, once (e.g. the ServiceAccount signer)
#   pki_issue <pki> <name> <subject> <usage> [san]   <name>.crt/.key signed by the CA; usage is
#                                                    serverAuth, clientAuth or both (comma-separated)
#   pki_kubeconfig <file> <server> <pki> <name>      a kubeconfig for https://<server> as <name>.crt

pki_ca() {
  local pki="$1"
  [[ -f "$pki/ca.crt" && -f "$pki/ca.key" ]] && return 0
  mkdir -p "$pki"
  (
    umask 077
    openssl genrsa -traditional -out "$pki/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -sha256 -days 3650 -subj "/CN=stasis-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out "$pki/ca.crt" 2>/dev/null
  )
}

pki_key() {
  [[ -f "$1/$2.key" ]] || (umask 077 && openssl genrsa -traditional -out "$1/$2.key" 2048 2>/dev/null)
}

pki_issue() {
  local pki="$1" name="$2" subject="$3" usage="$4" san="${5:-}"
  [[ -f "$pki/$name.crt" && -f "$pki/$name.key" ]] && return 0
  (
    cd "$pki"
    umask 077
    openssl genrsa -traditional -out "$name.key" 2048 2>/dev/null
    openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr" 2>/dev/null
    {
      echo "basicConstraints=CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$usage"
      [[ -z "$san" ]] || echo "subjectAltName=$san"
    } >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
      -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext" ca.srl
  )
}

pki_kubeconfig() {
  local file="$1" server="$2" pki="$3" name="$4" b64="base64 -w0"
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: stasis-local
  cluster:
    server: https://$server
    certificate-authority-data: $($b64 "$pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $($b64 "$pki/$name.crt")
    client-key-data: $($b64 "$pki/$name.key")
contexts:
- name: stasis-local
  context:
    cluster: stasis-local
    user: $name
    namespace: default
current-context: stasis-local
EOF
  chmod 600 "$file.tmp"
  mv -f "$file.tmp" "$file"
}
