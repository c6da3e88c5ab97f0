# Sourced by scripts that take packages from Debian's archive without touching the system: apt
# reads its own package lists for the suites asked for, `apt-get download` fetches .debs, and
# `dpkg -x` unpacks them into a prefix. Nothing is installed, no system apt state is changed.
#
#   debian_lists <work> <suite>...        private lists for those suites under <work>
#                                         (sets DEBIAN_APT: the apt-get options that use them)
#   debian_unpack <work> <root> <pkg>...  downloads pkg (name, name/suite or name=version) and
#                                         unpacks each into <root>; appends "name version" lines
#                                         to <root>/.stasis-packages
# Callers define log() and die().

debian_lists() {
  local work="$1"
  shift
  mkdir -p "$work/sources" "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  chmod 755 "$work" "$work/debs"
  cat >"$work/sources/stasis.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $*
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  DEBIAN_APT=(
    -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/sources"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null
    -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false
    -o APT::Sandbox::User=root -q)
  log "fetching Debian $* package lists (private, system apt state untouched)"
  apt-get "${DEBIAN_APT[@]}" update >"$work/apt-update.log" 2>&1 ||
    { cat "$work/apt-update.log" >&2; die "apt-get update (private lists for $*) failed"; }
}

debian_unpack() {
  local work="$1" root="$2" deb
  shift 2
  rm -f "$work/debs"/*.deb
  (cd "$work/debs" && apt-get "${DEBIAN_APT[@]}" download "$@") >"$work/apt-download.log" 2>&1 ||
    { cat "$work/apt-download.log" >&2; return 1; }
  mkdir -p "$root"
  for deb in "$work/debs"/*.deb; do
    dpkg -x "$deb" "$root"
    dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$root/.stasis-packages"
  done
}
