#!/usr/bin/env bash
# boot.sh NAME — the supervisor of one lab host's container (started by up.sh
# and fault.sh through lab_start_container, in its own session).
#
# Moves itself into the host's own cgroup subtree (…/avalanche-lab/NAME in each
# hierarchy, below where it was started), then boots the host's overlay root
# with systemd-nspawn (systemd as PID 1, the host's network namespace), and
# boots it again when nspawn exits 133 (an in-container reboot). SIGTERM =
# orderly poweroff: forwarded to nspawn, which asks the container's systemd to
# shut down; the supervisor exits when nspawn does.
#
# Extra nspawn arguments (bind mounts) come from $LAB_DIR/NAME/nspawn.args,
# one per line. The cgroup directories are written to $LAB_DIR/NAME/cgroups
# ("<hierarchy> <dir>" per line) for lab_leader, the memory figures and down.sh.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

name=${1:-}
d=$LAB_DIR/$name
{ [[ "$name" == calypso ]] || lab_is_opi "$name"; } && [[ -d "$d/root" ]] || lab_die "boot.sh: no lab host '$name'"

# --- own cgroup subtree -------------------------------------------------------
# With --keep-unit, nspawn puts its payload/ and supervisor/ cgroups next to
# itself: without a subtree of our own, every container would share them.
mount_of() { # fstype [option] -> mount point
  awk -v t="$1" -v o="${2:-}" '{
    for (i = 7; i <= NF; i++) if ($i == "-") break
    if ($(i+1) == t && (o == "" || index("," $(i+3) ",", "," o ","))) { print $5; exit }
  }' /proc/self/mountinfo
}
cgroups=()
# Read once, before moving: the file reflects every move at once.
mapfile -t where </proc/self/cgroup
for line in "${where[@]}"; do
  IFS=: read -r _ controllers path <<<"$line"
  case "$controllers" in
    "") kind=unified; mp=$(mount_of cgroup2) ;;
    name=systemd) kind=systemd; mp=$(mount_of cgroup name=systemd) ;;
    memory) kind=memory; mp=$(mount_of cgroup memory) ;;
    *) continue ;;
  esac
  [[ -n "$mp" ]] || continue
  dir=${mp}${path%/}/avalanche-lab/$name
  mkdir -p "$dir" && echo $$ >"$dir/cgroup.procs" || lab_die "cannot use cgroup $dir"
  cgroups+=("$kind $dir")
done
printf '%s\n' "${cgroups[@]}" | grep -q '^unified ' || lab_die "no cgroup2 hierarchy (systemd-nspawn needs one)"
printf '%s\n' "${cgroups[@]}" >"$d/cgroups"

extra=()
[[ -f "$d/nspawn.args" ]] && mapfile -t extra <"$d/nspawn.args"

stopping=0
child=
on_signal() {
  stopping=1
  [[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null
}
trap on_signal TERM INT
trap '' HUP

rc=0
while :; do
  echo "lab: $(date -Is) booting $name"
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --boot --quiet -D "$d/root" -M "$name" \
    --register=no --keep-unit --network-namespace-path="/run/netns/$name" --console=read-only \
    "${extra[@]}" &
  child=$!
  echo "$child" >"$d/nspawn.pid"
  while :; do
    wait "$child"
    rc=$?
    # A trapped signal interrupts wait; nspawn itself may still be shutting down.
    lab_alive "$child" || break
  done
  child=
  echo "lab: $(date -Is) $name: systemd-nspawn exited with $rc"
  ((rc == 133 && !stopping)) || break
done
rm -f "$d/nspawn.pid"
exit "$rc"
