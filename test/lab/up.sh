#!/usr/bin/env bash
# up.sh — bring the avalanche-deploy test lab up from nothing (run as root).
#
# hawk = the root network namespace (x86_64, no aarch64, cache on :5000);
# opiNN = a network namespace + private mount/UTS namespace with its own /nix,
# /etc/nix and /root, reached over SSH on 10.213.77.(10+NN).
# Idempotent: an existing lab is torn down first (down.sh). Every wait has a
# deadline. See README.md beside this file.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

[[ $EUID -eq 0 ]] || lab_die "up.sh must run as root"
lab_check_hosts
lab_check_seconds
[[ "$LAB_DIR" == /* && "$LAB_DIR" != / ]] || lab_die "LAB_DIR must be an absolute path, got '$LAB_DIR'"
# Store paths and nix.conf values cannot carry spaces.
[[ "$LAB_DIR" =~ ^[A-Za-z0-9/._+-]+$ ]] || lab_die "LAB_DIR may only contain letters, digits and / . _ + -"

# A caller that sourced a previous lab's env.sh must not leak hawk's settings
# into the opis' nix commands (nix-store --init below) or sshd.
unset NIX_CONF_DIR NIX_CONFIG NIX_USER_CONF_FILES NIX_REMOTE NIX_SSHOPTS XDG_CACHE_HOME
# flake.sh, the cache server and the inventory writer read it.
export LAB_DIR LAB_HOSTS LAB_KERNEL_SECONDS LAB_HOST_SECONDS LAB_ACTIVATION_SECONDS

started=$SECONDS

# --- packages ---------------------------------------------------------------
need_apt=0
for bin in nix nix-store nix-env nix-copy-closure ssh ssh-keygen ip ps unshare nsenter; do
  command -v "$bin" >/dev/null 2>&1 || need_apt=1
done
[[ -x /usr/sbin/sshd ]] || need_apt=1
if ((need_apt)); then
  lab_log "installing missing packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nix-bin openssh-server openssh-client iproute2 procps >/dev/null
fi
command -v node >/dev/null 2>&1 || lab_die "node (20+) is needed for the cache server and is not on PATH"
NIX_BIN=$(dirname "$(command -v nix)")

# --- a previous lab? --------------------------------------------------------
leftover=0
[[ -e "$LAB_DIR" || -e "$LAB_MARKER" ]] && leftover=1
ip link show "$LAB_BRIDGE" >/dev/null 2>&1 && leftover=1
for h in $LAB_ALL_HOSTS; do
  [[ -e /run/netns/$h ]] && leftover=1
done
if ((leftover)); then
  lab_log "tearing down the previous lab first"
  bash "$HERE/down.sh"
fi

# If anything below fails, do not leave half a lab behind.
cleanup_on_error() {
  local rc=$?
  trap - EXIT
  if ((rc != 0)); then
    lab_log "up.sh failed (exit $rc); tearing the partial lab down"
    bash "$HERE/down.sh" || true
  fi
  exit "$rc"
}
trap cleanup_on_error EXIT

mkdir -p "$LAB_DIR"
echo "$LAB_DIR" >"$LAB_MARKER"
od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >"$LAB_DIR/lab-id"
: >"$LAB_DIR/builds.log"
# sshd's privilege separation directory (shared /run: the opis see it too).
mkdir -p /run/sshd
chmod 0755 /run/sshd

# --- keys -------------------------------------------------------------------
mkdir -p "$LAB_DIR/ssh" "$LAB_DIR/hawk/etc-nix" "$LAB_DIR/hawk/xdg-cache" "$LAB_DIR/cache"
chmod 0700 "$LAB_DIR/ssh"
# Separate keys for deploying and for building, as in the fleet (both root here).
ssh-keygen -q -t ed25519 -N '' -C lab-deploy -f "$LAB_DIR/ssh/deploy_key"
ssh-keygen -q -t ed25519 -N '' -C lab-nix-builder -f "$LAB_DIR/ssh/builder_key"
nix-store --generate-binary-cache-key lab-hawk-1 \
  "$LAB_DIR/hawk/cache-priv-key.pem" "$LAB_DIR/hawk/cache-pub-key.pem"
chmod 0600 "$LAB_DIR/hawk/cache-priv-key.pem"
CACHE_PUBLIC_KEY=$(<"$LAB_DIR/hawk/cache-pub-key.pem")
: >"$LAB_DIR/ssh/known_hosts"
: >"$LAB_DIR/hawk/etc-nix/machines"

# --- network: bridge avl0 on hawk, one namespace + veth per opi -------------
ip link add "$LAB_BRIDGE" type bridge
ip addr add "$LAB_HAWK_ADDR/24" dev "$LAB_BRIDGE"
ip link set "$LAB_BRIDGE" up
for h in $LAB_HOSTS; do
  addr=$(lab_addr "$h")
  ip netns add "$h"
  ip link add "avl-$h" type veth peer name eth0 netns "$h"
  ip link set "avl-$h" master "$LAB_BRIDGE" up
  ip -n "$h" addr add "$addr/24" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" link set lo up
done

# --- per opi: files, holder namespace, store, sshd --------------------------
for h in $LAB_HOSTS; do
  addr=$(lab_addr "$h")
  d=$LAB_DIR/$h
  mkdir -p "$d/nix/var/lab" "$d/etc-nix" "$d/root"
  chmod 0700 "$d/root"
  cat >"$d/etc-nix/nix.conf" <<EOF
# $h (lab): single-user Nix, no daemon; may build aarch64 (hawk may not).
experimental-features = nix-command flakes
sandbox = false
build-users-group =
extra-platforms = aarch64-linux
substituters = http://$LAB_HAWK_ADDR:$LAB_CACHE_PORT
trusted-public-keys = $CACHE_PUBLIC_KEY
connect-timeout = 5
stalled-download-timeout = 10
download-attempts = 2
narinfo-cache-negative-ttl = 0
EOF
  ssh-keygen -q -t ed25519 -N '' -C "$h" -f "$d/ssh_host_ed25519_key"
  host_key_line=$(cut -d' ' -f1,2 "$d/ssh_host_ed25519_key.pub")
  echo "$addr $host_key_line" >>"$LAB_DIR/ssh/known_hosts"
  printf '%s\n' "$host_key_line" >"$d/host_key.pub"
  printf '%s' "$host_key_line" | base64 -w0 >"$d/host_key.b64"
  echo "ssh://root@$addr aarch64-linux $LAB_DIR/ssh/builder_key 6 2 big-parallel - $(<"$d/host_key.b64")" \
    >>"$LAB_DIR/hawk/etc-nix/machines"
  cat "$LAB_DIR/ssh/deploy_key.pub" "$LAB_DIR/ssh/builder_key.pub" >"$d/authorized_keys"
  cat >"$d/sshd_config" <<EOF
# sshd for lab host $h: key auth only, own host key, own address.
ListenAddress $addr
Port 22
HostKey $d/ssh_host_ed25519_key
PidFile none
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
# Keys live under \$LAB_DIR, which may sit below a world-writable /tmp.
StrictModes no
AuthorizedKeysFile $d/authorized_keys
# VERBOSE logs which key (deploy or builder) each login used.
LogLevel VERBOSE
# Parallel deploys and builds open many connections at once.
MaxStartups 100:30:200
MaxSessions 64
PrintMotd no
Subsystem sftp internal-sftp
EOF

  # The holder keeps the host's private mount+UTS namespace alive (it dies
  # with its last process), so "sshd down" and "host down" are separate faults.
  # setsid: a caller killing up.sh's process group must not kill the lab.
  # shellcheck disable=SC2016 # $1/$2 expand in the inner sh
  setsid ip netns exec "$h" unshare -m -u --propagation private sh -c '
    set -e
    hostname "$1"
    mount --bind "$2/nix" /nix
    mount --bind "$2/etc-nix" /etc/nix
    mount --bind "$2/root" /root
    exec sleep infinity' lab-holder "$h" "$d" </dev/null >"$d/holder.log" 2>&1 &
  echo $! >"$d/holder.pid"
done

# Wait until every holder has exec'd sleep (its mounts are then in place).
deadline=$((SECONDS + 10))
for h in $LAB_HOSTS; do
  pid=$(<"$LAB_DIR/$h/holder.pid")
  until [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == sleep ]]; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
      cat "$LAB_DIR/$h/holder.log" >&2 || true
      lab_die "holder of $h did not come up"
    fi
    sleep 0.05
  done
done

for h in $LAB_HOSTS; do
  d=$LAB_DIR/$h
  pid=$(<"$d/holder.pid")
  # The store database of this host's private /nix.
  nsenter -t "$pid" -n -m -u "$NIX_BIN/nix-store" --init
  lab_start_sshd "$h"
done

# --- hawk: nix.conf, machines, post-build hook, cache -----------------------
cat >"$LAB_DIR/hawk/etc-nix/nix.conf" <<EOF
# hawk (lab), used through NIX_CONF_DIR: cannot build aarch64 (no
# extra-platforms), substitutes from nothing, delegates to the opis.
experimental-features = nix-command flakes
sandbox = false
build-users-group =
substituters =
builders = @$LAB_DIR/hawk/etc-nix/machines
builders-use-substitutes = true
post-build-hook = $LAB_DIR/hawk/post-build-hook
connect-timeout = 5
EOF

# The fleet's pin-arm-cache.sh, adapted: Nix 2.8 leaves OUT_PATHS empty for
# remotely built derivations, so the outputs come from the .drv instead.
cat >"$LAB_DIR/hawk/post-build-hook" <<EOF
#!/bin/sh
# Generated by avalanche-deploy test/lab/up.sh: push each build to the lab
# cache (signed) and pin it with a GC root on hawk.
set -eu
set -f
export PATH="/usr/bin:/bin:\${PATH:-}"
export NIX_CONF_DIR='$LAB_DIR/hawk/etc-nix'
export XDG_CACHE_HOME='$LAB_DIR/hawk/xdg-cache'
LOG='$LAB_DIR/hawk/post-build-hook.log'
GCROOT_DIR='$LAB_GCROOT_DIR'
CACHE='file://$LAB_DIR/cache?secret-key=$LAB_DIR/hawk/cache-priv-key.pem&compression=none'

outs=\$('$NIX_BIN/nix-store' -q --outputs "\$DRV_PATH")
echo "\$(date -Is) drv=\$DRV_PATH OUT_PATHS=\${OUT_PATHS:-} outputs=\$(echo \$outs)" >>"\$LOG"
# \$outs unquoted on purpose: one argument per store path.
'$NIX_BIN/nix' copy --to "\$CACHE" \$outs >>"\$LOG" 2>&1
mkdir -p "\$GCROOT_DIR"
for path in \$outs; do
  name=\$(basename "\$path")
  ln -sfn "\$path" "\$GCROOT_DIR/\$name"
  echo "\$(date -Is) pushed+pinned \$path" >>"\$LOG"
done
EOF
chmod 0755 "$LAB_DIR/hawk/post-build-hook"

# The file cache root: nix copy keeps an existing nix-cache-info.
printf 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n' >"$LAB_DIR/cache/nix-cache-info"
: >"$LAB_DIR/cache-access.log"
lab_start_cache

# --- the flake --------------------------------------------------------------
bash "$HERE/flake.sh" --generation 1 >/dev/null

# --- inventory and environment for the orchestrator -------------------------
seed=""
for h in $LAB_HOSTS; do seed=$h; done
[[ " $LAB_HOSTS " == *" opi03 "* ]] && seed=opi03
host_records=""
for h in $LAB_HOSTS; do
  host_records+="$h $(lab_addr "$h") $(<"$LAB_DIR/$h/host_key.b64")"$'\n'
done
env REPO="$REPO" SEED="$seed" HAWK_ADDR="$LAB_HAWK_ADDR" \
  CACHE_URL="http://$LAB_HAWK_ADDR:$LAB_CACHE_PORT" CACHE_PUBLIC_KEY="$CACHE_PUBLIC_KEY" \
  GCROOT_DIR="$LAB_GCROOT_DIR" HOST_RECORDS="$host_records" \
  node "$HERE/write-inventory.mjs" >"$LAB_DIR/hosts.json"

cat >"$LAB_DIR/env.sh" <<EOF
# Source this to act as hawk in the lab (generated by test/lab/up.sh).
export LAB_DIR='$LAB_DIR'
export LAB_HOSTS='$LAB_HOSTS'
# hawk's Nix settings live in the lab: the machine's /etc/nix stays untouched.
export NIX_CONF_DIR='$LAB_DIR/hawk/etc-nix'
# Keeps hawk's narinfo (and eval) cache inside the lab.
export XDG_CACHE_HOME='$LAB_DIR/hawk/xdg-cache'
case ":\$PATH:" in
  *':$REPO/test/lab/bin:'*) ;;
  *) export PATH='$REPO/test/lab/bin':"\$PATH" ;;
esac
EOF

# --- wait for the services (bounded) ----------------------------------------
# The SSH banner, not just an open port: a zombie or a dying sshd does not count.
deadline=$((SECONDS + 10))
for h in $LAB_HOSTS; do
  addr=$(lab_addr "$h")
  # shellcheck disable=SC2016 # $1 expands in the inner bash
  until [[ "$(timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/22" && head -c 4 <&3' _ "$addr" 2>/dev/null || true)" == SSH- ]]; do
    if ! kill -0 "$(<"$LAB_DIR/$h/sshd.pid")" 2>/dev/null || ((SECONDS > deadline)); then
      tail -n 20 "$LAB_DIR/$h/sshd.log" >&2 || true
      lab_die "sshd of $h ($addr) did not answer within 10 s (or exited)"
    fi
    sleep 0.1
  done
done
cache_ok() {
  local status
  # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
  status=$(timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "GET /nix-cache-info HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3' \
    _ "$LAB_HAWK_ADDR" "$LAB_CACHE_PORT" 2>/dev/null || true)
  [[ "$status" == "HTTP/1.1 200 "* ]]
}
until cache_ok; do
  if ! kill -0 "$(<"$LAB_DIR/cache-server.pid")" 2>/dev/null || ((SECONDS > deadline)); then
    cat "$LAB_DIR/cache-server.log" >&2 || true
    lab_die "cache server did not answer on $LAB_HAWK_ADDR:$LAB_CACHE_PORT within 10 s (or exited)"
  fi
  sleep 0.1
done

# One real login per host with the deploy key and the lab's known_hosts: proves
# host keys, authorized_keys, the private mounts and the hostname (parallel).
ssh_opts=(-o ConnectTimeout=5 -o BatchMode=yes -o StrictHostKeyChecking=yes
  -o "UserKnownHostsFile=$LAB_DIR/ssh/known_hosts" -i "$LAB_DIR/ssh/deploy_key")
pids=()
for h in $LAB_HOSTS; do
  # shellcheck disable=SC2029 # $h expands locally on purpose
  timeout 15 ssh "${ssh_opts[@]}" "root@$(lab_addr "$h")" \
    "test \"\$(hostname)\" = $h && test -e /nix/var/nix/db/db.sqlite && test -e /etc/nix/nix.conf && grep -q '^extra-platforms' /etc/nix/nix.conf" \
    </dev/null >/dev/null 2>"$LAB_DIR/$h/check.err" &
  pids+=("$!")
done
i=0
for h in $LAB_HOSTS; do
  wait "${pids[$i]}" || { cat "$LAB_DIR/$h/check.err" >&2; lab_die "login check on $h failed"; }
  rm -f "$LAB_DIR/$h/check.err"
  i=$((i + 1))
done
# Start the access log clean: up.sh's own readiness probes are not traffic.
: >"$LAB_DIR/cache-access.log"

trap - EXIT
lab_log "up in $((SECONDS - started)) s: hosts $LAB_HOSTS; cache http://$LAB_HAWK_ADDR:$LAB_CACHE_PORT; . $LAB_DIR/env.sh"
