#!/usr/bin/env bash
# rootfs.sh — the lab hosts' root filesystem (Debian 13 "trixie" with systemd,
# Nix 2.26, OpenSSH, sudo, node), built once per machine and cached under
# /var/cache/avalanche-lab/, keyed by a hash of this recipe. Prints the
# template's path on stdout. Run as root (up.sh calls it, under the lab lock).
#
# Two stages, each cached:
#   debootstrap-<key>/  what debootstrap installed (the slow part, ~1 min)
#   rootfs-<key>/       a copy of it prepared as a template: users, sudo,
#                       sshd settings, units; no machine-id, host keys or
#                       hostname (up.sh writes those per host).
# Stale stages (other keys) are removed. The template is only ever used as the
# read-only lower layer of the hosts' overlayfs roots.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

[[ $EUID -eq 0 ]] || lab_die "rootfs.sh must run as root"

SUITE=trixie
MIRROR=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
INCLUDE=systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,sudo,iproute2,procps,ca-certificates,nix-bin,nix-setup-systemd,libdbi-perl,nodejs,hostname
# uids/gids fixed in the template, the same in every host (as on a fleet whose
# users are declared in its configuration).
DEPLOY_UID=7701
AVL_UID=7702
BUILDER_UID=7703

CACHE=/var/cache/avalanche-lab
mkdir -p "$CACHE"

# prepare_template DIR: everything done to the debootstrap copy. Part of the
# cache key (its source text is hashed), so changing it rebuilds the template.
prepare_template() {
  local root=$1
  in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

  # Users. deploy: the deploy user (sudo without a password, as on the fleet);
  # nix-builder: remote builds only (no sudo); avl: the orchestrator's user.
  # '*' (not '!'): no password, but not a "locked" account for sshd.
  in_root groupadd -g "$DEPLOY_UID" deploy
  in_root useradd -u "$DEPLOY_UID" -g deploy -m -d /home/deploy -s /bin/bash -p '*' deploy
  in_root groupadd -g "$AVL_UID" avl
  in_root useradd -u "$AVL_UID" -g avl -m -d /home/avl -s /bin/bash -p '*' avl
  in_root groupadd -r -g "$BUILDER_UID" nix-builder
  in_root useradd -r -u "$BUILDER_UID" -g nix-builder -m -d /var/lib/nix-builder -s /bin/bash -p '*' nix-builder
  local u home
  for u in deploy avl nix-builder; do
    # Debian's nix-daemon socket is for the group nix-users only.
    in_root usermod -a -G nix-users "$u"
    home=$(in_root getent passwd "$u" | cut -d: -f6)
    install -d -m 0700 -o "$(in_root id -u "$u")" -g "$(in_root id -g "$u")" "$root$home/.ssh"
  done
  # Nix's build users get uids of their own (LAB_BUILD_UID_BASE + N, group
  # nixbld = the base): the containers share this machine's kernel without a
  # user namespace, and Nix kills every process of a build user around each
  # build (kill(-1) as that uid). hawk's daemon (this machine's build users, in
  # the root PID namespace) reaches into the containers: with Debian's system
  # uids in both, a build on hawk as nixbld2 (uid 995 here) killed an opi's
  # build as its nixbld1 (995 there), "failed due to signal 9". up.sh checks
  # that the machine's build users stay clear of these.
  local member
  in_root groupmod -g "$LAB_BUILD_UID_BASE" nixbld
  for member in $(in_root getent group nixbld | cut -d: -f4 | tr ',' ' '); do
    in_root usermod -u "$((LAB_BUILD_UID_BASE + ${member#nixbld}))" "$member"
  done
  printf 'deploy ALL=(ALL:ALL) NOPASSWD: ALL\n' >"$root/etc/sudoers.d/deploy"
  chmod 0440 "$root/etc/sudoers.d/deploy"

  # sshd: keys only, logs which key logged in, many parallel connections
  # (builds and deploys), no root logins (the lab inspects hosts with nsenter).
  cat >"$root/etc/ssh/sshd_config.d/avalanche-lab.conf" <<'EOF'
# avalanche-deploy lab host (test/lab/rootfs.sh)
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
MaxStartups 100:30:200
MaxSessions 64
PrintMotd no
EOF
  rm -f "$root"/etc/ssh/ssh_host_*

  # One identity per host, written by up.sh.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id" "$root/etc/hostname"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

  # Units: socket-activated nix-daemon, sshd; nothing that waits for a network
  # or runs apt in the background.
  # Debian also starts nix-daemon.service at boot: only the socket here, as on
  # NixOS. Host keys come from up.sh, so sshd-keygen has nothing to do.
  in_root systemctl enable nix-daemon.socket ssh.service >/dev/null 2>&1
  in_root systemctl disable nix-daemon.service >/dev/null 2>&1
  in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer systemd-networkd-wait-online.service \
    dpkg-db-backup.timer sshd-keygen.service >/dev/null 2>&1
  mkdir -p "$root/var/lib/lab"
  # The lab's bootloader: boots the system profile's default generation, or,
  # when that one does not boot (a toplevel holding lab-boot-fails: flake.sh
  # --boot-falls-back, a kernel that panics), the newest older generation that
  # does, as systemd-boot's boot counting or GRUB's fallback entry would.
  # Logs "<epoch> booted|failed <toplevel>" to /var/lib/lab/boots.log.
  cat >"$root/usr/local/sbin/lab-bootloader" <<'EOF'
#!/bin/sh
# Lab bootloader (avalanche-deploy test/lab/rootfs.sh): see lab-activate-on-boot.service.
set -u
profile=/nix/var/nix/profiles/system
dir=${profile%/*} base=${profile##*/}
default=$(readlink "$profile") || exit 0
n=${default#"$base"-}; n=${n%-link}
mkdir -p /var/lib/lab
for entry in $(ls "$dir" | sed -n "s/^$base-\([0-9][0-9]*\)-link\$/\1/p" | sort -rn); do
  [ "$entry" -le "$n" ] || continue
  toplevel=$(readlink -f "$dir/$base-$entry-link")
  if [ -e "$toplevel/lab-boot-fails" ]; then
    echo "$(date +%s) failed $toplevel" >>/var/lib/lab/boots.log
    echo "lab-bootloader: generation $entry ($toplevel) does not boot: falling back" >&2
    continue
  fi
  echo "$(date +%s) booted $toplevel" >>/var/lib/lab/boots.log
  echo "lab-bootloader: booting generation $entry ($toplevel)" >&2
  exec "$toplevel/bin/switch-to-configuration" lab-boot
done
echo "lab-bootloader: no generation of $profile boots" >&2
exit 1
EOF
  chmod 0755 "$root/usr/local/sbin/lab-bootloader"
  # NixOS activates the booted generation in stage 2: here, the generation the
  # lab bootloader chose, by its switch-to-configuration (the lab flake's) in
  # its lab-boot mode.
  cat >"$root/etc/systemd/system/lab-activate-on-boot.service" <<'EOF'
[Unit]
Description=Lab: boot a generation of the system profile and activate it (bootloader and NixOS's stage 2)
ConditionPathExists=/nix/var/nix/profiles/system

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lab-bootloader

[Install]
WantedBy=multi-user.target
EOF
  in_root systemctl enable lab-activate-on-boot.service >/dev/null 2>&1

  # Smaller and no stale apt state.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

recipe_key() { # stage text... -> 16 hex chars
  printf '%s\n' "$@" | sha256sum | cut -c1-16
}
stage1_key=$(recipe_key v1 "$SUITE" "$MIRROR" "$INCLUDE")
stage2_key=$(recipe_key "$stage1_key" "$DEPLOY_UID $AVL_UID $BUILDER_UID $LAB_BUILD_UID_BASE" "$(declare -f prepare_template)")
stage1=$CACHE/debootstrap-$stage1_key
stage2=$CACHE/rootfs-$stage2_key

# Stale stages of other recipes (nothing uses them: the lab lock is held and
# no lab is up when up.sh calls this).
for old in "$CACHE"/debootstrap-* "$CACHE"/rootfs-* "$CACHE"/.tmp-*; do
  [[ -e "$old" && "$old" != "$stage1" && "$old" != "$stage2" ]] || continue
  if grep -q " $old" /proc/self/mountinfo 2>/dev/null || grep -q "lowerdir=$old" /proc/self/mountinfo 2>/dev/null; then
    continue
  fi
  lab_log "removing stale rootfs stage $old"
  rm -rf --one-file-system "$old"
done

if [[ -f "$stage2/etc/avalanche-lab-rootfs" ]]; then
  echo "$stage2"
  exit 0
fi

started=$SECONDS
if [[ ! -f "$stage1/.complete" ]]; then
  command -v debootstrap >/dev/null 2>&1 || lab_die "debootstrap is not installed (apt-get install debootstrap)"
  lab_log "building the hosts' rootfs (debootstrap $SUITE, once per machine, ~1 min)"
  tmp=$CACHE/.tmp-debootstrap-$stage1_key
  rm -rf --one-file-system "$tmp"
  if ! timeout 900 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1; then
    tail -n 30 "$CACHE/debootstrap.log" >&2
    rm -rf --one-file-system "$tmp"
    lab_die "debootstrap failed (log: $CACHE/debootstrap.log)"
  fi
  touch "$tmp/.complete"
  mv "$tmp" "$stage1"
  lab_log "debootstrap done in $((SECONDS - started)) s"
fi

tmp=$CACHE/.tmp-rootfs-$stage2_key
rm -rf --one-file-system "$tmp"
cp -a "$stage1" "$tmp"
rm -f "$tmp/.complete"
prepare_template "$tmp"
echo "$stage2_key" >"$tmp/etc/avalanche-lab-rootfs"
mv "$tmp" "$stage2"
lab_log "rootfs template ready in $((SECONDS - started)) s: $stage2"
echo "$stage2"
