#!/usr/bin/env bash
# npm run demo: the real staged pipeline on the lab, from nothing and back.
# Holds the lab lock, brings the lab up, prints the plan, deploys every host
# as the orchestrator user avl on hawk, prints the report, and tears the lab
# down, also when something fails.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: the lab needs root (network namespaces, containers): sudo npm run demo" >&2; exit 2; }

# One lab per machine: hold its lock for the whole demo.
exec 9>>/run/avalanche-lab.lock
flock -w 900 9 || { echo "demo: another lab session holds /run/avalanche-lab.lock" >&2; exit 1; }
export LAB_LOCK_HELD=1

export LAB_KERNEL_SECONDS=${LAB_KERNEL_SECONDS:-8}
trap 'bash "$HERE/down.sh"' EXIT
bash "$HERE/up.sh"
LAB_DIR=${LAB_DIR:-/var/lib/avalanche-lab}
as_avl=(bash "$HERE/as-coordinator.sh" hawk --)

cd "$ROOT"
echo
echo "== the plan (--dry-run), as avl on hawk =="
"${as_avl[@]}" node_modules/.bin/tsx scripts/deploy-all.ts --inventory "$LAB_DIR/hosts.json" --dry-run
echo
echo "== deploy-all on the lab (kernel build: ${LAB_KERNEL_SECONDS}s, standing in for ~40 min) =="
# Reports go to the lab's runs/ (avl may not write the repository); the last one is copied to .deploy/.
status=0
"${as_avl[@]}" node_modules/.bin/tsx scripts/deploy-all.ts --yes --inventory "$LAB_DIR/hosts.json" --report-dir "$LAB_DIR/runs/hawk" "$@" || status=$?
mkdir -p .deploy/runs
cp -f "$LAB_DIR"/runs/hawk/*.json .deploy/runs/ 2>/dev/null || true
echo
echo "where things were built (builds.log):"
sed 's/^/  /' "$LAB_DIR/shared/builds.log"
exit "$status"
