#!/usr/bin/env bash
# fault.sh — inject and heal the lab's faults, for the fault-injection tests.
#
#   fault.sh sshd-down HOST | sshd-up HOST    stop / start that host's sshd (systemctl in the container)
#   fault.sh link-down HOST | link-up HOST    partition the host (SYNs dropped silently)
#   fault.sh cache-down | cache-up            stop / start the cache's HTTP server on hawk
#   fault.sh reboot HOST                      in-container reboot; back when its system runs again
#   fault.sh poweroff HOST | boot HOST        orderly poweroff / boot it again
#   fault.sh distrust COORD | trust COORD     take the orchestrator's user (avl) out of / back into
#                                             trusted-users of COORD's (hawk|calypso) Nix daemon, restarted
#
# HOST is opiNN or calypso. Every "up" waits (bounded) until the service answers again.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

usage() {
  sed -n '3,12p' "$0" >&2
  exit 2
}

host_arg() {
  { [[ "${1:-}" == calypso ]] || lab_is_opi "${1:-}"; } && [[ -d "$LAB_DIR/${1:-}/root" ]] || lab_die "no lab host '${1:-}'"
}

kill_pidfile() {
  local file=$1 pid
  [[ -f "$file" ]] || return 0
  pid=$(<"$file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    lab_alive "$pid" || return 0
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

# wait_down HOST: until the host's supervisor has exited (20 s at most).
wait_down() {
  local pid
  pid=$(lab_pid_from "$LAB_DIR/$1/supervisor.pid" boot.sh) || return 0
  for _ in $(seq 200); do
    lab_alive "$pid" || return 0
    sleep 0.1
  done
  lab_die "$1 did not power off within 20 s"
}

case "${1:-}" in
  sshd-down) host_arg "${2:-}"; lab_in "$2" systemctl stop ssh.service ;;
  sshd-up) host_arg "${2:-}"; lab_in "$2" systemctl start ssh.service; wait_port "$(lab_addr "$2")" 22 ;;
  link-down) host_arg "${2:-}"; ip link set "avl-$2" down ;;
  link-up) host_arg "${2:-}"; ip link set "avl-$2" up; wait_port "$(lab_addr "$2")" 22 ;;
  cache-down) kill_pidfile "$LAB_DIR/cache-server.pid" ;;
  cache-up) lab_start_cache; wait_port "$LAB_HAWK_ADDR" "$LAB_CACHE_PORT" ;;
  reboot)
    host_arg "${2:-}"
    old=$(lab_leader "$2") || lab_die "$2 is not running"
    lab_in "$2" systemctl reboot
    # The old PID 1 goes away, nspawn exits 133, the supervisor boots it again.
    for _ in $(seq 200); do
      new=$(lab_leader "$2" || true)
      [[ -n "$new" && "$new" != "$old" ]] && break
      sleep 0.1
    done
    [[ -n "${new:-}" && "$new" != "$old" ]] || lab_die "$2 did not reboot within 20 s"
    lab_wait_container "$2" 60
    ;;
  poweroff) host_arg "${2:-}"; lab_in "$2" systemctl poweroff; wait_down "$2" ;;
  boot)
    host_arg "${2:-}"
    if pid=$(lab_pid_from "$LAB_DIR/$2/supervisor.pid" boot.sh); then lab_die "$2 is running (supervisor $pid)"; fi
    lab_start_container "$2"
    lab_wait_container "$2" 60
    ;;
  distrust | trust)
    users="root $LAB_USER"
    [[ "$1" == distrust ]] && users=root
    case "${2:-}" in
      hawk)
        sed -i "s/^trusted-users = .*/trusted-users = $users/" "$LAB_DIR/hawk/etc-nix/nix.conf"
        kill_pidfile "$LAB_DIR/hawk/nix-daemon.pid"
        lab_start_hawk_daemon
        for _ in $(seq 100); do
          NIX_REMOTE=daemon NIX_CONF_DIR="$LAB_DIR/hawk/etc-nix" timeout 5 nix store ping >/dev/null 2>&1 && break
          sleep 0.1
        done
        ;;
      calypso)
        lab_in calypso sed -i "s/^trusted-users = .*/trusted-users = $users/" /etc/nix/nix.conf
        lab_in calypso systemctl restart nix-daemon.service
        ;;
      *) lab_die "$1: no coordinator '${2:-}' (hawk or calypso)" ;;
    esac
    ;;
  *) usage ;;
esac
