import { describe, expect, it } from 'vitest';
import { ZxExecutor } from '../../lib/exec/zx-executor.ts';
import { parseRebuildHelp, probeRebuildTool } from '../../lib/nix/nixos-rebuild.ts';
import { fixture } from '../helpers/fixtures.ts';
import { runPipeline } from '../helpers/pipeline.ts';

describe('which nixos-rebuild this is, from its --help', () => {
  it('tells the bash-era tool (a man page, overstrike and all) from nixos-rebuild-ng (argparse)', () => {
    const bash = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/bash-era.help'));
    expect(bash.flavour).toBe('bash');
    expect(bash.flags).toEqual(expect.arrayContaining(['--fast', '--use-remote-sudo', '--target-host', '--use-substitutes']));
    expect(bash.flags).not.toContain('--sudo');
    expect(bash.flags).not.toContain('--no-reexec');
    const ng = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/ng.help'));
    expect(ng.flavour).toBe('ng');
    expect(ng.flags).toEqual(expect.arrayContaining(['--fast', '--no-reexec', '--sudo', '--store-path']));
  });

  it('says so when the help is nothing it knows', () => {
    expect(parseRebuildHelp(['x'], 'usage: something else --foo').flavour).toBe('unknown');
  });

  it('a command that does not exist is "not found", and preflight fails on it before anything is built', async () => {
    const tool = await probeRebuildTool(new ZxExecutor(), ['/nonexistent/nixos-rebuild'], 5_000);
    expect(tool).toMatchObject({ found: false, flavour: 'unknown' });
    const { result, executor } = await runPipeline([], { plan: { rebuildTool: tool } });
    expect(result.error!.message).toContain('/nonexistent/nixos-rebuild: not found');
    expect(executor.calls.some((c) => c.argv.includes('build'))).toBe(false);
  });

  it('preflight fails on extraArgs the tool does not accept, naming them', async () => {
    const bash = parseRebuildHelp(['nixos-rebuild'], fixture('nixos-rebuild/bash-era.help'));
    const { result, executor } = await runPipeline([], {
      plan: { rebuildTool: bash },
      editInventory: (json) => (json.nixosRebuild.extraArgs = ['--elevate']),
    });
    expect(result.outcome).toBe('failed');
    expect(result.error!.message).toContain('nixosRebuild.extraArgs: --elevate is not an option of nixos-rebuild: bash-era nixos-rebuild');
    expect(executor.calls.some((c) => c.argv.includes('build'))).toBe(false);
  });
});

describe('the lab stand-ins\' help texts, read as the real tools\' would be', () => {
  it('tells each flavour by the flags only it has', async () => {
    const { execFileSync } = await import('node:child_process');
    const { repoRoot } = await import('../helpers/fixtures.ts');
    const help = (mode: string) => execFileSync(`${repoRoot}test/lab/bin/${mode}/nixos-rebuild`, ['--help'], { encoding: 'utf8' });
    const bash = parseRebuildHelp(['nixos-rebuild'], help('bash-era'));
    expect([bash.flavour, bash.flags.includes('--fast'), bash.flags.includes('--use-remote-sudo'), bash.flags.includes('--sudo')]).toEqual(['bash', true, true, false]);
    const ng = parseRebuildHelp(['nixos-rebuild'], help('ng'));
    expect([ng.flavour, ng.flags.includes('--no-reexec'), ng.flags.includes('--sudo'), ng.flags.includes('--store-path')]).toEqual(['ng', true, true, true]);
  });

  it('an ng whose --help is its man page (as packaged on NixOS) is still ng', () => {
    const man = 'NIXOS-REBUILD(8)\n\nSYNOPSIS\n  nixos-rebuild [--verbose] [--sudo] [--no-reexec] [--target-host HOST]\n';
    expect(parseRebuildHelp(['nixos-rebuild'], man).flavour).toBe('ng');
  });
});
