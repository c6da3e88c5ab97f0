# Sourced by scripts/control-plane.sh and scripts/node.sh: daemons they start are recorded in a
# pids file, one line each: "<name> <pid> <absolute binary path>", and stopped by exactly those
# PIDs, never by name. Callers define log().

# A free TCP port on address $1 (default 127.0.0.1), chosen by the kernel (perl-base is Essential
# on Debian, unlike python). Racy in theory; callers notice a daemon that dies instead.
free_port() {
  perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => $ARGV[0], LocalPort => 0)->sockport, "\n"' \
    "${1:-127.0.0.1}"
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

read_pids() { if [[ -f "$1" ]]; then cat "$1"; fi; }

# Ends one recorded process: SIGTERM, $4 seconds of grace (default 10), then SIGKILL.
stop_pid() {
  local name="$1" pid="$2" exe="$3" grace="${4:-10}" i
  if ! is_ours "$pid" "$exe"; then
    log "$name (pid $pid) is not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    is_ours "$pid" "$exe" || break
    sleep 0.1
  done
  if is_ours "$pid" "$exe"; then
    log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do is_ours "$pid" "$exe" || break; sleep 0.1; done
  fi
  log "stopped $name (pid $pid)"
}

# Stops every process of a pids file, the last started first, and removes the file.
stop_pids() {
  local file="$1" name pid exe
  [[ -f "$file" ]] || return 0
  while read -r name pid exe; do
    [[ -n "${pid:-}" ]] && stop_pid "$name" "$pid" "$exe"
  done < <(tac "$file")
  rm -f "$file"
}

# The name of the first process of a pids file that is not running, if any (exit 1 if all run).
first_dead() {
  local name pid exe
  while read -r name pid exe; do
    [[ -n "${pid:-}" ]] || continue
    is_ours "$pid" "$exe" || { echo "$name"; return 0; }
  done < <(read_pids "$1")
  return 1
}
