# shellcheck shell=bash disable=SC2034 # the variables are used by the sourcing scripts
# Shared settings for the lab scripts (sourced by up.sh, down.sh, flake.sh).
# Only defines variables and functions: nothing here touches the machine.

LAB_DIR=${LAB_DIR:-/var/lib/avalanche-lab}
LAB_HOSTS=${LAB_HOSTS:-"opi01 opi02 opi03"}
LAB_KERNEL_SECONDS=${LAB_KERNEL_SECONDS:-3}
LAB_HOST_SECONDS=${LAB_HOST_SECONDS:-0}
LAB_ACTIVATION_SECONDS=${LAB_ACTIVATION_SECONDS:-0}

# The lab network. hawk is the root namespace; opiNN lives at .(10+NN).
LAB_BRIDGE=avl0
LAB_NET_PREFIX=10.213.77
LAB_HAWK_ADDR=$LAB_NET_PREFIX.1
LAB_CACHE_PORT=5000
# Every namespace name the lab may ever create: down.sh sweeps all of them,
# whatever LAB_HOSTS said when the lab came up.
LAB_ALL_HOSTS="opi01 opi02 opi03 opi04 opi05 opi06 opi07 opi08 opi09"
# Remembers which LAB_DIR the running lab uses, so down.sh with another
# LAB_DIR still stops the old lab's cache server (it holds port 5000).
LAB_MARKER=/run/avalanche-lab.dir
LAB_GCROOT_DIR=/nix/var/nix/gcroots/arm-cache
LAB_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

lab_die() {
  echo "lab: error: $*" >&2
  exit 1
}

lab_log() {
  echo "lab: $*" >&2
}

# lab_check_hosts: LAB_HOSTS must be distinct names opi01..opi09.
lab_check_hosts() {
  local h seen=" "
  [[ -n "${LAB_HOSTS// /}" ]] || lab_die "LAB_HOSTS is empty"
  for h in $LAB_HOSTS; do
    [[ "$h" =~ ^opi0[1-9]$ ]] || lab_die "LAB_HOSTS: '$h' is not one of opi01..opi09"
    [[ "$seen" != *" $h "* ]] || lab_die "LAB_HOSTS: '$h' is listed twice"
    seen+="$h "
  done
}

lab_check_seconds() {
  local name
  for name in LAB_KERNEL_SECONDS LAB_HOST_SECONDS LAB_ACTIVATION_SECONDS; do
    [[ "${!name}" =~ ^[0-9]+$ ]] || lab_die "$name must be a whole number of seconds, got '${!name}'"
  done
}

# lab_addr opiNN -> 10.213.77.(10+NN)
lab_addr() {
  local n=${1#opi}
  echo "$LAB_NET_PREFIX.$((10 + 10#$n))"
}

# lab_start_sshd opiNN: sshd inside the host's namespaces (its holder must run).
# setsid: a caller killing our process group must not kill the lab.
lab_start_sshd() {
  local d=$LAB_DIR/$1
  setsid nsenter -t "$(<"$d/holder.pid")" -n -m -u /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$d/sshd.pid"
}

# lab_start_cache: the HTTP binary cache on hawk's lab address.
lab_start_cache() {
  setsid node "$LAB_SCRIPTS/cache-server.mjs" \
    --root "$LAB_DIR/cache" --listen "$LAB_HAWK_ADDR" --port "$LAB_CACHE_PORT" \
    --access-log "$LAB_DIR/cache-access.log" </dev/null >"$LAB_DIR/cache-server.log" 2>&1 &
  echo $! >"$LAB_DIR/cache-server.pid"
}
