/**
 * POSIX sh run on the targets for rollbacks. The scripts are constants and
 * every value reaches them as a positional argument, never spliced into the
 * text, so no host or path can change what they do.
 */

/** Prints the profile's link (e.g. system-5-link), the path it resolves to, and the running system. */
export const PROBE_GENERATION = `
readlink "$1" 2>/dev/null || echo
readlink -f "$1" 2>/dev/null || echo
readlink -f "$2" 2>/dev/null || echo
`;

/**
 * Restores the previous generation: the profile link, then the running
 * system when it changed. Args: profile current prev_link prev_current goal marker canary.
 */
const ROLLBACK_FUNCTION = `
rollback() {
  profile=$1 current=$2 prev_link=$3 prev_current=$4 goal=$5 marker=$6 canary=$7
  rm -f "$canary"
  if [ -n "$prev_link" ] && [ "$(readlink "$profile" 2>/dev/null)" != "$prev_link" ]; then
    ln -sfn "$prev_link" "$profile.avalanche-tmp" && mv -T "$profile.avalanche-tmp" "$profile" || return 1
  fi
  if [ -n "$prev_current" ] && [ "$(readlink -f "$current" 2>/dev/null)" != "$prev_current" ]; then
    action=switch
    [ "$goal" = test ] && action=test
    "$prev_current/bin/switch-to-configuration" "$action" || return 1
  fi
  mkdir -p "$(dirname "$marker")"
  echo "$(date +%s) rolled back to \${prev_current:-nothing}" >>"$marker"
}
`;

export const ROLLBACK = `${ROLLBACK_FUNCTION}
rollback "$@"
`;

/**
 * The magic-rollback watchdog (as deploy-rs does): waits for the activation
 * to change the running system, then for the canary to be removed by the
 * orchestrator over a new SSH connection; otherwise rolls back by itself.
 * Args: profile current prev_link prev_current goal marker canary confirm_seconds arm_seconds.
 */
const WATCHDOG = `${ROLLBACK_FUNCTION}
confirm=$8 arm=$9
waited=0
while [ "$(readlink -f "$2" 2>/dev/null)" = "$4" ]; do
  [ -e "$7" ] || exit 0
  if [ "$waited" -ge "$arm" ]; then rm -f "$7"; exit 0; fi
  sleep 1; waited=$((waited + 1))
done
n=0
while [ "$n" -lt "$confirm" ]; do
  [ -e "$7" ] || exit 0
  sleep 1; n=$((n + 1))
done
[ -e "$7" ] || exit 0
rollback "$1" "$2" "$3" "$4" "$5" "$6" "$7"
`;

/**
 * Arms the watchdog so that it survives the SSH session that started it:
 * a transient systemd unit where systemd runs, else a detached session.
 * Args: watchdog-script canary, then the watchdog's own args.
 */
const ARM = `
script=$1; shift
canary=$7
mkdir -p "$(dirname "$canary")" && : >"$canary" || exit 1
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
  exec systemd-run --quiet --collect --unit "avalanche-watchdog-$(basename "$canary")" /bin/sh -c "$script" avalanche-watchdog "$@"
fi
setsid /bin/sh -c "$script" avalanche-watchdog "$@" </dev/null >/dev/null 2>&1 &
`;

/** Removes the canary; exit 3 when it was already gone (the target rolled back or gave up). */
export const CONFIRM = `
[ -e "$1" ] || exit 3
rm -f "$1"
`;

export function armArgs(args: readonly string[]): string[] {
  return ['sh', '-c', ARM, 'avalanche-arm', WATCHDOG, ...args];
}
