#!/usr/bin/env bash
# hawk-ns.sh — hawk's view of this machine as a deploy target. up.sh runs it
# in new mount and UTS namespaces (`unshare -m -u`); it makes that view and
# then holds the namespaces (`sleep infinity`, PID in $LAB_DIR/hawk/ns.pid)
# until down.sh stops it. as-coordinator.sh hawk enters them (nsenter -m -u),
# so the orchestrator on hawk runs on a machine named hawk whose system
# state is the lab's, never this machine's:
#   hostname             hawk (the machine's own stays)
#   /run                 overlay: the machine's /run below, writes (current-system,
#                        the deploy's reboot markers, sudo's timestamps) in
#                        $LAB_DIR/hawk/root/run
#   /nix/var/nix/profiles overlay: writes (the system profile and its
#                        generations) in $LAB_DIR/hawk/root/nix/var/nix/profiles
#   /var/lib/avalanche-deploy  bind of $LAB_DIR/hawk/root/var/lib/avalanche-deploy
#                        (the deploy's canaries and rollback log; up.sh makes the
#                        mount point when the machine has none, down.sh removes it)
#   /etc/sudoers         $LAB_DIR/hawk/etc/sudoers: avl NOPASSWD, as the fleet's
#                        deploy users have (the machine's sudoers is untouched)
#   /etc/hosts           the machine's, plus hawk (sudo resolves its hostname)
#   /run/avalanche-lab-hawk  marks the view: the lab's nixos-rebuild activates
#                        "locally" only here (or in a container)
# So $LAB_DIR/hawk/root holds what a deploy changed on hawk, as a container's
# root does (test/e2e/lab.ts hostPath). There is no systemd here: the lab's
# hawk toplevel activates without it (flake.sh), the deploy's scripts fall
# back to a detached session, and the lab inventory skips hawk's system state.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

root=$LAB_DIR/hawk/root
work=$LAB_DIR/hawk/ns-work
hostname hawk
mount -t overlay avalanche-lab-hawk-run -o "lowerdir=/run,upperdir=$root/run,workdir=$work/run" /run
mount -t overlay avalanche-lab-hawk-profiles \
  -o "lowerdir=/nix/var/nix/profiles,upperdir=$root/nix/var/nix/profiles,workdir=$work/profiles" /nix/var/nix/profiles
mount --bind "$root/var/lib/avalanche-deploy" /var/lib/avalanche-deploy
mount --bind "$LAB_DIR/hawk/etc/sudoers" /etc/sudoers
mount --bind "$LAB_DIR/hawk/etc/hosts" /etc/hosts
: >/run/avalanche-lab-hawk
exec sleep infinity
