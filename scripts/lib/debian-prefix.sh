# Sourced by scripts that take packages from Debian's archive without touching the system: apt
# reads its own package lists for the suites asked for, `apt-get download` fetches .debs, and
# `dpkg -x` unpacks them into a prefix. Nothing is installed, no system apt state is changed.
#
#   debian_lists <work> <suite>...        private lists for those suites under <work>
#                                         (sets DEBIAN_APT: the apt-get options that use them)
#   debian_apt <work> <suite>...          sets DEBIAN_APT for lists debian_lists fetched before,
#                                         without fetching them again
#   debian_unpack <work> <root> <pkg>...  downloads pkg (name, name/suite or name=version) and
#                                         unpacks each into <root>; appends "name version" lines
#                                         to <root>/.stasis-packages
# Callers define log() and die().

debian_lists() {
  debian_apt "$@"
  log "fetching Debian ${*:2} package lists (private, system apt state untouched)"
  apt-get "${DEBIAN_APT[@]}" update >"$1/apt-update.log" 2>&1 ||
    { cat "$1/apt-update.log" >&2; die "apt-get update (private lists for ${*:2}) failed"; }
}

# Suites named *-security live in Debian's security archive, the others in the main one.
debian_apt() {
  local work="$1" suite
  local -a main=() security=()
  shift
  for suite in "$@"; do
    case "$suite" in
      *-security) security+=("$suite") ;;
      *) main+=("$suite") ;;
    esac
  done
  mkdir -p "$work/sources" "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  chmod 755 "$work" "$work/debs"
  : >"$work/sources/stasis.sources"
  if [ ${#main[@]} -gt 0 ]; then debian_stanza debian "${main[@]}" >>"$work/sources/stasis.sources"; fi
  if [ ${#security[@]} -gt 0 ]; then
    debian_stanza debian-security "${security[@]}" >>"$work/sources/stasis.sources"
  fi
  DEBIAN_APT=(
    -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/sources"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null
    -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false
    -o APT::Sandbox::User=root -q)
}

# debian_stanza ARCHIVE SUITE...: a deb822 source for those suites of deb.debian.org/ARCHIVE.
debian_stanza() {
  cat <<EOF
Types: deb
URIs: http://deb.debian.org/$1
Suites: ${*:2}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

EOF
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
