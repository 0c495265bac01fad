#!/usr/bin/env bash
# down.sh — tear the lab down. Idempotent, safe when nothing is up, bounded
# (a few seconds at most). Stops processes by the PIDs the lab recorded, then
# anything still inside a lab namespace, removes the namespaces, the bridge,
# the lab's GC roots on hawk and $LAB_DIR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

[[ $EUID -eq 0 ]] || lab_die "down.sh must run as root"
[[ "$LAB_DIR" == /* && "$LAB_DIR" != / ]] || lab_die "LAB_DIR must be an absolute path, got '$LAB_DIR'"

# The lab that is up may have used another LAB_DIR: tear that one down too.
dirs=("$LAB_DIR")
if [[ -f "$LAB_MARKER" ]]; then
  other=$(<"$LAB_MARKER")
  [[ "$other" == /* && "$other" != / && "$other" != "$LAB_DIR" ]] && dirs+=("$other")
fi

# alive PID: running and not a zombie (kill -0 succeeds on zombies, and this
# machine's PID 1 may be slow to reap them).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# pid_from FILE NAME: the PID in FILE if that process still runs NAME (a stale
# file after a reboot must not make us kill an unrelated process).
pid_from() {
  local pid
  [[ -f "$1" ]] || return 1
  pid=$(<"$1")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  echo "$pid"
}

# stop PID...: TERM, a bounded wait, then KILL.
stop() {
  (($#)) || return 0
  local pid deadline left
  kill -TERM "$@" 2>/dev/null || true
  deadline=$((SECONDS + 3))
  while :; do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    ((${#left[@]})) || return 0
    ((SECONDS < deadline)) || break
    sleep 0.05
  done
  kill -KILL "${left[@]}" 2>/dev/null || true
  deadline=$((SECONDS + 2))
  for pid in "${left[@]}"; do
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
  done
}

# 1. Processes the lab recorded: sshd, holders, the cache server.
pids=()
for dir in "${dirs[@]}"; do
  for h in $LAB_ALL_HOSTS; do
    pid=$(pid_from "$dir/$h/sshd.pid" sshd) && pids+=("$pid")
    pid=$(pid_from "$dir/$h/holder.pid" sleep) && pids+=("$pid")
  done
  pid=$(pid_from "$dir/cache-server.pid" cache-server.mjs) && pids+=("$pid")
done
stop "${pids[@]}"

# 2. Whatever else still runs in a lab namespace (ssh sessions, nix builds,
#    activations), then the namespaces themselves.
for h in $LAB_ALL_HOSTS; do
  [[ -e /run/netns/$h ]] || continue
  mapfile -t ns_pids < <(ip netns pids "$h" 2>/dev/null || true)
  stop "${ns_pids[@]}"
  ip netns del "$h" 2>/dev/null || true
  [[ -e /run/netns/$h ]] && lab_log "warning: could not delete namespace $h"
done

# 3. The bridge and any veth left in the root namespace (deleting a namespace
#    deletes its veth ends, but be thorough).
ip link del "$LAB_BRIDGE" 2>/dev/null || true
while read -r link; do
  if [[ -n "$link" ]]; then ip link del "$link" 2>/dev/null || true; fi
done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^avl-' || true)

# 4. hawk's GC roots that the lab's post-build hook made (listed in its log).
for dir in "${dirs[@]}"; do
  log=$dir/hawk/post-build-hook.log
  [[ -f "$log" ]] || continue
  while read -r path; do
    link=$LAB_GCROOT_DIR/${path##*/}
    [[ -L "$link" && "$(readlink "$link")" == "$path" ]] && rm -f "$link"
  done < <(awk '$2 == "pushed+pinned" {print $3}' "$log")
done
rmdir "$LAB_GCROOT_DIR" 2>/dev/null || true

# 5. The lab's files (root removes the read-only store copies fine). Only a
#    directory that up.sh made (it holds lab-id) or an empty one: a mistyped
#    LAB_DIR must not cost someone their files.
rc=0
for dir in "${dirs[@]}"; do
  [[ -e "$dir" ]] || continue
  if [[ -e "$dir/lab-id" || -z "$(ls -A "$dir" 2>/dev/null)" ]]; then
    rm -rf "$dir"
  else
    lab_log "error: $dir exists but is not a lab directory (no lab-id): not removing it"
    rc=1
  fi
done
rm -f "$LAB_MARKER"
exit "$rc"
