#!/usr/bin/env bash
# fault.sh — inject and heal the lab's faults, for the fault-injection tests.
#
#   fault.sh sshd-down opiNN | sshd-up opiNN    stop / start that host's sshd
#   fault.sh link-down opiNN | link-up opiNN    partition the host (SYNs dropped silently)
#   fault.sh cache-down | cache-up              stop / start the cache's HTTP server
#
# Every "up" waits (bounded) until the service answers again.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

usage() {
  sed -n '3,8p' "$0" >&2
  exit 2
}

host_arg() {
  [[ "${1:-}" =~ ^opi0[1-9]$ && -d "$LAB_DIR/$1" ]] || lab_die "no lab host '${1:-}'"
}

kill_pidfile() {
  local file=$1 pid
  [[ -f "$file" ]] || return 0
  pid=$(<"$file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]] || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# wait_port ADDR PORT: until something accepts connections there (10 s at most).
wait_port() {
  for _ in $(seq 100); do
    # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  lab_die "nothing answers on $1:$2"
}

case "${1:-}" in
  sshd-down) host_arg "${2:-}"; kill_pidfile "$LAB_DIR/$2/sshd.pid" ;;
  sshd-up) host_arg "${2:-}"; lab_start_sshd "$2"; wait_port "$(lab_addr "$2")" 22 ;;
  link-down) host_arg "${2:-}"; ip link set "avl-$2" down ;;
  link-up) host_arg "${2:-}"; ip link set "avl-$2" up; wait_port "$(lab_addr "$2")" 22 ;;
  cache-down) kill_pidfile "$LAB_DIR/cache-server.pid" ;;
  cache-up) lab_start_cache; wait_port "$LAB_HAWK_ADDR" "$LAB_CACHE_PORT" ;;
  *) usage ;;
esac
