/**
 * The one place that knows the shape of hosts.json. Everything that reaches a
 * command line (names, addresses, users, attribute paths, flake references)
 * is restricted to characters that cannot be read as shell or Nix syntax.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';

export const HOST_PLACEHOLDER = '<host>';

const hostName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a host name: lowercase letters, digits and "-", at most 63 characters');
const userName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a POSIX user name');

/**
 * A machine's address, parsed once from hosts.json: a DNS name, an IPv4
 * address, or an IPv6 address (written with or without brackets; `host` is
 * always without). Each syntax that names the machine (ssh's destination, a
 * Nix ssh:// store URI, nixos-rebuild's --target-host) is built from this
 * value by its own function in lib/remote/host.ts, never by pasting the text.
 */
export const hostAddressSchema = z.object({ kind: z.enum(['name', 'ipv4', 'ipv6']), host: z.string() });
export type HostAddress = z.infer<typeof hostAddressSchema>;

const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DNS_NAME = new RegExp(`^(?=.{1,253}\\.?$)${DNS_LABEL}(?:\\.${DNS_LABEL})*\\.?$`);

/** `text` as a {@link HostAddress}, or why it is none. */
export function parseHostAddress(text: string): HostAddress | { readonly problem: string } {
  const bracketed = /^\[(.*)\]$/.exec(text);
  const bare = bracketed ? bracketed[1]! : text;
  if (bare.includes('%')) return { problem: `"${text}" has an IPv6 zone (%…), which ssh and Nix URIs write differently: use a host name` };
  if (isIPv6(bare)) return { kind: 'ipv6', host: bare };
  if (bracketed) return { problem: `brackets are for an IPv6 address only; "${bare}" is not one` };
  if (isIPv4(text)) return { kind: 'ipv4', host: text };
  // A name ending in a numeric label would be read as an IPv4 address by URL parsers (and is none here: 10.0.0.256, 010.0.0.1).
  if (DNS_NAME.test(text) && !/(?:^|\.)[0-9]+\.?$/.test(text)) return { kind: 'name', host: text };
  return { problem: `must be a DNS name or an IP address: "${text}" is neither` };
}

/** An address field: the text in hosts.json (`description` for editors), a {@link HostAddress} once parsed. */
const addressField = (description: string) =>
  z
    .string()
    .regex(/^(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[?[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?\]?)$/, 'must be a DNS name or an IP address')
    .meta({ description })
    .transform((text, ctx): HostAddress => {
      const parsed = parseHostAddress(text);
      if ('problem' in parsed) {
        ctx.issues.push({ code: 'custom', message: parsed.problem, input: text });
        return z.NEVER;
      }
      return parsed;
    });

const address = addressField('a DNS name, an IPv4 address, or an IPv6 address with or without brackets');

/*
 * A deploy target's address becomes nixos-rebuild's --target-host, and no
 * IPv6 literal works there with every nixos-rebuild and Nix a coordinator may
 * run:
 * - nixos-rebuild hands the value to ssh and to nix-copy-closure alike: the
 *   bash-era one runs `ssh $SSHOPTS "$targetHost"` and `nix-copy-closure --to
 *   "$targetHost"` (nixpkgs pkgs/os-specific/linux/nixos-rebuild/nixos-rebuild.sh),
 *   nixos-rebuild-ng the same (nix.py copy_closure, process.py run_wrapper)
 *   until NixOS/nixpkgs#469709 (Dec 2025) taught its ssh calls to drop the
 *   brackets; nix-copy-closure opens the store "ssh://" + that value
 *   (NixOS/nix src/nix-copy-closure/nix-copy-closure.cc).
 * - ssh takes a literal without brackets: OpenSSH 9.2's `ssh -G
 *   'deploy@[fd00::13]'` says `hostname [fd00::13]` (Could not resolve hostname).
 * - Nix's ssh:// store URI wants brackets: Nix 2.31 refuses the bare form
 *   ("Cannot parse Nix store 'ssh://builder@2603:…'", NixOS/nix#13937: "specify
 *   the IPv6 address as you'd always do in URLs inside square brackets"); later
 *   versions take it again only through a back-compat shim (NixOS/nix#13940,
 *   src/libstore/store-reference.cc).
 * So `user@fd00::13` fails the copy with Nix 2.31, `user@[fd00::13]` fails every
 * ssh call of the bash-era nixos-rebuild and of nixos-rebuild-ng before
 * #469709: a target needs a host name. The coordinator may have an IPv6
 * address: its ssh:// URI is built with brackets (lib/remote/host.ts
 * nixSshStoreUri), which Nix has accepted since 2.4 (NixOS/nix#4319: brackets
 * stripped before ssh; checked with Nix 2.8 here: `nix store ping --store
 * 'ssh://nix-builder@[fd00::13]'` and a `--builders` entry both run `ssh
 * nix-builder@fd00::13`), and this tool needs flakes, so Nix ≥ 2.4.
 */
const targetAddress = addressField('a DNS name or an IPv4 address (an IPv6 literal cannot be nixos-rebuild\'s --target-host)').refine(
  (parsed) => parsed.kind !== 'ipv6',
  'an IPv6 address cannot be a deploy target\'s address: nixos-rebuild passes --target-host both to ssh, which needs it without brackets, ' +
    'and to nix-copy-closure as ssh://…, which needs brackets (Nix 2.31), so no spelling works with every nixos-rebuild and Nix; ' +
    'give the host a name (DNS, or /etc/hosts on the machine that deploys) and use that',
);
const absolutePath = z.string().regex(/^\/[A-Za-z0-9._/@+-]*$/, 'must be an absolute path without spaces or shell characters');
const system = z.string().regex(/^[a-z0-9_]+-[a-z0-9_]+$/, 'must be a Nix system such as aarch64-linux');
const tag = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a tag: lowercase letters, digits, "-" and "_"');
const base64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');

/** `name:base64(32-byte ed25519 key)`, the format of trusted-public-keys. */
export const cachePublicKey = z
  .string()
  .regex(/^[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=$/, 'must be "<name>:<base64 of a 32-byte ed25519 key>", as in trusted-public-keys');

export const flakeRef = z
  .string()
  .regex(/^[A-Za-z0-9._~:/+@=?&%-]+$/, 'must be a flake reference without "#", spaces or shell characters');

const attrSegment = /^(?:[A-Za-z_][A-Za-z0-9_'-]*|<host>)$/;
const attributePattern = z
  .string()
  .refine((value) => value.split('.').every((s) => attrSegment.test(s)), 'must be a dotted attribute path')
  .refine(
    (value) => value.split('.').filter((s) => s === HOST_PLACEHOLDER).length === 1 && !value.startsWith(HOST_PLACEHOLDER),
    `must contain "${HOST_PLACEHOLDER}" exactly once, after the first attribute`,
  );

/** ssh options are also passed through NIX_SSHOPTS, which Nix splits on whitespace. */
const sshOption = z.string().regex(/^[A-Za-z0-9=%/._,:@+-]+$/, 'must be one ssh argument without spaces or shell characters');

/**
 * Host-key checking stays on and nothing may prompt: these options would turn
 * that off for every connection (and, through NIX_SSHOPTS, for Nix's).
 */
const UNSAFE_SSH_OPTIONS: readonly [RegExp, string][] = [
  [/^StrictHostKeyChecking=(no|off)$/i, 'turns host-key checking off'],
  [/^UserKnownHostsFile=\/dev\/null$/i, 'throws the known host keys away'],
  [/^BatchMode=no$/i, 'lets ssh prompt (for a password or a host key)'],
  [/^-F$/, 'replaces the ssh configuration these options are checked against'],
];

function keepsHostKeysChecked(options: readonly string[], ctx: z.RefinementCtx): void {
  options.forEach((option, index) => {
    for (const [pattern, why] of UNSAFE_SSH_OPTIONS) {
      if (pattern.test(option)) ctx.addIssue({ code: 'custom', path: [index], message: `"${option}" ${why}; host-key checking stays on and nothing may prompt` });
    }
  });
}

/**
 * The binary cache's base URL, parsed by the URL class and kept in its
 * serialisation without trailing slashes (`http://hawk.internal:5000`,
 * `http://[fd00::1]:5000`): lib/cache/client.ts resolves `nix-cache-info` and
 * `<hash>.narinfo` beneath it. No query or fragment (a request path would land
 * inside them) and no user or password (fetch refuses URLs with credentials).
 */
const cacheUrl = z
  .url({ protocol: /^https?$/ })
  .meta({ description: 'http(s) base URL of the binary cache, e.g. http://hawk.internal:5000; no query, fragment or credentials' })
  .transform((text, ctx) => {
    const url = new URL(text);
    const problem = url.username || url.password
      ? 'must not hold a user or password: fetch refuses URLs with credentials'
      : /[?#]/.test(url.href)
        ? 'must not have a query or fragment: the cache\'s paths (nix-cache-info, <hash>.narinfo) are resolved beneath it'
        : undefined;
    if (problem) {
      ctx.issues.push({ code: 'custom', message: problem, input: text });
      return z.NEVER;
    }
    return url.href.replace(/\/+$/, '');
  });

/** The inventory's deploy methods (`deploy.method`); lib/nix/deploy-method.ts chooses between them. */
export const DEPLOY_METHODS = ['nixos-rebuild', 'direct'] as const;

const builder = z.strictObject({
  user: userName.default('nix-builder'),
  sshKey: absolutePath.optional(),
  maxJobs: z.number().int().min(1).default(1),
  speedFactor: z.number().int().min(1).default(1),
  supportedFeatures: z.array(tag).default([]),
  /** base64 of the host's public key line, as in nix.buildMachines.*.publicHostKey */
  hostKey: base64.optional(),
});

const unitName = z.string().regex(/^[A-Za-z0-9@._:-]+$/, 'must be a systemd unit name');
// No {{…}}: the plan writes its run-time placeholders so (lib/plan/placeholders.ts), and fills every command it runs.
const argvWord = z.string().min(1).regex(/^[^\n\0]*$/, 'must be one argument').refine((word) => !word.includes('{{'), 'must not contain {{ (the plan\'s placeholder syntax)');

/** Health checks: inventory-wide defaults, plus per-host additions. */
const healthChecks = z.strictObject({
  /** what `systemctl is-system-running` must say; "skip" where the target has no systemd */
  systemState: z.enum(['running', 'running-or-degraded', 'skip']).optional(),
  units: z.array(unitName).default([]),
  /** fetched from the orchestrator, as morph does */
  http: z.array(z.strictObject({ url: z.url({ protocol: /^https?$/ }), status: z.number().int().min(100).max(599).default(200) })).default([]),
  /** argv run on the target over SSH; must exit 0 */
  commands: z.array(z.array(argvWord).min(1)).default([]),
});

const host = z.strictObject({
  /** a DNS name or an IPv4 address (no IPv6 literal: see targetAddress) */
  address: targetAddress,
  system,
  deployUser: userName.default('root'),
  sshKey: absolutePath.optional(),
  builder: builder.optional(),
  tags: z.array(tag).default([]),
  health: healthChecks.optional(),
});

export const inventorySchema = z.strictObject({
  $schema: z.string().optional(),
  coordinator: z.strictObject({
    name: hostName,
    system,
    address,
    user: userName.default('root'),
    /** true when the orchestrator always runs on the coordinator itself */
    local: z.boolean().default(false),
    /**
     * The coordinator as a builder of its own system, for a run started on
     * another machine (its --builders entry, as coordinator.user); absent:
     * one job at a time with the features Nix gives an x86_64 machine by
     * default (nixos-test, benchmark, big-parallel). A run on the
     * coordinator builds there natively with its own settings.
     */
    builder: builder.omit({ user: true }).optional(),
  }),
  cache: z.strictObject({
    url: cacheUrl,
    publicKey: cachePublicKey,
    gcRootDir: absolutePath.default('/nix/var/nix/gcroots/arm-cache'),
  }),
  flake: flakeRef.default('.'),
  attribute: attributePattern.default('nixosConfigurations.<host>.config.system.build.toplevel'),
  baselineMinutes: z.number().positive().default(120),
  seed: hostName.optional(),
  ssh: z
    .strictObject({ options: z.array(sshOption).default([]).superRefine(keepsHostKeysChecked) })
    .default({ options: [] }),
  nixosRebuild: z
    .strictObject({
      command: z.array(argvWord).min(1).default(['nixos-rebuild']),
      /** more arguments for every nixos-rebuild; flags the probed tool does not know fail preflight */
      extraArgs: z.array(argvWord).default([]),
      /** force a sudo flag; by default the one the probed tool knows (--sudo, else --use-remote-sudo) */
      sudoFlag: z.enum(['--sudo', '--use-remote-sudo']).optional(),
    })
    .default({ command: ['nixos-rebuild'], extraArgs: [] }),
  /**
   * How the deploy stage puts each built toplevel on its host: `nixos-rebuild`
   * (with --store-path where it takes it, else --flake, which evaluates the
   * host again) or `direct` (the orchestrator copies the closure, sets the
   * profile and activates). Absent: nixos-rebuild when the probed one takes
   * --store-path, else direct (lib/nix/deploy-method.ts).
   */
  deploy: z.strictObject({ method: z.enum(DEPLOY_METHODS).optional() }).optional(),
  health: healthChecks
    .extend({
      /** bounds a round of the checks on the target (one ssh session, the checks one after the other) and each HTTP check */
      timeoutSeconds: z.number().positive().default(10),
      /** rounds after the first, until every check passes in one */
      retries: z.number().int().min(0).default(3),
      intervalSeconds: z.number().nonnegative().default(2),
      /** after the checks first pass, they must keep passing this long before the deploy is confirmed */
      settleSeconds: z.number().nonnegative().default(5),
    })
    .default({ units: [], http: [], commands: [], timeoutSeconds: 10, retries: 3, intervalSeconds: 2, settleSeconds: 5 }),
  /** Paths on the targets and the coordinator. */
  paths: z
    .strictObject({
      profile: absolutePath.default('/nix/var/nix/profiles/system'),
      currentSystem: absolutePath.default('/run/current-system'),
      /** where magic-rollback canaries live on the targets */
      targetState: absolutePath.default('/var/lib/avalanche-deploy'),
      /** the deploy lock, on the coordinator */
      lock: absolutePath.default('/var/lib/avalanche-deploy/deploy.lock'),
    })
    .default({
      profile: '/nix/var/nix/profiles/system',
      currentSystem: '/run/current-system',
      targetState: '/var/lib/avalanche-deploy',
      lock: '/var/lib/avalanche-deploy/deploy.lock',
    }),
  timeouts: z
    .strictObject({
      connectSeconds: z.number().int().positive().default(10),
      buildMinutes: z.number().positive().default(180),
      cacheWaitSeconds: z.number().positive().default(300),
      deployMinutes: z.number().positive().default(60),
      /** --reboot: how long a host may take to come back after its reboot (firmware, bootloader, stage 1 and 2, sshd) */
      rebootSeconds: z.number().positive().default(600),
    })
    .default({ connectSeconds: 10, buildMinutes: 180, cacheWaitSeconds: 300, deployMinutes: 60, rebootSeconds: 600 }),
  hosts: z
    .record(hostName, host)
    .refine((hosts) => Object.keys(hosts).length > 0, 'must name at least one host'),
});

export type Inventory = z.infer<typeof inventorySchema>;
export type InventoryHost = Inventory['hosts'][string];
export type HealthChecks = z.infer<typeof healthChecks>;
export type HostName = string;

/** JSON Schema for editors (`$schema` in hosts.json); written by scripts/write-schema.ts. */
export function inventoryJsonSchema(): unknown {
  return z.toJSONSchema(inventorySchema, { io: 'input' });
}
