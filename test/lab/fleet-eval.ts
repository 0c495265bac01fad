/**
 * fleet-eval.ts INVENTORY — the lab fleet's one evaluation, as the
 * orchestrator does it: the inventory loaded and checked by
 * lib/inventory/load.ts, the argv from lib/nix/commands.ts
 * evaluateToplevelsArgv (one `nix eval --json` for every host's toplevel:
 * drvPath and outPath), run here with the caller's Nix. Also reads each
 * host's `nixpkgs.hostPlatform.system` from the flake and compares it with the
 * inventory's `system` (a host the flake builds for another system than the
 * inventory says would be built on the wrong builders).
 *
 * Run by fleet-check.sh as avl on a coordinator (hawk or calypso). Prints one
 * JSON object on stdout: { seconds, hosts: { <host>: { system, drv, out } } };
 * exits 1 with the problems on stderr when a host is missing, its derivation
 * is not its toplevel, or the systems disagree.
 */
import { execFileSync } from 'node:child_process';
import { loadInventory } from '../../lib/inventory/load.ts';
import { evaluateToplevelsArgv } from '../../lib/nix/commands.ts';

const path = process.argv[2];
if (!path) {
  console.error('usage: fleet-eval.ts INVENTORY');
  process.exit(2);
}
const inventory = await loadInventory(path);
const hosts = Object.keys(inventory.hosts);

const nix = (argv: readonly string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 120_000 });

const started = process.hrtime.bigint();
const evaluated = JSON.parse(nix(evaluateToplevelsArgv(inventory, inventory.flake, hosts))) as Record<string, { drv: string; out: string }>;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
// The flake's own idea of each host's system (what the stand-in's re-exec check reads too).
const systems = JSON.parse(
  nix(['nix', 'eval', '--json', `${inventory.flake}#nixosConfigurations`, '--apply',
    `c: builtins.listToAttrs (map (name: { inherit name; value = c.\${name}.config.nixpkgs.hostPlatform.system; }) [ ${hosts.map((h) => JSON.stringify(h)).join(' ')} ])`]),
) as Record<string, string>;

const problems: string[] = [];
const out: Record<string, { system: string; drv: string; out: string }> = {};
for (const host of hosts) {
  const e = evaluated[host];
  if (!e) {
    problems.push(`${host}: not evaluated`);
    continue;
  }
  if (!/^\/nix\/store\/[a-z0-9]{32}-nixos-system-.+\.drv$/.test(e.drv) || !e.drv.includes(`-nixos-system-${host}-`)) problems.push(`${host}: ${e.drv} is not its toplevel's derivation`);
  if (systems[host] !== inventory.hosts[host]!.system) problems.push(`${host}: the flake builds it for ${systems[host]}, the inventory says ${inventory.hosts[host]!.system}`);
  out[host] = { system: systems[host]!, drv: e.drv, out: e.out };
}
if (problems.length) {
  for (const p of problems) console.error(`fleet-eval: ${p}`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ seconds, hosts: out })}\n`);
