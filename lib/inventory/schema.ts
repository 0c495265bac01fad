/**
 * The one place that knows the shape of hosts.json. Everything that reaches a
 * command line (names, addresses, users, attribute paths, flake references)
 * is restricted to characters that cannot be read as shell or Nix syntax.
 */
import { z } from 'zod';

export const HOST_PLACEHOLDER = '<host>';

const hostName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a host name: lowercase letters, digits and "-", at most 63 characters');
const userName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a POSIX user name');
const address = z
  .string()
  .regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[?[0-9A-Fa-f:]+\]?)$/, 'must be a DNS name or an IP address');
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
  address,
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
  }),
  cache: z.strictObject({
    url: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
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
  health: healthChecks
    .extend({
      timeoutSeconds: z.number().positive().default(10),
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
    })
    .default({ connectSeconds: 10, buildMinutes: 180, cacheWaitSeconds: 300, deployMinutes: 60 }),
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
