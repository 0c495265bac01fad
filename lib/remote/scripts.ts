/**
 * POSIX sh run on the targets for rollbacks. The scripts are constants and
 * every value reaches them as a positional argument, never spliced into the
 * text, so no host or path can change what they do. Arm, confirm and
 * rollback run as root (behind `sudo -n` for a non-root deploy user).
 */
import { type RemoteHost, remoteArgv } from './host.ts';

/**
 * Prints the profile's link (e.g. system-5-link), the path it resolves to,
 * and the running system; an empty line for what does not exist (GNU
 * `readlink -f` prints a missing last component as it is: a host never
 * deployed would seem to run "/run/current-system").
 */
export const PROBE_GENERATION = `
resolved() { [ -e "$1" ] && readlink -f "$1" 2>/dev/null; }
readlink "$1" 2>/dev/null || echo
resolved "$1" || echo
resolved "$2" || echo
`;

/** Reads what `target` runs (PROBE_GENERATION over ssh, as its deploy user): the deploy's first step on a host, and the doctor's target check. */
export function generationProbeArgv(target: RemoteHost, paths: { readonly profile: string; readonly currentSystem: string }): string[] {
  return remoteArgv(target, ['sh', '-c', PROBE_GENERATION, 'avalanche-probe', paths.profile, paths.currentSystem]);
}

/** The transient unit nixos-rebuild (bash-era and ng) activates in on systemd targets. */
export const ACTIVATION_UNIT = 'nixos-rebuild-switch-to-configuration.service';

/**
 * Runs `$toplevel/bin/switch-to-configuration "$goal"` as nixos-rebuild-ng
 * does on systemd: a transient unit named {@link ACTIVATION_UNIT}, waited
 * for (`--wait`), so that it finishes although the SSH session drops and the
 * watchdog knows when it ended; elsewhere directly. Exits with the
 * activation's status. Expects `toplevel` and `goal` set.
 */
const ACTIVATE_IN_UNIT = `
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
  exec systemd-run -E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER --collect --no-ask-password --pipe --quiet --service-type=exec \\
    --unit=${ACTIVATION_UNIT.replace(/\.service$/, '')} --wait "$toplevel/bin/switch-to-configuration" "$goal" </dev/null
fi
exec "$toplevel/bin/switch-to-configuration" "$goal" </dev/null
`;

/** Exit 4 before anything runs when the toplevel is not a NixOS system. */
const CHECK_SWITCHABLE = `
if [ ! -x "$toplevel/bin/switch-to-configuration" ]; then echo "$toplevel has no bin/switch-to-configuration: not a NixOS system" >&2; exit 4; fi
`;

/**
 * Switches the host to a generation it has (a rollback's activation): checks
 * that `<profile>-<N>-link` still resolves to the toplevel the rollback chose,
 * points the profile at it (for switch and boot, as `nix-env
 * --switch-generation` does: the link is relative, made beside and renamed
 * over), then activates it as {@link ACTIVATE_IN_UNIT} does.
 * Exit 4, before changing anything, when that generation is gone or is
 * another system now, or the toplevel has no switch-to-configuration; else
 * the activation's status.
 * Args: profile generation-number toplevel goal.
 */
export const SWITCH_TO_GENERATION = `
profile=$1 number=$2 toplevel=$3 goal=$4
link="$(basename "$profile")-$number-link"
if [ "$(readlink -f "$(dirname "$profile")/$link" 2>/dev/null)" != "$toplevel" ]; then
  echo "generation $number of $profile is not $toplevel any more (deleted, or made again?)" >&2; exit 4
fi${CHECK_SWITCHABLE}echo "generation $number: $toplevel"
if [ "$goal" != test ]; then
  ln -sfn "$link" "$profile.avalanche-tmp" && mv -T "$profile.avalanche-tmp" "$profile" || exit 1
fi${ACTIVATE_IN_UNIT}`;

/**
 * The direct deploy method's activation of a toplevel already in the
 * target's store (its profile set before, for switch and boot, by `nix-env
 * --set`): {@link ACTIVATE_IN_UNIT}, as nixos-rebuild-ng activates. Exit 4,
 * before anything runs, when the toplevel has no switch-to-configuration;
 * else the activation's status (switch-to-configuration's 4: switched, some
 * units failed). Run as root. Args: toplevel goal.
 */
export const ACTIVATE_TOPLEVEL = `
toplevel=$1 goal=$2${CHECK_SWITCHABLE}${ACTIVATE_IN_UNIT}`;

/** Who restored a generation, as written in the targets' rollback log. */
export const ROLLED_BACK_BY = { watchdog: 'watchdog', deploy: 'avalanche-deploy' } as const;

/**
 * What a host runs now and whether the watchdog restored this run's previous
 * generation: `watchdog-at=<epoch>` (when it did), `profile-link=`,
 * `profile-path=`, `current-system=`. Args: profile current marker canary.
 */
const REPORT_FUNCTION = `
report() {
  grep -F -- " ${ROLLED_BACK_BY.watchdog} $(basename "$4") " "$3" 2>/dev/null | tail -n 1 | sed 's/ .*//; s/^/watchdog-at=/'
  echo "profile-link=$(readlink "$1" 2>/dev/null)"
  echo "profile-path=$(readlink -f "$1" 2>/dev/null)"
  echo "current-system=$(readlink -f "$2" 2>/dev/null)"
}
`;

/**
 * Restores the previous generation: the profile link, then the running
 * system when it changed (`switch`, or `test` for a test deploy); when only
 * the profile was restored (a failed `boot`, or an activation that failed
 * before switching), the previous generation's `switch-to-configuration
 * boot`, so the boot menu's default is the previous generation again, not
 * the failed one. Logs `<epoch> <who> <canary name> <previous>` only when it
 * restored something. Each activation runs as a transient systemd unit where
 * systemd runs (as nixos-rebuild-ng activates), so it finishes even if the
 * SSH session that asked for it drops; elsewhere directly. Prints
 * `outcome=restored` or `outcome=unchanged`.
 * Args: profile current prev_link prev_current goal marker canary who.
 */
const ROLLBACK_FUNCTION = `
activate() {
  if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
    systemd-run --collect --no-ask-password --pipe --quiet --service-type=exec --wait \\
      --unit "avalanche-rollback-$3" "$1/bin/switch-to-configuration" "$2" </dev/null
  else
    "$1/bin/switch-to-configuration" "$2" </dev/null
  fi
}
rollback() {
  profile=$1 current=$2 prev_link=$3 prev_current=$4 goal=$5 marker=$6 canary=$7 who=$8
  rm -f "$canary"
  outcome=unchanged
  profile_restored=
  if [ -n "$prev_link" ] && [ "$(readlink "$profile" 2>/dev/null)" != "$prev_link" ]; then
    ln -sfn "$prev_link" "$profile.avalanche-tmp" && mv -T "$profile.avalanche-tmp" "$profile" || return 1
    outcome=restored profile_restored=1
  fi
  action=
  if [ -n "$prev_current" ] && [ "$(readlink -f "$current" 2>/dev/null)" != "$prev_current" ]; then
    action=switch
    [ "$goal" = test ] && action=test
    activate "$prev_current" "$action" "$(basename "$canary")" || return 1
    outcome=restored
  fi
  if [ -n "$profile_restored" ] && [ "$action" != switch ]; then
    activate "$(readlink -f "$profile")" boot "$(basename "$canary")-boot" || return 1
  fi
  if [ "$outcome" = restored ]; then
    mkdir -p "$(dirname "$marker")"
    echo "$(date +%s) $who $(basename "$canary") \${prev_current:-nothing}" >>"$marker"
  fi
  echo "outcome=$outcome"
}
`;

/**
 * The deploy's own rollback. After it, prints what the host runs now
 * (`profile-link=`, `profile-path=`, `current-system=`) and, when the
 * watchdog restored this run's generation first, `watchdog-at=<epoch>`:
 * the report must say who rolled back, and on what the host ended.
 * Args: as rollback(), without who.
 */
export const ROLLBACK = `${ROLLBACK_FUNCTION}${REPORT_FUNCTION}
status=0
rollback "$@" ${ROLLED_BACK_BY.deploy} || status=$?
report "$1" "$2" "$6" "$7"
exit "$status"
`;

/**
 * The magic-rollback watchdog (as deploy-rs does): waits for the activation
 * to change the running system, then for the canary to be removed by the
 * orchestrator (once a new SSH login worked and the checks held); otherwise
 * rolls back by itself. When no activation comes within arm_seconds it
 * gives up, putting back a profile the run had set (nothing else changed).
 * Args: profile current prev_link prev_current goal marker canary confirm_seconds arm_seconds.
 */
const WATCHDOG = `${ROLLBACK_FUNCTION}
confirm=$8 arm=$9
waited=0
while [ "$(readlink -f "$2" 2>/dev/null)" = "$4" ]; do
  [ -e "$7" ] || exit 0
  # No activation came (the run stopped or failed after the profile was set): put the profile back.
  if [ "$waited" -ge "$arm" ]; then rollback "$1" "$2" "$3" "$4" "$5" "$6" "$7" ${ROLLED_BACK_BY.watchdog} >/dev/null; exit 0; fi
  sleep 1; waited=$((waited + 1))
done
# The running system changes early in an activation: the countdown starts when
# the activation unit nixos-rebuild runs (both flavours, on systemd) has ended.
while [ -d /run/systemd/system ] && systemctl is-active --quiet ${ACTIVATION_UNIT} 2>/dev/null; do
  [ -e "$7" ] || exit 0
  [ "$waited" -ge "$arm" ] && break
  sleep 1; waited=$((waited + 1))
done
n=0
while [ "$n" -lt "$confirm" ]; do
  [ -e "$7" ] || exit 0
  sleep 1; n=$((n + 1))
done
[ -e "$7" ] || exit 0
rollback "$1" "$2" "$3" "$4" "$5" "$6" "$7" ${ROLLED_BACK_BY.watchdog}
`;

/** ARM's exit status when the watchdog could not be armed (nothing changed). */
export const NOT_ARMED = 80;
/** ARM's exit status when the watchdog is armed but the profile could not be set. */
export const PROFILE_NOT_SET = 81;

/**
 * Arms the watchdog so that it survives the SSH session that started it and
 * an sshd restart during activation: a transient systemd unit where systemd
 * runs, else a detached session. Then, when given a profile, points it at
 * the toplevel (`nix-env -p <profile> --set`, a new generation, as
 * nixos-rebuild does): the direct method's next step in the same round trip,
 * only once the watchdog that reverts it is armed. Exit {@link NOT_ARMED}
 * when the watchdog could not be armed, {@link PROFILE_NOT_SET} when the
 * profile could not be set (armed).
 * Args: profile toplevel (both empty: no profile to set) watchdog-script,
 * then the watchdog's own args (the canary is the 7th).
 */
const ARM = `
profile=$1 toplevel=$2 script=$3; shift 3
canary=$7
mkdir -p "$(dirname "$canary")" && : >"$canary" || exit ${NOT_ARMED}
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
  systemd-run --quiet --collect --unit "avalanche-watchdog-$(basename "$canary")" /bin/sh -c "$script" avalanche-watchdog "$@" || { rm -f "$canary"; exit ${NOT_ARMED}; }
else
  setsid /bin/sh -c "$script" avalanche-watchdog "$@" </dev/null >/dev/null 2>&1 &
fi
[ -z "$profile" ] || nix-env -p "$profile" --set "$toplevel" || exit ${PROFILE_NOT_SET}
`;

/**
 * Removes the canary. Exit 3 when it was already gone — the watchdog rolled
 * back, or gave up waiting, or its rollback failed — after printing what the
 * host runs now (as ROLLBACK does): a late confirmation must not guess.
 * Args: canary marker profile current.
 */
export const CONFIRM = `${REPORT_FUNCTION}
if [ ! -e "$1" ]; then report "$3" "$4" "$2" "$1"; exit 3; fi
rm -f "$1"
`;

/** The watchdog's arming with its `args`; `thenSetProfile`: then the profile in the same script (see ARM). */
export function armArgs(args: readonly string[], thenSetProfile?: { readonly profile: string; readonly toplevel: string }): string[] {
  return ['sh', '-c', ARM, 'avalanche-arm', thenSetProfile?.profile ?? '', thenSetProfile?.toplevel ?? '', WATCHDOG, ...args];
}

/** What ROLLBACK printed: key=value lines. */
export interface RollbackReport {
  readonly outcome?: 'restored' | 'unchanged' | undefined;
  /** seconds since the epoch at which the watchdog restored this run's previous generation */
  readonly watchdogAt?: number | undefined;
  readonly profileLink?: string | undefined;
  readonly profilePath?: string | undefined;
  readonly currentSystem?: string | undefined;
}

/** The `key=value` lines the scripts print, by key (the last value wins). */
function keyValues(stdout: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) fields.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return fields;
}

export function parseRollbackReport(stdout: string): RollbackReport {
  const fields = keyValues(stdout);
  const outcome = fields.get('outcome');
  const watchdogAt = Number(fields.get('watchdog-at'));
  return {
    outcome: outcome === 'restored' || outcome === 'unchanged' ? outcome : undefined,
    watchdogAt: Number.isFinite(watchdogAt) && watchdogAt > 0 ? watchdogAt : undefined,
    profileLink: fields.get('profile-link'),
    profilePath: fields.get('profile-path'),
    currentSystem: fields.get('current-system'),
  };
}

/** What a host ran before the deploy, to go back to (PROBE_GENERATION's output). */
export interface Generation {
  /** the profile's link, e.g. system-5-link; empty when the host had no profile */
  readonly profileLink: string;
  readonly profilePath: string;
  /** the running system's store path; empty when unknown */
  readonly currentSystem: string;
}

export function parseGeneration(stdout: string): Generation {
  const [profileLink = '', profilePath = '', currentSystem = ''] = stdout.split('\n').map((l) => l.trim());
  return { profileLink, profilePath, currentSystem };
}

/**
 * Where --reboot leaves its marker on a target: in /run, a fresh tmpfs on
 * every boot (NixOS, and a systemd-nspawn container alike), so the marker
 * gone proves the host booted again. The kernel's boot_id alone does not
 * tell it honestly everywhere: in a container it may be the host machine's.
 */
export const REBOOT_MARKER_DIR = '/run/avalanche-deploy';

/**
 * Leaves the marker (holding the current boot_id) and asks systemd to reboot;
 * prints `boot-id=<id>` and `marker=<path>` first, so that the orchestrator
 * knows the reboot was asked for even when the ssh session then ends with
 * 255 as sshd stops (expected). Run as root. Exit 1 when the marker cannot
 * be written (nothing was asked). --no-block: the session can end before
 * systemd stops sshd, so its exit status usually comes back.
 * Args: marker.
 */
export const REBOOT = `
marker=$1
mkdir -p "$(dirname "$marker")" && cat /proc/sys/kernel/random/boot_id >"$marker" || exit 1
echo "boot-id=$(cat "$marker")"
echo "marker=$marker"
exec systemctl --no-block reboot
`;

/**
 * What a host that was asked to reboot says now, over a new connection, as
 * its deploy user: `marker=present` (the same boot: it has not gone down
 * yet, or the connection merely dropped) or `marker=gone` (it booted
 * again), `boot-id=`, `booted-system=` and `current-system=` (store paths,
 * empty when absent: NixOS links /run/booted-system in stage 2) and
 * `state=` (systemctl is-system-running: `starting` while it boots).
 * Args: marker booted-system current-system.
 */
export const BOOT_CHECK = `
resolved() { [ -e "$1" ] && readlink -f "$1" 2>/dev/null; }
if [ -e "$1" ]; then echo marker=present; else echo marker=gone; fi
echo "boot-id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
echo "booted-system=$(resolved "$2")"
echo "current-system=$(resolved "$3")"
echo "state=$(systemctl is-system-running 2>/dev/null)"
`;

/** What BOOT_CHECK (and REBOOT's first lines) printed. */
export interface BootCheck {
  /** true: the marker is gone, the host booted again; false: the same boot; undefined: not said */
  readonly rebooted?: boolean | undefined;
  readonly bootId?: string | undefined;
  readonly bootedSystem?: string | undefined;
  readonly currentSystem?: string | undefined;
  /** systemctl is-system-running's word */
  readonly state?: string | undefined;
  /** REBOOT: the marker it left */
  readonly marker?: string | undefined;
}

export function parseBootCheck(stdout: string): BootCheck {
  const fields = keyValues(stdout);
  const marker = fields.get('marker');
  const nonEmpty = (key: string) => fields.get(key) || undefined;
  return {
    rebooted: marker === 'gone' ? true : marker === 'present' ? false : undefined,
    bootId: nonEmpty('boot-id'),
    bootedSystem: nonEmpty('booted-system'),
    currentSystem: nonEmpty('current-system'),
    state: nonEmpty('state'),
    marker: marker === 'gone' || marker === 'present' ? undefined : nonEmpty('marker'),
  };
}
