# shellcheck shell=bash disable=SC2034 # the variables are used by the sourcing scripts
# Shared settings for the lab scripts (sourced by up.sh, down.sh, flake.sh, ...).
# Only defines variables and functions: nothing here touches the machine.

LAB_DIR=${LAB_DIR:-/var/lib/avalanche-lab}
LAB_HOSTS=${LAB_HOSTS:-"opi01 opi02 opi03"}
LAB_KERNEL_SECONDS=${LAB_KERNEL_SECONDS:-3}
LAB_HOST_SECONDS=${LAB_HOST_SECONDS:-0}
LAB_ACTIVATION_SECONDS=${LAB_ACTIVATION_SECONDS:-0}
# Evaluation cost per host configuration (stands for nixpkgs' module system):
# CPU seconds and MiB held by the Nix evaluator each time a toplevel is evaluated.
LAB_EVAL_SECONDS=${LAB_EVAL_SECONDS:-0}
LAB_EVAL_MIB=${LAB_EVAL_MIB:-0}

# The lab network. hawk is the root namespace; calypso .2; opiNN .(10+NN), opi01..opi30.
LAB_BRIDGE=avl0
LAB_NET_PREFIX=10.213.77
LAB_HAWK_ADDR=$LAB_NET_PREFIX.1
LAB_CALYPSO_ADDR=$LAB_NET_PREFIX.2
LAB_CACHE_PORT=5000
# Every opi name the lab may ever create: down.sh sweeps all of them, whatever
# LAB_HOSTS said when the lab came up. Containers = the opis and calypso.
LAB_MAX_HOSTS=30
LAB_ALL_HOSTS=$(for ((n = 1; n <= LAB_MAX_HOSTS; n++)); do printf 'opi%02d ' "$n"; done)
LAB_ALL_HOSTS=${LAB_ALL_HOSTS% }
LAB_ALL_CONTAINERS="calypso $LAB_ALL_HOSTS"
# Remembers which LAB_DIR the running lab uses, so down.sh with another
# LAB_DIR still stops the old lab (its cache server holds port 5000).
LAB_MARKER=/run/avalanche-lab.dir
# One lab per machine: whoever brings it up holds this lock (flock).
LAB_LOCK=/run/avalanche-lab.lock
LAB_GCROOT_DIR=/nix/var/nix/gcroots/arm-cache
# The orchestrator's (non-root) user, on hawk and on calypso.
LAB_USER=avl
# The containers' Nix build users: nixbldN = this + N, group nixbld = this
# (rootfs.sh; clear of Debian's system uids and NixOS's 30000 + N).
LAB_BUILD_UID_BASE=37000
LAB_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO=$(cd "$LAB_SCRIPTS/../.." && pwd)

lab_die() {
  echo "lab: error: $*" >&2
  exit 1
}

lab_log() {
  echo "lab: $*" >&2
}

# lab_is_opi NAME: one of opi01..opi30 (LAB_MAX_HOSTS).
lab_is_opi() {
  [[ "$1" =~ ^opi[0-9][0-9]$ ]] && ((10#${1#opi} >= 1 && 10#${1#opi} <= LAB_MAX_HOSTS))
}

# lab_check_hosts: LAB_HOSTS must be distinct names opi01..opi30.
lab_check_hosts() {
  local h seen=" "
  [[ -n "${LAB_HOSTS// /}" ]] || lab_die "LAB_HOSTS is empty"
  for h in $LAB_HOSTS; do
    lab_is_opi "$h" || lab_die "LAB_HOSTS: '$h' is not one of opi01..opi$LAB_MAX_HOSTS"
    [[ "$seen" != *" $h "* ]] || lab_die "LAB_HOSTS: '$h' is listed twice"
    seen+="$h "
  done
}

lab_check_seconds() {
  local name
  for name in LAB_KERNEL_SECONDS LAB_HOST_SECONDS LAB_ACTIVATION_SECONDS LAB_EVAL_SECONDS LAB_EVAL_MIB; do
    [[ "${!name}" =~ ^[0-9]+$ ]] || lab_die "$name must be a whole number of seconds, got '${!name}'"
  done
}

# lab_addr opiNN|calypso|hawk -> its lab address
lab_addr() {
  case "$1" in
    hawk) echo "$LAB_HAWK_ADDR" ;;
    calypso) echo "$LAB_CALYPSO_ADDR" ;;
    *) lab_is_opi "$1" || lab_die "no lab host '$1'"
      echo "$LAB_NET_PREFIX.$((10 + 10#${1#opi}))" ;;
  esac
}

# lab_alive PID: running and not a zombie (kill -0 succeeds on zombies, and
# this machine's PID 1 may be slow to reap them).
lab_alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# lab_pid_from FILE NAME: the PID in FILE if that process still runs NAME (a
# stale file after a reboot must not make us kill an unrelated process).
lab_pid_from() {
  local pid
  [[ -f "$1" ]] || return 1
  pid=$(<"$1")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  lab_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  echo "$pid"
}

# lab_stop PID...: TERM, a bounded wait (LAB_STOP_SECONDS, 3), then KILL.
lab_stop() {
  (($#)) || return 0
  local pid deadline left
  kill -TERM "$@" 2>/dev/null || true
  deadline=$((SECONDS + ${LAB_STOP_SECONDS:-3}))
  while :; do
    left=()
    for pid in "$@"; do lab_alive "$pid" && left+=("$pid"); done
    ((${#left[@]})) || return 0
    ((SECONDS < deadline)) || break
    sleep 0.05
  done
  kill -KILL "${left[@]}" 2>/dev/null || true
  deadline=$((SECONDS + 2))
  for pid in "${left[@]}"; do
    while lab_alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
  done
}

# --- containers ---------------------------------------------------------------
# $LAB_DIR/NAME/: root/ (the overlay mount), upper/, work/, supervisor.pid,
# nspawn.pid, cgroups (the cgroup directories the host runs in), console.log.

# lab_leader NAME: PID (in this namespace) of the container's systemd, PID 1
# inside. Fails when the container is not running.
lab_leader() {
  local unified pid
  unified=$(grep -m1 '^unified ' "$LAB_DIR/$1/cgroups" 2>/dev/null | cut -d' ' -f2-) || return 1
  [[ -n "$unified" ]] || return 1
  pid=$(head -n1 "$unified/payload/init.scope/cgroup.procs" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && lab_alive "$pid" || return 1
  echo "$pid"
}

# lab_in NAME CMD...: run CMD as root inside the container (all its namespaces).
lab_in() {
  local leader
  leader=$(lab_leader "$1") || lab_die "$1 is not running"
  shift
  nsenter -t "$leader" -m -u -i -n -p -- "$@"
}

# lab_start_container NAME: the supervisor (boot.sh) in its own session.
lab_start_container() {
  local d=$LAB_DIR/$1
  setsid bash "$LAB_SCRIPTS/boot.sh" "$1" </dev/null >>"$d/console.log" 2>&1 9>&- &
  echo $! >"$d/supervisor.pid"
}

# lab_system_state NAME: systemctl is-system-running inside (exit 1 when
# degraded: never under pipefail).
lab_system_state() {
  local leader
  leader=$(lab_leader "$1") || { echo down; return 0; }
  timeout 5 nsenter -t "$leader" -m -u -i -n -p -- systemctl is-system-running 2>/dev/null || true
}

# lab_ssh_banner ADDR: succeeds when an SSH server answers there (its banner,
# not just an open port).
lab_ssh_banner() {
  # shellcheck disable=SC2016 # $1 expands in the inner bash
  [[ "$(timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/22" && head -c 4 <&3' _ "$1" 2>/dev/null || true)" == SSH- ]]
}

# lab_wait_container NAME SECONDS: until its system is running (or degraded)
# and its sshd answers.
lab_wait_container() {
  local name=$1 deadline=$((SECONDS + $2)) state addr
  addr=$(lab_addr "$name")
  while :; do
    state=$(lab_system_state "$name")
    if [[ "$state" == running || "$state" == degraded ]] && lab_ssh_banner "$addr"; then
      return 0
    fi
    if ((SECONDS > deadline)); then
      tail -n 30 "$LAB_DIR/$name/console.log" >&2 || true
      lab_die "$name did not come up within $2 s (system state: ${state:-none})"
    fi
    sleep 0.2
  done
}

# --- hawk's services ----------------------------------------------------------

# lab_start_cache: the HTTP binary cache on hawk's lab address, serving hawk's store.
lab_start_cache() {
  setsid env NIX_REMOTE=daemon NIX_CONF_DIR="$LAB_DIR/hawk/etc-nix" XDG_CACHE_HOME="$LAB_DIR/hawk/cache-server-xdg" \
    node "$LAB_SCRIPTS/cache-server.mjs" \
    --listen "$LAB_HAWK_ADDR" --port "$LAB_CACHE_PORT" \
    --secret-key "$LAB_DIR/hawk/cache-priv-key.pem" \
    --access-log "$LAB_DIR/cache-access.log" </dev/null >>"$LAB_DIR/cache-server.log" 2>&1 9>&- &
  echo $! >"$LAB_DIR/cache-server.pid"
}

# lab_start_hawk_sshd: hawk's sshd on its lab address only (calypso reaches avl@hawk).
lab_start_hawk_sshd() {
  setsid /usr/sbin/sshd -D -f "$LAB_DIR/hawk-sshd/sshd_config" -E "$LAB_DIR/hawk-sshd/sshd.log" \
    </dev/null >/dev/null 2>&1 9>&- &
  echo $! >"$LAB_DIR/hawk-sshd/sshd.pid"
}

# lab_start_hawk_ns: hawk's namespaces (hawk-ns.sh: hostname hawk, its own
# /run, system profile and deploy state), held by a process in its own
# session without the lab lock's descriptor; its PID in $LAB_DIR/hawk/ns.pid.
# Started before the containers' namespaces and mounts exist, so that it
# holds no copy of them.
lab_start_hawk_ns() {
  setsid unshare -m -u --propagation private -- bash "$LAB_SCRIPTS/hawk-ns.sh" </dev/null >>"$LAB_DIR/hawk/ns.log" 2>&1 9>&- &
  echo $! >"$LAB_DIR/hawk/ns.pid"
}

# lab_hawk_ns_pid: the PID holding hawk's namespaces, once they are made.
lab_hawk_ns_pid() {
  local pid
  pid=$(lab_pid_from "$LAB_DIR/hawk/ns.pid" 'sleep infinity') && [[ -e "/proc/$pid/root/run/avalanche-lab-hawk" ]] && echo "$pid"
}

# lab_start_hawk_daemon: hawk's nix-daemon (this machine's /nix) with hawk's
# settings, in its own session, without the lab lock's descriptor (9). Never
# with the caller's NIX_REMOTE (env.sh sets it to "daemon" for hawk's clients):
# a daemon whose store is the daemon talks to itself and hangs.
lab_start_hawk_daemon() {
  setsid env -u NIX_REMOTE -u NIX_CONFIG NIX_CONF_DIR="$LAB_DIR/hawk/etc-nix" nix-daemon </dev/null >>"$LAB_DIR/hawk/nix-daemon.log" 2>&1 9>&- &
  echo $! >"$LAB_DIR/hawk/nix-daemon.pid"
}
