#!/usr/bin/env bash
# fleet-check.sh [--build LABEL] — sanity check of the lab's whole fleet on a
# lab that is up (run as root, under the lab lock like any lab session).
#
# Always: on each coordinator (hawk, calypso), as avl, the orchestrator's own
# evaluation of its fleet inventory (hosts-fleet.json / hosts-fleet-calypso.json:
# the opis and calypso) through fleet-eval.ts — lib/inventory/load.ts and
# lib/nix/commands.ts evaluateToplevelsArgv, one `nix eval --json` of every
# toplevel's drvPath and outPath — and each host's system in the flake against
# the inventory's.
#
# --build LABEL: then writes generation LABEL.hawk (flake.sh) and builds it as
# the lead's multi-system run would, from hawk: the x86_64 toplevels natively
# (--max-jobs 1 --builders ''), the aarch64 ones on the seed (--max-jobs 0,
# --builders <the seed's machines line>), both `nix build`s at once; then
# generation LABEL.calypso from calypso: x86_64 on hawk (--builders
# 'ssh://avl@10.213.77.1 x86_64-linux - 1 1 - - -' --max-jobs 0), aarch64 on
# the seed. Prints each build's host and seconds (builds.log) and whether the
# x86_64 and aarch64 kernels overlapped. Leaves the flake at LABEL.calypso.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

usage() {
  echo "usage: fleet-check.sh [--build LABEL]" >&2
  exit 2
}
label=""
while (($#)); do
  case "$1" in
    --build) (($# >= 2)) || usage; label=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "fleet-check.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $EUID -eq 0 ]] || lab_die "fleet-check.sh must run as root"
[[ -f "$LAB_DIR/env.sh" && -f "$LAB_DIR/hosts-fleet.json" ]] || lab_die "no lab (with fleet inventories) is up in $LAB_DIR"
# shellcheck source=/dev/null
. "$LAB_DIR/env.sh" # LAB_HOSTS as the lab came up

tsx=$LAB_REPO/node_modules/.bin/tsx
as() { bash "$HERE/as-coordinator.sh" "$@"; }
inventory_of() { [[ "$1" == hawk ]] && echo "$LAB_DIR/hosts-fleet.json" || echo "$LAB_DIR/hosts-fleet-calypso.json"; }

# --- the evaluation, as the orchestrator does it -------------------------------
for c in hawk calypso; do
  json=$(cd "$LAB_REPO" && as "$c" -- "$tsx" "$HERE/fleet-eval.ts" "$(inventory_of "$c")") ||
    lab_die "$c: the fleet's evaluation failed"
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const r = JSON.parse(process.argv[1]);
    const hosts = Object.entries(r.hosts).map(([h, v]) => `${h} (${v.system})`).join(", ");
    console.log(`fleet-check: ${process.argv[2]}: evaluated ${Object.keys(r.hosts).length} toplevels in ${r.seconds.toFixed(2)} s: ${hosts}`);
  ' "$json" "$c"
done
[[ -n "$label" ]] || exit 0

# --- builds: x86_64 and aarch64 at once ----------------------------------------
[[ "$label" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || lab_die "--build '$label': letters, digits and . _ + - only"
flake=path:$LAB_DIR/flake
attr() { echo "$flake#nixosConfigurations.$1.config.system.build.toplevel"; }
# The inventory's seed as a machines line (its builder user, key and host key).
seed_line() { # inventory
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const i = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    const h = i.hosts[i.seed], b = h.builder;
    console.log([`ssh://${b.user}@${h.address}`, h.system, b.sshKey, b.maxJobs, b.speedFactor, b.supportedFeatures.join(",") || "-", "-", b.hostKey].join(" "));
  ' "$1"
}
hosts_of() { # inventory system
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const i = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    console.log(Object.entries(i.hosts).filter(([, h]) => h.system === process.argv[2]).map(([n]) => n).join(" "));
  ' "$1" "$2"
}

build_on() { # coordinator generation
  local c=$1 generation=$2 inv x86 arm x86_builders rc_x=0 rc_a=0 pid_x pid_a
  inv=$(inventory_of "$c")
  LAB_HOSTS=$LAB_HOSTS bash "$HERE/flake.sh" --generation "$generation" >/dev/null
  x86=() arm=()
  for h in $(hosts_of "$inv" x86_64-linux); do x86+=("$(attr "$h")"); done
  for h in $(hosts_of "$inv" aarch64-linux); do arm+=("$(attr "$h")"); done
  if [[ "$c" == hawk ]]; then x86_builders=(--max-jobs 1 --builders '')
  else x86_builders=(--max-jobs 0 --builders "ssh://$LAB_USER@$LAB_HAWK_ADDR x86_64-linux - 1 1 - - -"); fi
  # Each nix build's wall time, from its start to its exit (bash 5 EPOCHREALTIME).
  timed() { # log argv...
    local log=$1 start rc=0
    shift
    start=$EPOCHREALTIME
    "$@" >"$log" 2>&1 || rc=$?
    echo "wall $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s" >>"$log"
    return "$rc"
  }
  timed "$LAB_DIR/fleet-check-$c-x86.log" as "$c" -- nix build --no-link "${x86_builders[@]}" "${x86[@]}" &
  pid_x=$!
  timed "$LAB_DIR/fleet-check-$c-arm.log" as "$c" -- nix build --no-link --max-jobs 0 --builders "$(seed_line "$inv")" \
    --option builders-use-substitutes true "${arm[@]}" &
  pid_a=$!
  wait "$pid_x" || rc_x=$?
  wait "$pid_a" || rc_a=$?
  ((rc_x == 0)) || { cat "$LAB_DIR/fleet-check-$c-x86.log" >&2; lab_die "$c: the x86_64 build failed"; }
  ((rc_a == 0)) || { cat "$LAB_DIR/fleet-check-$c-arm.log" >&2; lab_die "$c: the aarch64 build failed"; }
  echo "fleet-check: $c: generation $generation: x86_64 nix build $(tail -n1 "$LAB_DIR/fleet-check-$c-x86.log" | cut -d' ' -f2-)," \
    "aarch64 nix build $(tail -n1 "$LAB_DIR/fleet-check-$c-arm.log" | cut -d' ' -f2-) (at the same time); builds.log:"
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const lines = require("node:fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean)
      .map((l) => l.split(" ")).filter((f) => f[2] === process.argv[2])
      .map(([host, name, , start, end]) => ({ host, name, start: Number(start), end: Number(end) }));
    for (const b of lines) console.log(`  ${b.host.padEnd(8)} ${b.name.padEnd(44)} ${(b.end - b.start).toFixed(2)} s`);
    const x = lines.find((b) => b.name.startsWith("linux-x86_64-")), a = lines.find((b) => /^linux-[0-9]/.test(b.name));
    if (x && a) console.log(`  kernels ${x.start < a.end && a.start < x.end ? "overlapped" : "did not overlap"} (x86_64 on ${x.host}, aarch64 on ${a.host})`);
  ' "$LAB_DIR/shared/builds.log" "$generation"
}
build_on hawk "$label.hawk"
build_on calypso "$label.calypso"
