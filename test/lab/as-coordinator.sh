#!/usr/bin/env bash
# as-coordinator.sh hawk|calypso -- ARGV...
#
# Runs ARGV as the orchestrator's user (avl) on a lab coordinator, with that
# coordinator's environment, in the current directory (which must exist there:
# the repository is mounted at the same path on calypso):
#   hawk     this machine in hawk's mount and UTS namespaces (hawk-ns.sh:
#            hostname hawk, its own /run, system profile, deploy state and
#            sudo rule), hawk's Nix settings (env.sh), NIX_REMOTE=daemon,
#            test/lab/bin/bash-era first on PATH
#   calypso  inside the calypso container (nsenter into its root, mount, UTS,
#            net and IPC namespaces; not its PID namespace, so nothing forks,
#            with a /proc of this PID namespace in a private mount namespace),
#            calypso's Nix (its daemon), test/lab/bin/ng first on PATH
# Everything is exec'd: ARGV ends up with this script's PID, so SIGINT and
# SIGTERM sent to it reach ARGV itself. Run as root. Passed through from the
# caller's environment: CI, TERM, COLUMNS, NO_COLOR, FORCE_COLOR, LAB_COORDINATOR.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

usage() {
  echo "usage: as-coordinator.sh hawk|calypso -- ARGV..." >&2
  exit 2
}
(($# >= 3)) && [[ "$2" == -- ]] || usage
coordinator=$1
shift 2
[[ $EUID -eq 0 ]] || lab_die "as-coordinator.sh must run as root"
[[ -f "$LAB_DIR/env.sh" ]] || lab_die "no lab is up in $LAB_DIR"

passed=()
for name in CI TERM COLUMNS NO_COLOR FORCE_COLOR LAB_COORDINATOR; do
  [[ -n "${!name+x}" ]] && passed+=("$name=${!name}")
done
sys_path=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin

case "$coordinator" in
  hawk)
    # shellcheck source=/dev/null
    . "$LAB_DIR/env.sh"
    home=$(getent passwd "$LAB_USER" | cut -d: -f6)
    path=$LAB_REPO/test/lab/bin/bash-era:$sys_path
    # node may live elsewhere on this machine (nvm, /opt): keep it reachable.
    node_dir=$(dirname "$(command -v node)")
    [[ ":$path:" == *":$node_dir:"* ]] || path=$path:$node_dir
    ns=$(lab_hawk_ns_pid) || lab_die "hawk's namespaces (hawk-ns.sh) are not running"
    exec nsenter -t "$ns" -m -u -- setpriv --reuid "$LAB_USER" --regid "$LAB_USER" --init-groups -- \
      env -i -C "$PWD" HOME="$home" USER="$LAB_USER" LOGNAME="$LAB_USER" SHELL=/bin/bash LANG=C.UTF-8 PATH="$path" \
      LAB_DIR="$LAB_DIR" LAB_HOSTS="$LAB_HOSTS" NIX_CONF_DIR="$NIX_CONF_DIR" NIX_REMOTE=daemon \
      XDG_CACHE_HOME="$LAB_DIR/hawk/xdg-cache/$LAB_USER" "${passed[@]}" "$@"
    ;;
  calypso)
    leader=$(lab_leader calypso) || lab_die "calypso is not running"
    # The current directory if calypso has it at the same path (the repository, the shared directory).
    wd=/
    case "$PWD/" in "$LAB_REPO"/* | "$LAB_DIR/shared"/*) wd=$PWD ;; esac
    # -r: calypso's root. No -p (that would fork): a private mount namespace
    # with this PID namespace's /proc instead, so /proc/self (Nix needs it)
    # is the process itself. unshare execs too (no --fork).
    # LAB_LOGIN=1: in calypso's PID namespace as well, as after a login there:
    # a run that activates calypso itself needs it (systemd refuses to start
    # a transient unit for a peer outside its PID namespace: `sudo
    # systemd-run` without --wait fails with "Transport endpoint is not
    # connected"). nsenter forks for it and does not pass signals on: only
    # for runs that are not interrupted (--no-fork keeps ARGV here and puts
    # only its children there, where node cannot start its threads).
    if [[ "${LAB_LOGIN:-}" == 1 ]]; then
      enter=(nsenter -t "$leader" -m -u -n -i -r -p --)
    else
      enter=(nsenter -t "$leader" -m -u -n -i -r -- unshare -m --propagation private --mount-proc --)
    fi
    exec "${enter[@]}" \
      setpriv --reuid "$LAB_USER" --regid "$LAB_USER" --init-groups -- \
      env -i -C "$wd" HOME=/home/avl USER="$LAB_USER" LOGNAME="$LAB_USER" SHELL=/bin/bash LANG=C.UTF-8 \
      PATH="$LAB_REPO/test/lab/bin/ng:$sys_path" LAB_DIR="$LAB_DIR" NIX_REMOTE=daemon "${passed[@]}" "$@"
    ;;
  *) usage ;;
esac
