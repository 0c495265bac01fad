#!/usr/bin/env bash
# up.sh — bring the avalanche-deploy test lab (v2) up from nothing (run as root).
#
# hawk    = the root network namespace: the machine's /nix behind a nix-daemon
#           started here (x86_64, no aarch64), the cache on :5000 serving that
#           store, an sshd on 10.213.77.1:22, the orchestrator user avl.
# opiNN   = a systemd-nspawn container (systemd as PID 1) on an overlayfs root:
#           Nix 2.26 daemon (may build aarch64), sshd, users deploy (sudo) and
#           nix-builder; 10.213.77.(10+NN).
# calypso = a second coordinator container (x86_64, no aarch64), user avl,
#           the repository bind-mounted read-only; also a deploy target
#           (user deploy, as on the opis); 10.213.77.2.
# Holds the lab lock ($LAB_LOCK) unless LAB_LOCK_HELD=1 says the caller does.
# Idempotent: an existing lab is torn down first (down.sh). Every wait has a
# deadline. See README.md beside this file.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

[[ $EUID -eq 0 ]] || lab_die "up.sh must run as root"
lab_check_hosts
lab_check_seconds
[[ "$LAB_DIR" == /* && "$LAB_DIR" != / ]] || lab_die "LAB_DIR must be an absolute path, got '$LAB_DIR'"
# Store paths, nix.conf values and nspawn bind options cannot carry spaces or colons.
[[ "$LAB_DIR" =~ ^[A-Za-z0-9/._+-]+$ ]] || lab_die "LAB_DIR may only contain letters, digits and / . _ + -"
[[ "$LAB_REPO" =~ ^[A-Za-z0-9/._+-]+$ ]] || lab_die "the repository path may only contain letters, digits and / . _ + - ($LAB_REPO)"

# A caller that sourced a previous lab's env.sh must not leak hawk's settings
# into anything started here.
unset NIX_CONF_DIR NIX_CONFIG NIX_USER_CONF_FILES NIX_REMOTE NIX_SSHOPTS XDG_CACHE_HOME
# flake.sh, the cache server and the inventory writer read them.
export LAB_DIR LAB_HOSTS LAB_KERNEL_SECONDS LAB_HOST_SECONDS LAB_ACTIVATION_SECONDS LAB_EVAL_SECONDS LAB_EVAL_MIB

started=$SECONDS

# --- one lab per machine ----------------------------------------------------
if [[ "${LAB_LOCK_HELD:-}" != 1 ]]; then
  exec 9>>"$LAB_LOCK"
  if ! flock -n 9; then
    lab_log "waiting for the lab lock $LAB_LOCK (another lab session runs on this machine)"
    flock -w "${LAB_LOCK_WAIT:-900}" 9 || lab_die "the lab lock $LAB_LOCK is still held after ${LAB_LOCK_WAIT:-900} s"
  fi
fi
export LAB_LOCK_HELD=1 # for down.sh below

# --- packages ---------------------------------------------------------------
need=()
for tool in nix:nix-bin nix-daemon:nix-bin ssh:openssh-client ssh-keygen:openssh-client sshd:openssh-server \
  ip:iproute2 ps:procps pgrep:procps nsenter:util-linux setpriv:util-linux flock:util-linux \
  systemd-nspawn:systemd-container debootstrap:debootstrap tmux:tmux sudo:sudo unshare:util-linux; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [[ -x "/usr/sbin/${tool%%:*}" ]] || need+=("${tool#*:}")
done
if ((${#need[@]})); then
  lab_log "installing missing packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v node >/dev/null 2>&1 || lab_die "node (20+) is needed for the cache server and is not on PATH"

# --- a previous lab? --------------------------------------------------------
leftover=0
[[ -e "$LAB_DIR" || -e "$LAB_MARKER" ]] && leftover=1
ip link show "$LAB_BRIDGE" >/dev/null 2>&1 && leftover=1
for h in $LAB_ALL_CONTAINERS; do
  [[ -e /run/netns/$h ]] && leftover=1
done
if ((leftover)); then
  lab_log "tearing down the previous lab first"
  bash "$HERE/down.sh"
fi
# (Zombies do not count: this machine's PID 1 may be slow to reap what down.sh stopped.)
for pid in $(pgrep -x nix-daemon || true); do
  lab_alive "$pid" && lab_die "a nix-daemon already runs on this machine (pid $pid): the lab starts hawk's own; stop that one first"
done

# If anything below fails, do not leave half a lab behind.
cleanup_on_error() {
  local rc=$?
  trap - EXIT
  if ((rc != 0)) && [[ "${LAB_KEEP_ON_ERROR:-}" == 1 ]]; then
    lab_log "up.sh failed (exit $rc); LAB_KEEP_ON_ERROR=1: the partial lab stays (down.sh removes it)"
  elif ((rc != 0)); then
    lab_log "up.sh failed (exit $rc); tearing the partial lab down"
    bash "$HERE/down.sh" || true
  fi
  exit "$rc"
}
trap cleanup_on_error EXIT

# --- the hosts' root filesystem (cached per machine) ---------------------------
ROOTFS=$(bash "$HERE/rootfs.sh")
[[ -f "$ROOTFS/etc/avalanche-lab-rootfs" ]] || lab_die "rootfs.sh gave no template"
t_rootfs=$((SECONDS - started))
# uid:gid of the template's users (the same in every container).
in_template_ids() { awk -F: -v u="$1" '$1 == u {print $3 ":" $4}' "$ROOTFS/etc/passwd"; }
C_DEPLOY=$(in_template_ids deploy)
C_BUILDER=$(in_template_ids nix-builder)
C_AVL=$(in_template_ids avl)
[[ -n "$C_DEPLOY" && -n "$C_BUILDER" && -n "$C_AVL" ]] || lab_die "the rootfs template lacks its users"
# hawk's build users (this machine's) must share no uid with the containers'
# (rootfs.sh: Nix kills a build user's every process around each build).
for member in $(getent group nixbld | cut -d: -f4 | tr ',' ' '); do
  uid=$(id -u "$member" 2>/dev/null) || continue
  awk -F: -v u="$uid" '$3 == u { found = 1 } END { exit !found }' "$ROOTFS/etc/passwd" &&
    lab_die "this machine's build user $member has uid $uid, which a lab container's user has too: hawk's builds would kill the containers' (LAB_BUILD_UID_BASE in common.sh)"
done

# --- hawk's orchestrator user -------------------------------------------------
# What an admin would do once (and a tmpfiles rule would keep): a normal user.
if ! id -u "$LAB_USER" >/dev/null 2>&1; then
  lab_log "creating the user $LAB_USER on this machine (hawk's orchestrator user)"
  useradd --create-home --home-dir "/home/$LAB_USER" --shell /bin/bash --user-group --password '*' "$LAB_USER"
fi
# Debian's nix-daemon socket is for the group nix-users only.
if getent group nix-users >/dev/null && ! id -nG "$LAB_USER" | tr ' ' '\n' | grep -qx nix-users; then
  usermod -a -G nix-users "$LAB_USER"
fi
AVL_HOME=$(getent passwd "$LAB_USER" | cut -d: -f6)
setpriv --reuid "$LAB_USER" --regid "$LAB_USER" --init-groups test -r "$LAB_REPO/package.json" ||
  lab_die "$LAB_USER cannot read $LAB_REPO (the orchestrator runs as $LAB_USER): make the repository readable"

# --- files and keys -----------------------------------------------------------
mkdir -p "$LAB_DIR"
chmod 0755 "$LAB_DIR"
echo "$LAB_DIR" >"$LAB_MARKER"
# Every container's systemd holds inotify instances (its path units, its own
# watches), all as root: with 30 opis the kernel's default of 128 per user runs
# out, and after a daemon-reload (an activation) path units fail and the system
# is "degraded" (seen: systemd-ask-password-*.path, console-getty.service).
# Raised while the lab is up; down.sh puts the old value back.
inotify_want=$((64 * ($(wc -w <<<"$LAB_HOSTS") + 2)))
inotify_now=$(</proc/sys/fs/inotify/max_user_instances)
if ((inotify_now < inotify_want)); then
  echo "$inotify_now" >"$LAB_DIR/inotify-instances-before"
  echo "$inotify_want" >/proc/sys/fs/inotify/max_user_instances
fi
od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >"$LAB_DIR/lab-id"
# runs/: hawk's reports in runs/hawk, the history (<report-dir>/../history.jsonl) beside them.
install -d -m 0755 -o "$LAB_USER" -g "$LAB_USER" "$LAB_DIR/hawk" "$LAB_DIR/runs" "$LAB_DIR/runs/hawk"
install -d -m 0755 -o "$LAB_USER" -g "$LAB_USER" "$LAB_DIR/hawk/xdg-cache" "$LAB_DIR/hawk/xdg-cache/$LAB_USER"
install -d -m 0700 "$LAB_DIR/hawk/xdg-cache/root" "$LAB_DIR/hawk/cache-server-xdg"
install -d -m 0755 "$LAB_DIR/hawk/etc-nix" "$LAB_DIR/hawk-sshd" "$LAB_DIR/hawk-sshd/authorized_keys"
install -d -m 0700 -o "$LAB_USER" -g "$LAB_USER" "$LAB_DIR/ssh"
# Visible at the same path in every container (nspawn --bind): builds.log for
# whichever host builds (as a Nix build user), the test inventories, calypso's reports.
install -d -m 1777 "$LAB_DIR/shared" "$LAB_DIR/shared/inventories"
install -m 0666 /dev/null "$LAB_DIR/shared/builds.log"
# The lab builds log "<hostname> …": a build on hawk runs in this machine's
# root namespace, whose hostname is the machine's; this file names it (flake.sh).
uname -n >"$LAB_DIR/shared/hawk-uts-name"
chmod 0644 "$LAB_DIR/shared/hawk-uts-name"
install -d -m 0755 -o "${C_AVL%:*}" -g "${C_AVL#*:}" "$LAB_DIR/shared/calypso" "$LAB_DIR/shared/calypso/runs"
mkdir -p /run/sshd && chmod 0755 /run/sshd

keygen() { ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1"; }
# Separate keys for deploying and for building, as in the fleet; avl owns its
# copies (ssh refuses keys others can read).
keygen "$LAB_DIR/ssh/deploy_key" lab-deploy
keygen "$LAB_DIR/ssh/builder_key" lab-nix-builder
keygen "$LAB_DIR/ssh/calypso_avl_key" avl@calypso
# calypso's nix-daemon (root) logs in to avl@hawk with this one, its default
# identity, to build x86_64 on hawk (--builders 'ssh://avl@hawk x86_64-linux - …').
keygen "$LAB_DIR/ssh/calypso_root_key" root@calypso
chown "$LAB_USER:$LAB_USER" "$LAB_DIR"/ssh/*
# hawk's daemon uses its own root-only copy of the builder key (/etc/nix/builder-key on the fleet).
install -m 0600 "$LAB_DIR/ssh/builder_key" "$LAB_DIR/hawk/etc-nix/builder-key"
nix-store --generate-binary-cache-key lab-hawk-1 "$LAB_DIR/hawk/cache-priv-key.pem" "$LAB_DIR/hawk/cache-pub-key.pem"
chmod 0600 "$LAB_DIR/hawk/cache-priv-key.pem"
chmod 0644 "$LAB_DIR/hawk/cache-pub-key.pem"
CACHE_PUBLIC_KEY=$(<"$LAB_DIR/hawk/cache-pub-key.pem")
CACHE_URL=http://$LAB_HAWK_ADDR:$LAB_CACHE_PORT
keygen "$LAB_DIR/hawk-sshd/ssh_host_ed25519_key" hawk

# Host keys, known_hosts and the builders' machines lines.
CONTAINERS="calypso $LAB_HOSTS"
known=$LAB_DIR/ssh/known_hosts
echo "$LAB_HAWK_ADDR $(cut -d' ' -f1,2 "$LAB_DIR/hawk-sshd/ssh_host_ed25519_key.pub")" >"$known"
for h in $CONTAINERS; do
  mkdir -p "$LAB_DIR/$h"
  keygen "$LAB_DIR/$h/ssh_host_ed25519_key" "$h"
  line=$(cut -d' ' -f1,2 "$LAB_DIR/$h/ssh_host_ed25519_key.pub")
  echo "$(lab_addr "$h") $line" >>"$known"
  printf '%s' "$line" | base64 -w0 >"$LAB_DIR/$h/host_key.b64"
done
chown "$LAB_USER:$LAB_USER" "$known"
machines() { # builder-key-path -> the opis as builders
  local h
  for h in $LAB_HOSTS; do
    echo "ssh://nix-builder@$(lab_addr "$h") aarch64-linux $1 6 2 big-parallel - $(<"$LAB_DIR/$h/host_key.b64")"
  done
}

# --- the flake and the inventories (calypso mounts them at boot) -------------
bash "$HERE/flake.sh" --generation 1 >/dev/null

seed=""
for h in $LAB_HOSTS; do seed=$h; done
[[ " $LAB_HOSTS " == *" opi03 "* ]] && seed=opi03
host_records=""
for h in $LAB_HOSTS; do
  host_records+="$h $(lab_addr "$h") $(<"$LAB_DIR/$h/host_key.b64")"$'\n'
done
write_inventory() { # coordinator [FLEET=1] -> stdout
  env COORDINATOR="$1" "${@:2}" AVL_HOME_CALYPSO=/home/avl SEED="$seed" HAWK_ADDR="$LAB_HAWK_ADDR" \
    CALYPSO_ADDR="$LAB_CALYPSO_ADDR" \
    CACHE_URL="$CACHE_URL" CACHE_PUBLIC_KEY="$CACHE_PUBLIC_KEY" GCROOT_DIR="$LAB_GCROOT_DIR" \
    HOST_RECORDS="$host_records" LAB_BOOT_SECONDS="${LAB_BOOT_SECONDS:-90}" node "$HERE/write-inventory.mjs"
}
write_inventory hawk >"$LAB_DIR/hosts.json"
write_inventory calypso >"$LAB_DIR/hosts-calypso.json"
# The whole lab fleet: the opis plus calypso as an x86_64 target.
write_inventory hawk FLEET=1 >"$LAB_DIR/hosts-fleet.json"
write_inventory calypso FLEET=1 >"$LAB_DIR/hosts-fleet-calypso.json"
chmod 0644 "$LAB_DIR/hosts.json" "$LAB_DIR/hosts-calypso.json" "$LAB_DIR/hosts-fleet.json" "$LAB_DIR/hosts-fleet-calypso.json"

# --- hawk as a deploy target: its namespaces (hawk-ns.sh) -----------------------
# The orchestrator on hawk (as-coordinator.sh hawk) runs in them: hostname
# hawk, and what a deploy of hawk changes (/run, the system profile, the
# deploy's state, sudo for avl) kept in $LAB_DIR/hawk/root, not on this machine.
mkdir -p "$LAB_DIR/hawk/root/run" "$LAB_DIR/hawk/root/nix/var/nix/profiles" "$LAB_DIR/hawk/root/var/lib/avalanche-deploy" \
  "$LAB_DIR/hawk/root/var/lib/lab" "$LAB_DIR/hawk/ns-work/run" "$LAB_DIR/hawk/ns-work/profiles" "$LAB_DIR/hawk/etc"
mkdir -p /nix/var/nix/profiles
if [[ ! -d /var/lib/avalanche-deploy ]]; then
  mkdir /var/lib/avalanche-deploy # the mount point only; down.sh removes it
  touch "$LAB_DIR/hawk/target-state-dir-created"
fi
printf '%s\n' "# hawk's sudoers (lab; generated by test/lab/up.sh), bound over /etc/sudoers in hawk's namespaces only." \
  'Defaults env_reset' 'Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' \
  'root ALL=(ALL:ALL) ALL' "$LAB_USER ALL=(ALL:ALL) NOPASSWD: ALL" >"$LAB_DIR/hawk/etc/sudoers"
chmod 0440 "$LAB_DIR/hawk/etc/sudoers"
{ cat /etc/hosts; echo "127.0.1.1 hawk"; } >"$LAB_DIR/hawk/etc/hosts"
chmod 0644 "$LAB_DIR/hawk/etc/hosts"
: >"$LAB_DIR/hawk/ns.log"
lab_start_hawk_ns
deadline=$((SECONDS + 10))
until lab_hawk_ns_pid >/dev/null; do
  if ((SECONDS > deadline)) || ! lab_alive "$(<"$LAB_DIR/hawk/ns.pid")"; then
    cat "$LAB_DIR/hawk/ns.log" >&2 || true
    lab_die "hawk's namespaces (hawk-ns.sh) were not ready within 10 s (or it exited)"
  fi
  sleep 0.1
done

# --- network: bridge avl0 = hawk, one namespace + veth per container ---------
ip link add "$LAB_BRIDGE" type bridge
ip addr add "$LAB_HAWK_ADDR/24" dev "$LAB_BRIDGE"
ip link set "$LAB_BRIDGE" up
for h in $CONTAINERS; do
  ip netns add "$h"
  ip link add "avl-$h" type veth peer name eth0 netns "$h"
  ip link set "avl-$h" master "$LAB_BRIDGE" up
  ip -n "$h" addr add "$(lab_addr "$h")/24" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" link set lo up
done

# --- per container: overlay root, identity, Nix, users' keys ------------------
common_nix_conf() {
  cat <<EOF
experimental-features = nix-command flakes
# Lab derivations append to \$LAB_DIR/shared/builds.log and use /bin/sh.
sandbox = false
substituters = $CACHE_URL
trusted-public-keys = $CACHE_PUBLIC_KEY
# A dead or hung cache must cost seconds, and a miss must not be remembered.
connect-timeout = 5
stalled-download-timeout = 10
download-attempts = 2
narinfo-cache-negative-ttl = 0
EOF
}
put() { # owner mode path  (content on stdin)
  install -D -m "$2" -o "${1%:*}" -g "${1#*:}" /dev/stdin "$3"
}
for h in $CONTAINERS; do
  d=$LAB_DIR/$h
  r=$d/root
  mkdir -p "$d/upper" "$d/work" "$r"
  : >"$d/console.log"
  mount -t overlay "avalanche-lab-$h" -o "lowerdir=$ROOTFS,upperdir=$d/upper,workdir=$d/work" "$r"
  echo "$h" >"$r/etc/hostname"
  {
    cat "$ROOTFS/etc/hosts"
    echo "127.0.1.1 $h"
    echo "$LAB_HAWK_ADDR hawk"
    for o in $CONTAINERS; do [[ "$o" == "$h" ]] || echo "$(lab_addr "$o") $o"; done
  } >"$r/etc/hosts"
  install -m 0600 "$d/ssh_host_ed25519_key" "$r/etc/ssh/ssh_host_ed25519_key"
  install -m 0644 "$d/ssh_host_ed25519_key.pub" "$r/etc/ssh/ssh_host_ed25519_key.pub"
  put 0:0 0644 "$r/etc/ssh/ssh_known_hosts" <"$known"
  args=("--bind=$LAB_DIR/shared")
  # Every container is a deploy target: the deploy user with the deploy key
  # (sudo NOPASSWD and lab-activate-on-boot come with the template).
  put "$C_DEPLOY" 0600 "$r/home/deploy/.ssh/authorized_keys" <"$LAB_DIR/ssh/deploy_key.pub"
  if [[ "$h" == calypso ]]; then
    {
      echo "# calypso (lab): a second coordinator and a deploy target; x86_64, cannot build aarch64 (no extra-platforms)."
      common_nix_conf
      echo "trusted-users = root avl deploy"
      echo "builders = @/etc/nix/machines"
      echo "builders-use-substitutes = true"
    } | put 0:0 0644 "$r/etc/nix/nix.conf"
    put 0:0 0600 "$r/etc/nix/builder-key" <"$LAB_DIR/ssh/builder_key"
    machines /etc/nix/builder-key | put 0:0 0644 "$r/etc/nix/machines"
    # The daemon's own identity for avl@hawk (x86_64 builds on hawk).
    install -d -m 0700 "$r/root/.ssh"
    put 0:0 0600 "$r/root/.ssh/id_ed25519" <"$LAB_DIR/ssh/calypso_root_key"
    # The orchestrator's user may activate calypso itself (a local deploy, no
    # SSH), as an admin on a coordinator may: sudo -n, as deploy's.
    printf 'avl ALL=(ALL:ALL) NOPASSWD: ALL\n' | put 0:0 0440 "$r/etc/sudoers.d/avl"
    s=/home/avl/.ssh
    put "$C_AVL" 0600 "$r$s/deploy_key" <"$LAB_DIR/ssh/deploy_key"
    put "$C_AVL" 0600 "$r$s/builder_key" <"$LAB_DIR/ssh/builder_key"
    put "$C_AVL" 0600 "$r$s/id_ed25519" <"$LAB_DIR/ssh/calypso_avl_key"
    put "$C_AVL" 0644 "$r$s/id_ed25519.pub" <"$LAB_DIR/ssh/calypso_avl_key.pub"
    put "$C_AVL" 0644 "$r$s/known_hosts" <"$known"
    args+=("--bind-ro=$LAB_REPO" "--bind-ro=$LAB_DIR/flake" "--bind-ro=$LAB_DIR/hosts-calypso.json"
      "--bind-ro=$LAB_DIR/hosts-fleet-calypso.json")
  else
    {
      echo "# $h (lab): may build aarch64 (hawk and calypso may not)."
      common_nix_conf
      echo "extra-platforms = aarch64-linux"
      echo "trusted-users = root nix-builder deploy"
      echo "max-jobs = 6"
    } | put 0:0 0644 "$r/etc/nix/nix.conf"
    put "$C_BUILDER" 0600 "$r/var/lib/nix-builder/.ssh/authorized_keys" <"$LAB_DIR/ssh/builder_key.pub"
  fi
  printf '%s\n' "${args[@]}" >"$d/nspawn.args"
done

for h in $CONTAINERS; do lab_start_container "$h"; done
t_containers_started=$SECONDS

# --- hawk: nix-daemon, sshd, cache, GC roots ---------------------------------
{
  echo "# hawk (lab), used through NIX_CONF_DIR by hawk's nix-daemon and its clients:"
  echo "# cannot build aarch64 (no extra-platforms), substitutes from nothing, delegates to the opis."
  echo "experimental-features = nix-command flakes"
  echo "sandbox = false"
  getent group nixbld >/dev/null && echo "build-users-group = nixbld" || echo "build-users-group ="
  echo "substituters ="
  echo "builders = @$LAB_DIR/hawk/etc-nix/machines"
  echo "builders-use-substitutes = true"
  echo "trusted-users = root $LAB_USER"
  echo "post-build-hook = $LAB_DIR/hawk/post-build-hook"
  echo "connect-timeout = 5"
} >"$LAB_DIR/hawk/etc-nix/nix.conf"
machines "$LAB_DIR/hawk/etc-nix/builder-key" >"$LAB_DIR/hawk/etc-nix/machines"

# The fleet's pin-arm-cache.sh, adapted: Nix 2.8 leaves OUT_PATHS empty for
# remotely built derivations (and, seen here, for local ones too), so the
# outputs come from the .drv then. A build another machine asks of hawk as its
# builder (calypso's x86_64 builds: `nix-store --serve --write`, the derivation
# sent over the wire) has no .drv in hawk's store: nothing to pin by, and a
# failing hook would fail that build, so it logs "not pinned" and succeeds (the
# orchestrator copies and pins what a run elsewhere built). No push: the cache
# serves hawk's store itself.
cat >"$LAB_DIR/hawk/post-build-hook" <<EOF
#!/bin/sh
# Generated by avalanche-deploy test/lab/up.sh: pin each build with a GC root on hawk.
set -eu
set -f
export PATH="/usr/bin:/bin:\${PATH:-}"
LOG='$LAB_DIR/hawk/post-build-hook.log'
GCROOT_DIR='$LAB_GCROOT_DIR'
outs=\${OUT_PATHS:-}
if [ -z "\$outs" ] && ! outs=\$(nix-store -q --outputs "\$DRV_PATH" 2>/dev/null); then
  echo "\$(date -Is) drv=\$DRV_PATH OUT_PATHS= not in this store (built for another machine): not pinned" >>"\$LOG"
  exit 0
fi
echo "\$(date -Is) drv=\$DRV_PATH OUT_PATHS=\${OUT_PATHS:-} outputs=\$(echo \$outs)" >>"\$LOG"
mkdir -p "\$GCROOT_DIR"
for path in \$outs; do
  ln -sfn "\$path" "\$GCROOT_DIR/\$(basename "\$path")"
  echo "\$(date -Is) pinned \$path" >>"\$LOG"
done
EOF
chmod 0755 "$LAB_DIR/hawk/post-build-hook"

[[ -e /nix/var/nix/daemon-socket/socket ]] || touch "$LAB_DIR/hawk/daemon-socket-created"
: >"$LAB_DIR/hawk/nix-daemon.log"
lab_start_hawk_daemon

# The GC-root directory, as an admin grants it to the orchestrator's user.
if [[ ! -d "$LAB_GCROOT_DIR" ]]; then
  mkdir -p "$LAB_GCROOT_DIR"
  touch "$LAB_DIR/hawk/gcroot-dir-created"
else
  stat -c %u:%g "$LAB_GCROOT_DIR" >"$LAB_DIR/hawk/gcroot-dir-owner"
fi
chown "$LAB_USER:$LAB_USER" "$LAB_GCROOT_DIR"

cat >"$LAB_DIR/hawk-sshd/sshd_config" <<EOF
# sshd for hawk (lab): its lab address only, key auth only; calypso's avl logs in as avl.
ListenAddress $LAB_HAWK_ADDR
Port 22
HostKey $LAB_DIR/hawk-sshd/ssh_host_ed25519_key
PidFile none
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $LAB_USER
UsePAM no
# Keys live under \$LAB_DIR, which may sit below a world-writable /tmp.
StrictModes no
AuthorizedKeysFile $LAB_DIR/hawk-sshd/authorized_keys/%u
# As hawk's /etc/nix would: remote nix commands use hawk's daemon and settings.
SetEnv NIX_REMOTE=daemon NIX_CONF_DIR=$LAB_DIR/hawk/etc-nix
LogLevel VERBOSE
MaxStartups 100:30:200
MaxSessions 64
PrintMotd no
Subsystem sftp internal-sftp
EOF
cat "$LAB_DIR/ssh/calypso_avl_key.pub" "$LAB_DIR/ssh/calypso_root_key.pub" >"$LAB_DIR/hawk-sshd/authorized_keys/$LAB_USER"
chmod 0644 "$LAB_DIR/hawk-sshd/authorized_keys/$LAB_USER"
lab_start_hawk_sshd

: >"$LAB_DIR/cache-access.log"
lab_start_cache

# --- environment for acting as hawk ------------------------------------------
cat >"$LAB_DIR/env.sh" <<EOF
# Source this to act as hawk in the lab (generated by test/lab/up.sh). The
# orchestrator runs as $LAB_USER: test/lab/as-coordinator.sh hawk -- ARGV...
export LAB_DIR='$LAB_DIR'
export LAB_HOSTS='$LAB_HOSTS'
# hawk's Nix settings live in the lab: the machine's /etc/nix stays untouched.
export NIX_CONF_DIR='$LAB_DIR/hawk/etc-nix'
export NIX_REMOTE=daemon
# hawk's narinfo (and eval) cache stays inside the lab, one per user.
export XDG_CACHE_HOME="$LAB_DIR/hawk/xdg-cache/\$(id -un)"
case ":\$PATH:" in
  *':$LAB_REPO/test/lab/bin/bash-era:'*) ;;
  *) export PATH='$LAB_REPO/test/lab/bin/bash-era':"\$PATH" ;;
esac
EOF

# --- wait for everything (bounded) -------------------------------------------
deadline=$((SECONDS + 15))
as_avl() {
  setpriv --reuid "$LAB_USER" --regid "$LAB_USER" --init-groups env -i PATH=/usr/bin:/bin HOME="$AVL_HOME" \
    NIX_REMOTE=daemon NIX_CONF_DIR="$LAB_DIR/hawk/etc-nix" XDG_CACHE_HOME="$LAB_DIR/hawk/xdg-cache/$LAB_USER" "$@"
}
until [[ -S /nix/var/nix/daemon-socket/socket ]] && as_avl timeout 5 nix store ping >/dev/null 2>&1; do
  if ! lab_alive "$(<"$LAB_DIR/hawk/nix-daemon.pid")" || ((SECONDS > deadline)); then
    cat "$LAB_DIR/hawk/nix-daemon.log" >&2 || true
    lab_die "hawk's nix-daemon does not answer $LAB_USER within 15 s (or exited)"
  fi
  sleep 0.1
done
until lab_ssh_banner "$LAB_HAWK_ADDR"; do
  if ! lab_alive "$(<"$LAB_DIR/hawk-sshd/sshd.pid")" || ((SECONDS > deadline)); then
    tail -n 20 "$LAB_DIR/hawk-sshd/sshd.log" >&2 || true
    lab_die "hawk's sshd did not answer on $LAB_HAWK_ADDR:22 within 15 s (or exited)"
  fi
  sleep 0.1
done
cache_ok() {
  local status
  # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
  status=$(timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "GET /nix-cache-info HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3' \
    _ "$LAB_HAWK_ADDR" "$LAB_CACHE_PORT" 2>/dev/null || true)
  [[ "$status" == "HTTP/1.1 200 "* ]]
}
until cache_ok; do
  if ! lab_alive "$(<"$LAB_DIR/cache-server.pid")" || ((SECONDS > deadline)); then
    cat "$LAB_DIR/cache-server.log" >&2 || true
    lab_die "cache server did not answer on $LAB_HAWK_ADDR:$LAB_CACHE_PORT within 15 s (or exited)"
  fi
  sleep 0.1
done

for h in $CONTAINERS; do
  lab_wait_container "$h" "${LAB_BOOT_SECONDS:-90}"
done
t_booted=$((SECONDS - t_containers_started))

# One real login per role with the lab's keys and known_hosts (in parallel):
# proves host keys, authorized_keys, sudo for deploy, the builder's Nix, and
# calypso's avl reaching avl@hawk.
ssh_opts=(-o ConnectTimeout=5 -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$known")
checks=()
check() { # name argv...
  local name=$1
  shift
  # At most 8 at once: 30 hosts' logins (and their first nix-daemon starts) at
  # once on 2 CPUs outlast the 20 s bound. (Not `jobs`: the supervisors are jobs too.)
  local c running
  while :; do
    running=0
    for c in "${checks[@]}"; do lab_alive "${c#*:}" && running=$((running + 1)); done
    ((running < 8)) && break
    sleep 0.05
  done
  "$@" </dev/null >/dev/null 2>"$LAB_DIR/check-$name.err" &
  checks+=("$name:$!")
}
for h in $LAB_HOSTS calypso; do
  a=$(lab_addr "$h")
  check "$h-deploy" timeout 20 ssh "${ssh_opts[@]}" -i "$LAB_DIR/ssh/deploy_key" "deploy@$a" \
    "test \"\$(hostname)\" = $h && sudo -n true && nix store ping"
  [[ "$h" == calypso ]] && continue
  check "$h-builder" timeout 20 ssh "${ssh_opts[@]}" -i "$LAB_DIR/ssh/builder_key" "nix-builder@$a" \
    "nix-store --version && ! sudo -n true 2>/dev/null"
done
check calypso-hawk timeout 20 bash "$HERE/as-coordinator.sh" calypso -- \
  ssh -o ConnectTimeout=5 -o BatchMode=yes "$LAB_USER@$LAB_HAWK_ADDR" nix store ping
# calypso's nix-daemon (root, its default identity) reaches avl@hawk as a builder would.
check calypso-root-hawk timeout 20 nsenter -t "$(lab_leader calypso)" -m -u -n -i -- \
  ssh -o ConnectTimeout=5 -o BatchMode=yes "$LAB_USER@$LAB_HAWK_ADDR" nix-store --version
for c in "${checks[@]}"; do
  name=${c%%:*}
  wait "${c#*:}" || { cat "$LAB_DIR/check-$name.err" >&2; lab_die "login check $name failed"; }
  rm -f "$LAB_DIR/check-$name.err"
done
# Start the access log clean: up.sh's own probes are not traffic.
: >"$LAB_DIR/cache-access.log"

trap - EXIT
mem=""
for h in $CONTAINERS; do
  m=$(grep -m1 '^memory ' "$LAB_DIR/$h/cgroups" | cut -d' ' -f2-)
  [[ -n "$m" && -r "$m/memory.usage_in_bytes" ]] && mem+=" $h=$(($(<"$m/memory.usage_in_bytes") / 1048576))MiB"
done
lab_log "up in $((SECONDS - started)) s (rootfs ${t_rootfs} s, boot ${t_booted} s): hosts $LAB_HOSTS + calypso;" \
  "cache $CACHE_URL;${mem:+ memory$mem;} . $LAB_DIR/env.sh"
