#!/usr/bin/env bash
# down.sh — tear the lab down. Idempotent, safe when nothing is up, bounded
# (~15 s at worst, ~3 s normally). Powers the containers off (SIGTERM to their
# supervisors), then kills whatever is left in their cgroups and namespaces,
# stops hawk's daemons by their recorded PIDs, unmounts the overlay roots,
# removes the namespaces, the bridge, the lab's GC roots on hawk and $LAB_DIR.
# Takes the lab lock unless LAB_LOCK_HELD=1 (the caller holds it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

[[ $EUID -eq 0 ]] || lab_die "down.sh must run as root"
[[ "$LAB_DIR" == /* && "$LAB_DIR" != / ]] || lab_die "LAB_DIR must be an absolute path, got '$LAB_DIR'"

if [[ "${LAB_LOCK_HELD:-}" != 1 ]]; then
  exec 9>>"$LAB_LOCK"
  flock -w "${LAB_LOCK_WAIT:-60}" 9 || lab_die "the lab lock $LAB_LOCK is held by a running lab session: not tearing its lab down"
fi

# The lab that is up may have used another LAB_DIR: tear that one down too.
dirs=("$LAB_DIR")
if [[ -f "$LAB_MARKER" ]]; then
  other=$(<"$LAB_MARKER")
  [[ "$other" == /* && "$other" != / && "$other" != "$LAB_DIR" ]] && dirs+=("$other")
fi

# session_pids PID: PID and every process in its session (nix-daemon workers,
# sshd sessions, the cache server's children).
session_pids() {
  local sid
  sid=$(ps -o sid= -p "$1" 2>/dev/null | tr -d ' ') || return 0
  [[ "$sid" == "$1" ]] || { echo "$1"; return 0; }
  ps -e -o pid=,sid= | awk -v s="$sid" '$2 == s {print $1}'
}

# cgroup_pids DIR...: every pid in those cgroup trees.
cgroup_pids() {
  local dir
  for dir in "$@"; do
    [[ -d "$dir" ]] && find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

# 1. Containers: orderly poweroff through their supervisors, all at once.
declare -A mntns=()
supervisors=()
cgroup_dirs=()
for dir in "${dirs[@]}"; do
  for h in $LAB_ALL_CONTAINERS; do
    d=$dir/$h
    [[ -d "$d" ]] || continue
    if leader=$(LAB_DIR=$dir lab_leader "$h"); then
      ns=$(readlink "/proc/$leader/ns/mnt" 2>/dev/null) && mntns[$ns]=1
    fi
    pid=$(lab_pid_from "$d/supervisor.pid" boot.sh) && supervisors+=("$pid")
    if [[ -f "$d/cgroups" ]]; then
      while read -r _ cg; do cgroup_dirs+=("$cg"); done <"$d/cgroups"
    fi
  done
done
# hawk's namespaces (hawk-ns.sh): what runs in them (a deploy's detached
# watchdog) goes with the containers' strays in step 4.
for dir in "${dirs[@]}"; do
  if pid=$(lab_pid_from "$dir/hawk/ns.pid" 'sleep infinity'); then
    ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) && mntns[$ns]=1
  fi
done
if ((${#supervisors[@]})); then
  LAB_STOP_SECONDS=10 lab_stop "${supervisors[@]}"
fi

# 2. Whatever is left in the containers' cgroups (a power cut), then the cgroups.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  mapfile -t left < <(cgroup_pids "${cgroup_dirs[@]}")
  ((${#left[@]})) || break
  for cg in "${cgroup_dirs[@]}"; do
    [[ -w "$cg/cgroup.kill" ]] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
  done
  kill -KILL "${left[@]}" 2>/dev/null || true
  sleep 0.2
done
for cg in "${cgroup_dirs[@]}"; do
  [[ -d "$cg" ]] || continue
  find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rmdir "$(dirname "$cg")" 2>/dev/null || true # …/avalanche-lab, when empty
  [[ -d "$cg" ]] && lab_log "warning: could not remove cgroup $cg"
done

# 3. hawk's daemons, by their recorded PIDs (and their sessions).
pids=()
for dir in "${dirs[@]}"; do
  for spec in "hawk/nix-daemon.pid:nix-daemon" "hawk-sshd/sshd.pid:sshd" "cache-server.pid:cache-server.mjs"; do
    if pid=$(lab_pid_from "$dir/${spec%%:*}" "${spec#*:}"); then
      mapfile -t -O "${#pids[@]}" pids < <(session_pids "$pid")
    fi
  done
done
lab_stop "${pids[@]}"

# 4. Anything else still in a lab network namespace, a container's or hawk's
#    mount namespace (ssh sessions, nsenter'd commands, hawk's holder and its
#    deploys' watchdogs), then the namespaces.
for h in $LAB_ALL_CONTAINERS; do
  [[ -e /run/netns/$h ]] || continue
  mapfile -t ns_pids < <(ip netns pids "$h" 2>/dev/null || true)
  lab_stop "${ns_pids[@]}"
done
if ((${#mntns[@]})); then
  stray=()
  for p in /proc/[0-9]*; do
    ns=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
    [[ -n "${mntns[$ns]:-}" ]] && stray+=("${p#/proc/}")
  done
  lab_stop "${stray[@]}"
fi

# 5. The overlay roots (by their source name, whichever LAB_DIR they are in).
lab_overlays() {
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break
         if ($(i+1) == "overlay" && $(i+2) ~ /^avalanche-lab-/) print $5 }' /proc/self/mountinfo
}
for _ in 1 2 3; do
  mapfile -t roots < <(lab_overlays)
  ((${#roots[@]})) || break
  for r in "${roots[@]}"; do
    umount "$r" 2>/dev/null || { sleep 0.5; umount "$r" 2>/dev/null; } || umount -l "$r" 2>/dev/null || true
  done
done
lab_overlays | sed 's/^/lab: warning: still mounted: /' >&2

# 6. Namespaces, the bridge, any veth left in the root namespace.
for h in $LAB_ALL_CONTAINERS; do
  [[ -e /run/netns/$h ]] || continue
  ip netns del "$h" 2>/dev/null || true
  [[ -e /run/netns/$h ]] && lab_log "warning: could not delete namespace $h"
done
ip link del "$LAB_BRIDGE" 2>/dev/null || true
while read -r link; do
  if [[ -n "$link" ]]; then ip link del "$link" 2>/dev/null || true; fi
done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^avl-' || true)

# 7. hawk's state outside $LAB_DIR: the daemon socket it created, the GC roots.
for dir in "${dirs[@]}"; do
  [[ -f "$dir/hawk/daemon-socket-created" ]] && rm -f /nix/var/nix/daemon-socket/socket
  # The mount point of hawk's deploy state (its namespaces are gone: empty here).
  [[ -f "$dir/hawk/target-state-dir-created" ]] && { rmdir /var/lib/avalanche-deploy 2>/dev/null || lab_log "warning: /var/lib/avalanche-deploy is not empty: left in place"; }
  if [[ -f "$dir/hawk/gcroot-dir-created" ]]; then
    # The directory was the lab's: every root in it is (symlinks only: rm does not follow them).
    rm -rf "$LAB_GCROOT_DIR"
    continue
  fi
  if [[ -f "$dir/hawk/gcroot-dir-owner" && -d "$LAB_GCROOT_DIR" ]]; then
    chown "$(<"$dir/hawk/gcroot-dir-owner")" "$LAB_GCROOT_DIR" || true
  fi
  if [[ -f "$dir/hawk/post-build-hook.log" ]]; then
    while read -r path; do
      link=$LAB_GCROOT_DIR/${path##*/}
      [[ -L "$link" && "$(readlink "$link")" == "$path" ]] && rm -f "$link"
    done < <(awk '$2 == "pinned" {print $3}' "$dir/hawk/post-build-hook.log")
  fi
done

# 7b. The inotify limit up.sh raised for many containers.
for dir in "${dirs[@]}"; do
  if [[ -f "$dir/inotify-instances-before" ]]; then
    cat "$dir/inotify-instances-before" >/proc/sys/fs/inotify/max_user_instances || true
  fi
done

# 8. The lab's files. Only a directory that up.sh made (it holds lab-id) or an
#    empty one: a mistyped LAB_DIR must not cost someone their files.
rc=0
for dir in "${dirs[@]}"; do
  [[ -e "$dir" ]] || continue
  if [[ -e "$dir/lab-id" || -z "$(ls -A "$dir" 2>/dev/null)" ]]; then
    rm -rf --one-file-system "$dir"
  else
    lab_log "error: $dir exists but is not a lab directory (no lab-id): not removing it"
    rc=1
  fi
done
rm -f "$LAB_MARKER"
exit "$rc"
