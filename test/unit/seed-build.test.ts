/**
 * The seed-build stage reads Nix's internal-json log: a failure is told
 * from the parsed messages and the failed derivation's last log lines, and
 * a derivation built anywhere but on the seed fails the stage.
 */
import { userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { StageError } from '../../lib/errors.ts';
import { FIXTURE_TOPLEVEL } from '../helpers/fixtures.ts';
import type { CommandSpec } from '../../lib/exec/types.ts';
import { buildsOneToplevel, FIXTURE_DRV, FLEET_HOSTS, runPipeline, runPipelinePrinted } from '../helpers/pipeline.ts';
import type { ScriptedResponse } from '../helpers/recording-executor.ts';

const KERNEL = '/nix/store/vv8yjil9rfc1l65naywzx34q57jbyvhz-linux-6.1-opi.drv';
const TOPLEVEL_DRV = '/nix/store/2zm4rahx77g4c80hn2qvx802dnpva6cn-nixos-system-opi03.drv';
const OPI03 = 'ssh://nix-builder@opi03.internal';
const OPI01 = 'ssh://nix-builder@opi01.internal';
/** Where the head start may build, as its failure names it: the seed alone. */
const SEED_ONLY = `opi03 (${OPI03})`;
const BUILT: string = JSON.stringify(FLEET_HOSTS.map(() => ({ drvPath: FIXTURE_DRV, outputs: { out: FIXTURE_TOPLEVEL } })));
const RESTRICTED =
  "\u001b[35;1mwarning:\u001b[0m ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user";

// Hand-written in Nix 2.26's shape (src/libutil/logging.cc JSONLogger: keys sorted, "parent",
// ids (pid << 32) + n; error messages with raw_msg and a position), with its many progress records.
let next = 0n;
const newId = () => String((4_194_000n << 32n) + ++next);
const msg = (level: number, text: string) =>
  `@nix {"action":"msg","column":null,"file":null,"level":${level},"line":null,"msg":${JSON.stringify(text)},"raw_msg":${JSON.stringify(text.replace(/^.*?(error|warning):\u001b\[0m /, ''))}}`;
const start = (id: string, drv: string, machine: string) =>
  `@nix {"action":"start","fields":["${drv}","${machine}",1,1],"id":${id},"level":3,"parent":0,"text":"building '${drv}'${machine ? ` on '${machine}'` : ''}","type":105}`;
const logLine = (id: string, line: string) => `@nix {"action":"result","fields":[${JSON.stringify(line)}],"id":${id},"type":101}`;
const progress = (id: string, n: number) => [
  `@nix {"action":"result","fields":[${n},1200,1,0],"id":${id},"type":105}`,
  `@nix {"action":"result","fields":[101,${n}],"id":${id},"type":106}`,
];

/** Answers the head start (the build of opi01's toplevel, which builds the kernel); the build of all that follows finds everything built. */
const headStart = (response: ScriptedResponse) => (spec: CommandSpec) => (buildsOneToplevel(spec) ? response : undefined);

/** Answers the seed build with these stderr lines (also as the command's captured stderr, as the executor keeps it). */
function nixBuild(lines: readonly string[], exitCode = 0): ScriptedResponse {
  return { exitCode, lines, stderr: `${lines.join('\n')}\n`, stdout: exitCode === 0 ? BUILT : '' };
}

function failingRemoteBuild226(): string[] {
  const top = newId();
  const build = newId();
  return [
    `@nix {"action":"start","id":${top},"level":0,"parent":0,"text":"","type":104}`,
    start(build, KERNEL, OPI03),
    `@nix {"action":"result","fields":["unpackPhase"],"id":${build},"type":104}`,
    ...Array.from({ length: 400 }, (_, i) => [...progress(top, i), logLine(build, `\u001b[32m  CC\u001b[0m      drivers/file${i}.o`)]).flat(),
    logLine(build, 'drivers/gpu/drm/panfrost/panfrost_drv.c:12: error: unknown type name \u001b[1m‘u64’\u001b[0m'),
    logLine(build, 'make: *** [Makefile:1997: drivers] Error 2'),
    ...Array.from({ length: 300 }, (_, i) => progress(top, 400 + i)).flat(),
    msg(0, `\u001b[31;1merror:\u001b[0m build of '${KERNEL}' on '${OPI03}' failed: builder for '${KERNEL}' failed with exit code 3`),
    ...Array.from({ length: 100 }, (_, i) => progress(top, 700 + i)).flat(),
    `@nix {"action":"stop","id":${build}}`,
    msg(0, `\u001b[31;1merror:\u001b[0m builder for '${KERNEL}' failed with exit code 1`),
    msg(0, `\u001b[31;1merror:\u001b[0m 1 dependencies of derivation '${TOPLEVEL_DRV}' failed to build`),
  ];
}

describe('seed build: a failed build is told from the parsed log', () => {
  it('shows the builder\'s own message and exit status, and the failed derivation\'s last log lines, never raw records', async () => {
    const { result } = await runPipeline([headStart(nixBuild(failingRemoteBuild226(), 1))]);
    expect(result.error).toBeInstanceOf(StageError);
    const lines = result.error!.message.split('\n');
    expect(lines[0]).toBe('seed build of aarch64-linux on opi03 failed: nix exited with 1');
    expect(lines[1]).toMatch(/^ {2}\$ NIX_SSHOPTS=.* nix --log-format internal-json build /);
    expect(lines.slice(2).every((l) => l.startsWith('  | '))).toBe(true);
    const shown = lines.slice(2).map((l) => l.slice(4));
    expect(shown.slice(0, 4)).toEqual([
      `error: build of '${KERNEL}' on '${OPI03}' failed: builder for '${KERNEL}' failed with exit code 3`,
      `error: builder for '${KERNEL}' failed with exit code 1`,
      `error: 1 dependencies of derivation '${TOPLEVEL_DRV}' failed to build`,
      `linux-6.1-opi on ${OPI03}, last 20 log lines:`,
    ]);
    expect(shown.slice(-2)).toEqual([
      "  drivers/gpu/drm/panfrost/panfrost_drv.c:12: error: unknown type name ‘u64’",
      '  make: *** [Makefile:1997: drivers] Error 2',
    ]);
    expect(shown).toHaveLength(24);
    expect(result.error!.message).not.toMatch(/@nix|\u001b/);
    expect(result.report.builds).toMatchObject([{ drvPath: KERNEL, machine: OPI03 }]);
  });

  it('a failure after the daemon ignored --builders also says how to fix that', async () => {
    const lines = [msg(0, RESTRICTED), msg(0, "\u001b[31;1merror:\u001b[0m unable to start any build; either increase 'max-jobs' or enable remote builds.")];
    const { result } = await runPipeline([headStart(nixBuild(lines, 1))]);
    expect(result.error!.message).toContain("  | error: unable to start any build; either increase 'max-jobs' or enable remote builds.");
    expect((result.error as StageError).hints).toEqual([
      `add ${userInfo().username} to trusted-users in the coordinator's nix.conf (the daemon ignores --builders from untrusted users)`,
    ]);
  });
});

describe('seed build: every derivation must be built on the seed', () => {
  it('fails when a daemon that ignored --builders built on another machine, naming derivation, machine and fix', async () => {
    const build = newId();
    // A machine of the daemon's own machines file, none of the builders --builders names.
    const theirs = 'ssh://nix-builder@spare.internal';
    const lines = [msg(0, RESTRICTED), start(build, KERNEL, theirs), logLine(build, 'building')];
    const { result } = await runPipeline([headStart(nixBuild(lines))]);
    expect(result.report.stages.find((s) => s.name === 'seed-build')?.outcome).toBe('failed');
    expect(result.error!.message).toBe(`built elsewhere than on ${SEED_ONLY}: linux-6.1-opi (${KERNEL}) on ${theirs}`);
    expect((result.error as StageError).hints).toEqual([
      `add ${userInfo().username} to trusted-users in the coordinator's nix.conf (the daemon ignores --builders from untrusted users)`,
    ]);
    // "built on" is what the log said, not what the plan wanted.
    expect(result.report.builds).toMatchObject([{ drvPath: KERNEL, machine: theirs }]);
  });

  it('without the warning (daemons before Nix 2.22 log it at debug level) it names both causes', async () => {
    const lines = [start(newId(), KERNEL, OPI03), start(newId(), TOPLEVEL_DRV, '')];
    const { result } = await runPipeline([headStart(nixBuild(lines))]);
    expect(result.error!.message).toBe(`built elsewhere than on ${SEED_ONLY}: nixos-system-opi03 (${TOPLEVEL_DRV}) on this machine`);
    const hints = (result.error as StageError).hints;
    expect(hints).toHaveLength(1);
    expect(hints[0]).toMatch(/--max-jobs 0/);
    expect(hints[0]).toMatch(new RegExp(`add ${userInfo().username} to trusted-users`));
  });

  it('passes when everything was built on the seed, as Nix names it', async () => {
    const lines = [start(newId(), KERNEL, OPI03), start(newId(), TOPLEVEL_DRV, `${OPI03}?remote-store=local`)];
    const { result } = await runPipeline([headStart(nixBuild(lines))]);
    expect(result.error).toBeUndefined();
    expect(result.report.builds.map((b) => b.machine)).toEqual([OPI03, `${OPI03}?remote-store=local`]);
  });
});

describe('seed build: when Nix said nothing in its log', () => {
  it('shows what came out that is not a log record', async () => {
    const { result } = await runPipeline([headStart({ exitCode: 127, stderr: 'sh: 1: nix: not found\n' })]);
    expect(result.error!.message.split('\n').at(-1)).toBe('  | sh: 1: nix: not found');
  });
});

describe('seed build: what the operator sees leaves out Nix\'s noise', () => {
  // Nix's copyPaths: an actCopyPaths (103) activity at lvlInfo, also when there is nothing to copy (as Nix 2.8 prints it).
  const copying = (n: number) => `@nix {"action":"start","id":${900 + n},"level":3,"text":"copying ${n} paths","type":103}`;

  it('no "copying 0 paths" in the live output; what was copied stays', async () => {
    const lines = [start(newId(), KERNEL, OPI03), copying(0), copying(1), copying(0), 'copying 0 paths...'];
    const { result, output } = await runPipelinePrinted([headStart(nixBuild(lines))]);
    expect(result.error).toBeUndefined();
    expect(output).toContain(`building linux-6.1-opi on ${OPI03}`);
    expect(output).toContain('copying 1 paths');
    expect(output).not.toContain('copying 0 paths');
  });

  it('a failure that left no log shows neither nix build\'s JSON result nor "copying 0 paths"', async () => {
    const { result } = await runPipeline([headStart({ exitCode: 1, lines: [copying(0)], stderr: `${copying(0)}\ncopying 0 paths...\n`, stdout: `${BUILT}\n` })]);
    const message = result.error!.message;
    expect(message.split('\n')[0]).toBe('seed build of aarch64-linux on opi03 failed: nix exited with 1');
    expect(message).not.toContain('"drvPath"');
    expect(message).not.toContain('copying 0 paths');
  });
});
