#!/usr/bin/env bash
# npm run demo: the real staged pipeline on the lab, from nothing and back.
# Brings the lab up, prints the plan, deploys every host, prints the report,
# and tears the lab down, also when something fails.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: the lab needs root (network namespaces): sudo npm run demo" >&2; exit 2; }

export LAB_KERNEL_SECONDS=${LAB_KERNEL_SECONDS:-8}
trap 'bash "$HERE/down.sh"' EXIT
bash "$HERE/up.sh"
# shellcheck source=/dev/null
. "${LAB_DIR:-/var/lib/avalanche-lab}/env.sh"

cd "$ROOT"
echo
echo "== the plan (--dry-run) =="
npx tsx scripts/deploy-all.ts --inventory "$LAB_DIR/hosts.json" --dry-run
echo
echo "== deploy-all on the lab (kernel build: ${LAB_KERNEL_SECONDS}s, standing in for ~40 min) =="
npx tsx scripts/deploy-all.ts --inventory "$LAB_DIR/hosts.json" --report-dir .deploy/runs "$@"
echo
echo "where things were built (builds.log):"
sed 's/^/  /' "$LAB_DIR/builds.log"
