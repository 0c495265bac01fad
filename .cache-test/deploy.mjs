// lib/cli/deploy.ts
import { hostname as hostname3 } from "node:os";
import { dirname as dirname2 } from "node:path";

// lib/errors.ts
var ExitCode = {
  ok: 0,
  stageFailed: 1,
  usage: 2,
  interrupted: 130
};
var UsageError = class extends Error {
  exitCode = ExitCode.usage;
  name = "UsageError";
};
var InventoryError = class extends Error {
  constructor(message, issues = []) {
    super(issues.length ? `${message}
${issues.map((i) => `  - ${i}`).join("\n")}` : message);
    this.issues = issues;
  }
  issues;
  exitCode = ExitCode.usage;
  name = "InventoryError";
};
var StageError = class extends Error {
  constructor(message, hints = []) {
    super(message);
    this.hints = hints;
  }
  hints;
  exitCode = ExitCode.stageFailed;
  name = "StageError";
};
var InterruptedError = class extends Error {
  exitCode = ExitCode.interrupted;
  name = "InterruptedError";
  constructor(message = "interrupted") {
    super(message);
  }
};
function isKnownError(error) {
  return error instanceof UsageError || error instanceof InventoryError || error instanceof StageError || error instanceof InterruptedError;
}

// lib/exec/zx-executor.ts
import { $ } from "zx";

// lib/exec/line-splitter.ts
var LineSplitter = class {
  constructor(emit) {
    this.emit = emit;
  }
  emit;
  pending = "";
  push(chunk2) {
    const parts = (this.pending + chunk2).split("\n");
    this.pending = parts.pop() ?? "";
    for (const line of parts) this.emit(line.replace(/\r$/, ""));
  }
  flush() {
    if (this.pending !== "") this.emit(this.pending);
    this.pending = "";
  }
};

// lib/exec/proc.ts
import { readFileSync, readlinkSync } from "node:fs";
import { readdir, readFile, readlink } from "node:fs/promises";
function parseProcStat(text) {
  const open2 = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open2 < 0 || close < open2) return void 0;
  const pid = Number(text.slice(0, open2).trim());
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const field = (n) => Number(rest[n - 3]);
  const stat3 = { pid, state: rest[0] ?? "", ppid: field(4), pgid: field(5), sid: field(6), startTime: field(22) };
  return Number.isInteger(pid) && stat3.state !== "" && [stat3.ppid, stat3.pgid, stat3.sid, stat3.startTime].every(Number.isInteger) ? stat3 : void 0;
}
function readProcStat(pid) {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return void 0;
  }
}
function isRunningState(state) {
  return state !== "Z" && state !== "X";
}
async function listProcesses() {
  let names;
  try {
    names = await readdir("/proc");
  } catch {
    return [];
  }
  const stats = await Promise.all(
    names.filter((name) => /^\d+$/.test(name)).map((name) => readFile(`/proc/${name}/stat`, "utf8").then(parseProcStat, () => void 0))
  );
  return stats.filter((stat3) => stat3 !== void 0);
}
function descendantsOf(roots, processes) {
  const children = /* @__PURE__ */ new Map();
  for (const stat3 of processes) {
    const siblings = children.get(stat3.ppid);
    if (siblings) siblings.push(stat3);
    else children.set(stat3.ppid, [stat3]);
  }
  const found = /* @__PURE__ */ new Map();
  const queue = [...roots];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()) ?? []) {
      if (found.has(child.pid) || roots.includes(child.pid)) continue;
      found.set(child.pid, child);
      queue.push(child.pid);
    }
  }
  return [...found.values()];
}
function bootId() {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || void 0;
  } catch {
    return void 0;
  }
}
function fdTarget(pid, fd) {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return void 0;
  }
}
async function processesHoldingAsync(targets, pids) {
  if (targets.size === 0) return [];
  const holding = await Promise.all(
    pids.map(async (pid) => {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
      const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")));
      return links.some((link) => targets.has(link)) ? pid : void 0;
    })
  );
  return holding.filter((pid) => pid !== void 0);
}

// lib/exec/zx-executor.ts
var KILL_GRACE_MS = 3e3;
var STREAM_GRACE_MS = 1e3;
var POLL_MS = 50;
var ZxExecutor = class {
  log = [];
  /**
   * Runs one command (argv, no shell) and resolves with its outcome; never
   * rejects for the command's own failure. With `spec.timeoutMs` or an
   * aborted `options.signal`, the command's tree is stopped (see
   * {@link killTree}) and the result is marked `timedOut`/`aborted`; it then
   * resolves at most KILL_GRACE_MS + 2 × STREAM_GRACE_MS (5 s) after the stop,
   * with whatever output arrived until then, and only once every process the
   * command started (that /proc showed) has exited or the SIGKILL was sent.
   */
  async run(spec, options = {}) {
    const { signal, onLine } = options;
    const startedAt = Date.now();
    if (signal?.aborted) return this.record(spec, startedAt, { exitCode: null, signal: null, stdout: "", stderr: "", timedOut: false, aborted: true });
    const child = $({
      quiet: true,
      verbose: false,
      nothrow: true,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...spec.env }
    })`${spec.argv}`;
    const outputs = new Set([1, 2].map((fd) => child.pid === void 0 ? void 0 : fdTarget(child.pid, fd)).filter((target) => target !== void 0));
    const splitters = {
      stdout: new LineSplitter((line) => onLine?.(line, "stdout")),
      stderr: new LineSplitter((line) => onLine?.(line, "stderr"))
    };
    const seen = { stdout: [], stderr: [] };
    for (const stream of ["stdout", "stderr"]) {
      child[stream].on("data", (chunk2) => {
        const text = chunk2.toString();
        seen[stream].push(text);
        if (onLine) splitters[stream].push(text);
      });
    }
    let timedOut = false;
    let aborted = false;
    let stopping;
    let giveUp;
    const gaveUp = new Promise((resolve2) => giveUp = resolve2);
    const deadlines = [];
    const stop = () => {
      if (stopping) return;
      stopping = killTree(() => child.pid, outputs);
      deadlines.push(
        setTimeout(() => {
          child.child?.stdout?.destroy();
          child.child?.stderr?.destroy();
        }, KILL_GRACE_MS + STREAM_GRACE_MS),
        // Even a closed pipe does not settle zx until the process itself has
        // exited (one stuck in the kernel, state D, may not).
        setTimeout(() => giveUp?.("gave-up"), KILL_GRACE_MS + 2 * STREAM_GRACE_MS)
      );
    };
    const timer = spec.timeoutMs ? setTimeout(() => (timedOut = true, stop()), spec.timeoutMs) : void 0;
    const onAbort = () => (aborted = true, stop());
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const output2 = await Promise.race([child, gaveUp]);
      await stopping;
      splitters.stdout.flush();
      splitters.stderr.flush();
      return this.record(spec, startedAt, {
        exitCode: output2 === "gave-up" ? null : output2.exitCode,
        signal: output2 === "gave-up" ? null : output2.signal,
        stdout: output2 === "gave-up" ? seen.stdout.join("") : output2.stdout,
        stderr: output2 === "gave-up" ? seen.stderr.join("") : output2.stderr,
        timedOut,
        aborted
      });
    } finally {
      clearTimeout(timer);
      for (const deadline of deadlines) clearTimeout(deadline);
      signal?.removeEventListener("abort", onAbort);
    }
  }
  record(spec, startedAt, outcome) {
    const result = { argv: spec.argv, startedAt, durationMs: Date.now() - startedAt, ...outcome };
    this.log.push({ argv: spec.argv, exitCode: result.exitCode, startedAt, durationMs: result.durationMs });
    return result;
  }
};
async function killTree(pidOf, outputs = /* @__PURE__ */ new Set()) {
  let root = pidOf();
  for (let retries = 40; root === void 0 && retries > 0; retries -= 1) {
    await sleep(POLL_MS);
    root = pidOf();
  }
  if (root === void 0) return;
  const own = readProcStat(process.pid);
  const known2 = /* @__PURE__ */ new Map();
  const snapshot = async () => {
    const processes = await listProcesses();
    const holders = (await processesHoldingAsync(outputs, processes.map((stat3) => stat3.pid))).filter((pid) => pid !== process.pid);
    const alive = [...known2.values()].filter(stillRunning).map((stat3) => stat3.pid);
    const roots = [root, ...holders, ...alive];
    const found = processes.filter((stat3) => roots.includes(stat3.pid));
    for (const stat3 of [...found, ...descendantsOf(roots, processes)]) {
      if (!known2.has(stat3.pid)) known2.set(stat3.pid, stat3);
    }
    return processes.length > 0;
  };
  const signalAll = (signal, haveProc2) => {
    const groups = new Set(haveProc2 ? [] : [root]);
    for (const stat3 of known2.values()) {
      const now = readProcStat(stat3.pid);
      if (now && now.startTime === stat3.startTime) groups.add(now.pgid);
    }
    for (const group of groups) {
      if (group <= 1 || group === own?.pgid || group === own?.sid) continue;
      tryKill(-group, signal);
    }
    for (const stat3 of known2.values()) if (stillRunning(stat3)) tryKill(stat3.pid, signal);
    if (!haveProc2) void $.kill(root, signal).catch(() => void 0);
  };
  const allGone = () => ![...known2.values()].some(stillRunning);
  const haveProc = await snapshot();
  signalAll("SIGTERM", haveProc);
  if (!haveProc) {
    setTimeout(() => signalAll("SIGKILL", false), KILL_GRACE_MS).unref();
    return;
  }
  const deadline = Date.now() + KILL_GRACE_MS;
  while (!allGone()) {
    if (Date.now() >= deadline) {
      await snapshot();
      signalAll("SIGKILL", true);
      return;
    }
    await sleep(POLL_MS);
  }
}
function stillRunning(stat3) {
  const now = readProcStat(stat3.pid);
  return now && now.startTime === stat3.startTime && isRunningState(now.state) ? now : void 0;
}
function tryKill(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
  }
}
function sleep(ms) {
  return new Promise((resolve2) => setTimeout(resolve2, ms));
}

// lib/inventory/load.ts
import { readFile as readFile2 } from "node:fs/promises";

// lib/inventory/schema.ts
import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";
var HOST_PLACEHOLDER = "<host>";
var hostName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a host name: lowercase letters, digits and "-", at most 63 characters');
var userName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a POSIX user name");
var hostAddressSchema = z.object({ kind: z.enum(["name", "ipv4", "ipv6"]), host: z.string() });
var DNS_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
var DNS_NAME = new RegExp(`^(?=.{1,253}\\.?$)${DNS_LABEL}(?:\\.${DNS_LABEL})*\\.?$`);
function parseHostAddress(text) {
  const bracketed = /^\[(.*)\]$/.exec(text);
  const bare = bracketed ? bracketed[1] : text;
  if (bare.includes("%")) return { problem: `"${text}" has an IPv6 zone (%\u2026), which ssh and Nix URIs write differently: use a host name` };
  if (isIPv6(bare)) return { kind: "ipv6", host: bare };
  if (bracketed) return { problem: `brackets are for an IPv6 address only; "${bare}" is not one` };
  if (isIPv4(text)) return { kind: "ipv4", host: text };
  if (DNS_NAME.test(text) && !/(?:^|\.)[0-9]+\.?$/.test(text)) return { kind: "name", host: text };
  return { problem: `must be a DNS name or an IP address: "${text}" is neither` };
}
var addressField = (description) => z.string().regex(/^(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[?[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?\]?)$/, "must be a DNS name or an IP address").meta({ description }).transform((text, ctx) => {
  const parsed = parseHostAddress(text);
  if ("problem" in parsed) {
    ctx.issues.push({ code: "custom", message: parsed.problem, input: text });
    return z.NEVER;
  }
  return parsed;
});
var address = addressField("a DNS name, an IPv4 address, or an IPv6 address with or without brackets");
var targetAddress = addressField("a DNS name or an IPv4 address (an IPv6 literal cannot be nixos-rebuild's --target-host)").refine(
  (parsed) => parsed.kind !== "ipv6",
  "an IPv6 address cannot be a deploy target's address: nixos-rebuild passes --target-host both to ssh, which needs it without brackets, and to nix-copy-closure as ssh://\u2026, which needs brackets (Nix 2.31), so no spelling works with every nixos-rebuild and Nix; give the host a name (DNS, or /etc/hosts on the machine that deploys) and use that"
);
var absolutePath = z.string().regex(/^\/[A-Za-z0-9._/@+-]*$/, "must be an absolute path without spaces or shell characters");
var system = z.string().regex(/^[a-z0-9_]+-[a-z0-9_]+$/, "must be a Nix system such as aarch64-linux");
var tag = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a tag: lowercase letters, digits, "-" and "_"');
var base64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, "must be base64");
var cachePublicKey = z.string().regex(/^[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=$/, 'must be "<name>:<base64 of a 32-byte ed25519 key>", as in trusted-public-keys');
var flakeRef = z.string().regex(/^[A-Za-z0-9._~:/+@=?&%-]+$/, 'must be a flake reference without "#", spaces or shell characters');
var attrSegment = /^(?:[A-Za-z_][A-Za-z0-9_'-]*|<host>)$/;
var attributePattern = z.string().refine((value) => value.split(".").every((s) => attrSegment.test(s)), "must be a dotted attribute path").refine(
  (value) => value.split(".").filter((s) => s === HOST_PLACEHOLDER).length === 1 && !value.startsWith(HOST_PLACEHOLDER),
  `must contain "${HOST_PLACEHOLDER}" exactly once, after the first attribute`
);
var sshOption = z.string().regex(/^[A-Za-z0-9=%/._,:@+-]+$/, "must be one ssh argument without spaces or shell characters");
var UNSAFE_SSH_OPTIONS = [
  [/^StrictHostKeyChecking=(no|off)$/i, "turns host-key checking off"],
  [/^UserKnownHostsFile=\/dev\/null$/i, "throws the known host keys away"],
  [/^BatchMode=no$/i, "lets ssh prompt (for a password or a host key)"],
  [/^-F$/, "replaces the ssh configuration these options are checked against"]
];
function keepsHostKeysChecked(options, ctx) {
  options.forEach((option, index) => {
    for (const [pattern, why] of UNSAFE_SSH_OPTIONS) {
      if (pattern.test(option)) ctx.addIssue({ code: "custom", path: [index], message: `"${option}" ${why}; host-key checking stays on and nothing may prompt` });
    }
  });
}
var cacheUrl = z.url({ protocol: /^https?$/ }).meta({ description: "http(s) base URL of the binary cache, e.g. http://hawk.internal:5000; no query, fragment or credentials" }).transform((text, ctx) => {
  const url = new URL(text);
  const problem = url.username || url.password ? "must not hold a user or password: fetch refuses URLs with credentials" : /[?#]/.test(url.href) ? "must not have a query or fragment: the cache's paths (nix-cache-info, <hash>.narinfo) are resolved beneath it" : void 0;
  if (problem) {
    ctx.issues.push({ code: "custom", message: problem, input: text });
    return z.NEVER;
  }
  return url.href.replace(/\/+$/, "");
});
var DEPLOY_METHODS = ["nixos-rebuild", "direct"];
var builder = z.strictObject({
  user: userName.default("nix-builder"),
  sshKey: absolutePath.optional(),
  maxJobs: z.number().int().min(1).default(1),
  speedFactor: z.number().int().min(1).default(1),
  supportedFeatures: z.array(tag).default([]),
  /** base64 of the host's public key line, as in nix.buildMachines.*.publicHostKey */
  hostKey: base64.optional()
});
var unitName = z.string().regex(/^[A-Za-z0-9@._:-]+$/, "must be a systemd unit name");
var argvWord = z.string().min(1).regex(/^[^\n\0]*$/, "must be one argument").refine((word) => !word.includes("{{"), "must not contain {{ (the plan's placeholder syntax)");
var healthChecks = z.strictObject({
  /** what `systemctl is-system-running` must say; "skip" where the target has no systemd */
  systemState: z.enum(["running", "running-or-degraded", "skip"]).optional(),
  units: z.array(unitName).default([]),
  /** fetched from the orchestrator, as morph does */
  http: z.array(z.strictObject({ url: z.url({ protocol: /^https?$/ }), status: z.number().int().min(100).max(599).default(200) })).default([]),
  /** argv run on the target over SSH; must exit 0 */
  commands: z.array(z.array(argvWord).min(1)).default([])
});
var host = z.strictObject({
  /** a DNS name or an IPv4 address (no IPv6 literal: see targetAddress) */
  address: targetAddress,
  system,
  deployUser: userName.default("root"),
  sshKey: absolutePath.optional(),
  builder: builder.optional(),
  tags: z.array(tag).default([]),
  health: healthChecks.optional()
});
var inventorySchema = z.strictObject({
  $schema: z.string().optional(),
  coordinator: z.strictObject({
    name: hostName,
    system,
    address,
    user: userName.default("root"),
    /** true when the orchestrator always runs on the coordinator itself */
    local: z.boolean().default(false),
    /**
     * The coordinator as a builder of its own system, for a run started on
     * another machine (its --builders entry, as coordinator.user); absent:
     * one job at a time with the features Nix gives an x86_64 machine by
     * default (nixos-test, benchmark, big-parallel). A run on the
     * coordinator builds there natively with its own settings.
     */
    builder: builder.omit({ user: true }).optional()
  }),
  cache: z.strictObject({
    url: cacheUrl,
    publicKey: cachePublicKey,
    gcRootDir: absolutePath.default("/nix/var/nix/gcroots/arm-cache")
  }),
  flake: flakeRef.default("."),
  attribute: attributePattern.default("nixosConfigurations.<host>.config.system.build.toplevel"),
  baselineMinutes: z.number().positive().default(120),
  seed: hostName.optional(),
  ssh: z.strictObject({ options: z.array(sshOption).default([]).superRefine(keepsHostKeysChecked) }).default({ options: [] }),
  nixosRebuild: z.strictObject({
    command: z.array(argvWord).min(1).default(["nixos-rebuild"]),
    /** more arguments for every nixos-rebuild; flags the probed tool does not know fail preflight */
    extraArgs: z.array(argvWord).default([]),
    /** force a sudo flag; by default the one the probed tool knows (--sudo, else --use-remote-sudo) */
    sudoFlag: z.enum(["--sudo", "--use-remote-sudo"]).optional()
  }).default({ command: ["nixos-rebuild"], extraArgs: [] }),
  /**
   * How the deploy stage puts each built toplevel on its host: `nixos-rebuild`
   * (with --store-path where it takes it, else --flake, which evaluates the
   * host again) or `direct` (the orchestrator copies the closure, sets the
   * profile and activates). Absent: nixos-rebuild when the probed one takes
   * --store-path, else direct (lib/nix/deploy-method.ts).
   */
  deploy: z.strictObject({ method: z.enum(DEPLOY_METHODS).optional() }).optional(),
  health: healthChecks.extend({
    timeoutSeconds: z.number().positive().default(10),
    retries: z.number().int().min(0).default(3),
    intervalSeconds: z.number().nonnegative().default(2),
    /** after the checks first pass, they must keep passing this long before the deploy is confirmed */
    settleSeconds: z.number().nonnegative().default(5)
  }).default({ units: [], http: [], commands: [], timeoutSeconds: 10, retries: 3, intervalSeconds: 2, settleSeconds: 5 }),
  /** Paths on the targets and the coordinator. */
  paths: z.strictObject({
    profile: absolutePath.default("/nix/var/nix/profiles/system"),
    currentSystem: absolutePath.default("/run/current-system"),
    /** where magic-rollback canaries live on the targets */
    targetState: absolutePath.default("/var/lib/avalanche-deploy"),
    /** the deploy lock, on the coordinator */
    lock: absolutePath.default("/var/lib/avalanche-deploy/deploy.lock")
  }).default({
    profile: "/nix/var/nix/profiles/system",
    currentSystem: "/run/current-system",
    targetState: "/var/lib/avalanche-deploy",
    lock: "/var/lib/avalanche-deploy/deploy.lock"
  }),
  timeouts: z.strictObject({
    connectSeconds: z.number().int().positive().default(10),
    buildMinutes: z.number().positive().default(180),
    cacheWaitSeconds: z.number().positive().default(300),
    deployMinutes: z.number().positive().default(60),
    /** --reboot: how long a host may take to come back after its reboot (firmware, bootloader, stage 1 and 2, sshd) */
    rebootSeconds: z.number().positive().default(600)
  }).default({ connectSeconds: 10, buildMinutes: 180, cacheWaitSeconds: 300, deployMinutes: 60, rebootSeconds: 600 }),
  hosts: z.record(hostName, host).refine((hosts) => Object.keys(hosts).length > 0, "must name at least one host")
});
function inventoryJsonSchema() {
  return z.toJSONSchema(inventorySchema, { io: "input" });
}

// lib/inventory/load.ts
async function loadInventory(path) {
  let text;
  try {
    text = await readFile2(path, "utf8");
  } catch (error) {
    const code = error.code;
    throw new InventoryError(
      code === "ENOENT" ? `inventory not found: ${path}` : `cannot read inventory ${path}: ${code ?? String(error)}`
    );
  }
  return parseInventory(text, path);
}
function parseInventory(text, source = "hosts.json") {
  let json;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InventoryError(`${source} is not valid JSON: ${error.message}`);
  }
  const result = inventorySchema.safeParse(json);
  if (!result.success) {
    throw new InventoryError(`${source} is invalid:`, result.error.issues.flatMap((issue) => describeIssue(issue)));
  }
  const problems = crossCheck(result.data);
  if (problems.length) throw new InventoryError(`${source} is invalid:`, problems);
  return result.data;
}
function crossCheck(inventory) {
  const problems = [];
  const names = Object.keys(inventory.hosts);
  if (inventory.seed !== void 0) {
    const seed = inventory.hosts[inventory.seed];
    if (!seed) problems.push(`seed: unknown host '${inventory.seed}'; known: ${names.join(", ")}`);
    else if (!seed.builder) problems.push(`seed: host '${inventory.seed}' has no "builder" entry, so it cannot build`);
  }
  const asTarget = inventory.hosts[inventory.coordinator.name];
  if (asTarget && asTarget.system !== inventory.coordinator.system) {
    problems.push(`hosts.${inventory.coordinator.name}.system: ${asTarget.system}, but coordinator.system says ${inventory.coordinator.system} for the same machine`);
  }
  return problems;
}
function formatPath(path) {
  if (path.length === 0) return "(root)";
  return path.map((key, i) => {
    const text = String(key);
    if (typeof key === "number") return `[${key}]`;
    const plain = /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(text);
    return plain ? i === 0 ? text : `.${text}` : `[${JSON.stringify(text)}]`;
  }).join("");
}
function describeIssue(issue, prefix = []) {
  const path = [...prefix, ...issue.path];
  if (issue.code === "invalid_key" && issue.issues.length) {
    return issue.issues.map((inner) => `${formatPath(path)}: invalid host name: ${inner.message}`);
  }
  if (issue.code === "unrecognized_keys") {
    return [`${formatPath(path)}: unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`];
  }
  if (issue.code === "invalid_type" && /received undefined$/.test(issue.message)) {
    return [`${formatPath(path)}: required (${issue.expected})`];
  }
  return [`${formatPath(path)}: ${issue.message}`];
}

// lib/inventory/select.ts
import picomatch from "picomatch";
function knownHosts(inventory) {
  return Object.keys(inventory.hosts).join(", ");
}
function assertKnownHost(inventory, name) {
  if (!Object.hasOwn(inventory.hosts, name)) {
    throw new UsageError(`unknown host '${name}'; known: ${knownHosts(inventory)}`);
  }
}
function known(inventory) {
  const tags = [...new Set(Object.values(inventory.hosts).flatMap((h) => h.tags))].sort().map((t) => `@${t}`);
  return `known: ${knownHosts(inventory)}; tags: ${tags.join(", ") || "(none)"}`;
}
var GLOB_CHARACTERS = /[*?[\]]/;
function hostsOf(inventory, item, excluding) {
  const names = Object.keys(inventory.hosts);
  let matched;
  if (item.startsWith("!")) throw new UsageError(`'${item}': a leading ! does not negate here; leave hosts out with --exclude`);
  if (item.startsWith("@")) {
    const tag2 = item.slice(1);
    matched = names.filter((name) => inventory.hosts[name].tags.includes(tag2));
  } else if (GLOB_CHARACTERS.test(item)) {
    const isMatch = picomatch(item, { nocase: false, dot: true, noextglob: true, posix: true });
    matched = names.filter((name) => isMatch(name));
  } else {
    matched = Object.hasOwn(inventory.hosts, item) ? [item] : [];
  }
  if (matched.length === 0) {
    const what = !item.startsWith("@") && !GLOB_CHARACTERS.test(item) ? `unknown host '${item}'` : `'${item}' matches no host`;
    throw new UsageError(`${excluding ? "--exclude: " : ""}${what}; ${known(inventory)}`);
  }
  return matched;
}
function itemsOf(selectors, flag) {
  return selectors.flatMap((selector) => {
    const items = selector.split(",").map((item) => item.trim()).filter((item) => item !== "");
    if (items.length === 0) throw new UsageError(`${flag} '${selector}': an empty selector names no host (every host is --on '*')`);
    return items;
  });
}
function resolveSelection(inventory, selector) {
  const on = itemsOf(selector.on, "--on");
  const chosen = new Set(on.length === 0 ? Object.keys(inventory.hosts) : on.flatMap((item) => hostsOf(inventory, item, false)));
  for (const item of itemsOf(selector.exclude, "--exclude")) for (const name of hostsOf(inventory, item, true)) chosen.delete(name);
  const hosts = Object.keys(inventory.hosts).filter((name) => chosen.has(name));
  if (hosts.length === 0) {
    const from = selector.on.length ? selector.on.map((s) => `'${s}'`).join(" ") : "every host";
    throw new UsageError(`nothing left: ${selector.exclude.map((s) => `--exclude '${s}'`).join(" ")} removes ${from}; ${known(inventory)}`);
  }
  return hosts;
}
function systemBuilders(inventory, hosts, requestedSeed) {
  const systems = [...new Set(hosts.map((name) => inventory.hosts[name].system))];
  const buildersOf = (system2) => {
    const ordered = [requestedSeed, inventory.seed, ...hosts, ...Object.keys(inventory.hosts)];
    return [...new Set(ordered)].filter((name) => {
      const host2 = name === void 0 ? void 0 : inventory.hosts[name];
      return host2?.builder !== void 0 && host2.system === system2;
    });
  };
  if (requestedSeed !== void 0) {
    assertKnownHost(inventory, requestedSeed);
    const entry = inventory.hosts[requestedSeed];
    if (!entry.builder) {
      const named = systems.map((system2) => `${system2}: ${buildersOf(system2).join(", ") || `none (built by the coordinator ${inventory.coordinator.name})`}`);
      throw new UsageError(`--seed ${requestedSeed}: it has no "builder" entry, so it builds nothing; the selected systems' builders are ${named.join("; ")}`);
    }
    if (!systems.includes(entry.system)) {
      throw new UsageError(`--seed ${requestedSeed} builds ${entry.system}, and no selected host is ${entry.system} (they are ${systems.join(", ")})`);
    }
  }
  return systems.map((system2) => {
    const builders = buildersOf(system2);
    if (builders.length === 0 && system2 !== inventory.coordinator.system) {
      const of = hosts.filter((h) => inventory.hosts[h].system === system2);
      throw new UsageError(
        `no host in the inventory can build for ${system2} (${of.join(", ")}): add a "builder" entry to a host of that system (the coordinator ${inventory.coordinator.name} builds only ${inventory.coordinator.system}, and nothing is built under emulation)`
      );
    }
    return { system: system2, hosts: hosts.filter((h) => inventory.hosts[h].system === system2), builders };
  });
}

// lib/nix/nixos-rebuild.ts
import { z as z2 } from "zod";

// lib/exec/types.ts
function succeeded(result) {
  return result.exitCode === 0 && !result.timedOut && !result.aborted;
}
function outputTail(result, count2 = 15) {
  const lines2 = `${result.stderr}
${result.stdout}`.split("\n").map((line) => line.trimEnd()).filter((line) => line !== "");
  return lines2.slice(-count2);
}

// lib/nix/nixos-rebuild.ts
var rebuildToolSchema = z2.object({
  command: z2.array(z2.string()),
  /** false: the command could not be run at all */
  found: z2.boolean(),
  flavour: z2.enum(["bash", "ng", "unknown"]),
  /** every long flag its --help names, sorted */
  flags: z2.array(z2.string()),
  /** why it could not be read, when it could not */
  error: z2.string().optional()
});
var UNIVERSAL_FLAGS = ["--fast", "--use-remote-sudo"];
var MANAGED_FLAGS = {
  reexec: ["--no-reexec", "--fast"],
  sudo: ["--sudo", "--use-remote-sudo"]
};
function rebuildHelpArgv(command) {
  return [...command, "--help"];
}
var NG_ONLY_FLAGS = ["--no-reexec", "--sudo", "--store-path", "--ask-sudo-password", "--elevate"];
function parseRebuildHelp(command, text) {
  const plain = text.replace(/.\u0008/g, "");
  const flags = [...new Set(plain.match(/(?<![\w-])--[a-z][a-z0-9-]*/g) ?? [])].sort();
  const argparse = /^usage: \S*nixos-rebuild\b/m.test(plain);
  const manPage = /nixos-rebuild\s*\(8\)/i.test(plain);
  const flavour = argparse || NG_ONLY_FLAGS.some((flag) => flags.includes(flag)) ? "ng" : manPage || flags.includes("--use-remote-sudo") ? "bash" : "unknown";
  return { command: [...command], found: true, flavour, flags };
}
async function probeRebuildTool(executor, command, timeoutMs) {
  const result = await executor.run({ argv: rebuildHelpArgv(command), timeoutMs, env: { MANPAGER: "cat", PAGER: "cat" } });
  const text = `${result.stdout}
${result.stderr}`;
  const notFound = result.exitCode === 127 || /ENOENT|command not found|No such file/.test(result.stderr) && result.stdout.trim() === "";
  if (notFound) {
    return { command: [...command], found: false, flavour: "unknown", flags: [], error: outputTail(result, 1)[0] ?? `exit ${result.exitCode}` };
  }
  const tool = parseRebuildHelp(command, text);
  if (tool.flavour === "unknown") return { ...tool, error: `its --help said nothing recognisable (${outputTail(result, 1)[0] ?? `exit ${result.exitCode}`})` };
  return tool;
}
var REBUILD_NOT_FOUND_HINT = "Run the deploy where NixOS's nixos-rebuild is installed, or set nixosRebuild.command to its path.";
function unprobedRebuildTool(command) {
  return { command: [...command], found: true, flavour: "unknown", flags: [] };
}
function knows(tool, flag) {
  return tool.flavour === "unknown" ? UNIVERSAL_FLAGS.includes(flag) : tool.flags.includes(flag);
}
function describeTool(tool) {
  const name = tool.command.join(" ");
  if (!tool.found) return `${name}: not found`;
  if (tool.flavour === "unknown") return `${name}: unknown flavour`;
  return `${name}: ${tool.flavour === "bash" ? "bash-era nixos-rebuild" : "nixos-rebuild-ng"}`;
}
function chooseRebuildFlags(tool, target, inventory) {
  const problems = [];
  const what = describeTool(tool);
  let sudo;
  if (target.needsSudo) {
    const candidates = inventory.sudoFlag ? [inventory.sudoFlag] : [...MANAGED_FLAGS.sudo];
    sudo = candidates.find((flag) => knows(tool, flag));
    if (!sudo) problems.push(`${what} accepts none of ${candidates.join(", ")}, needed for a non-root deploy user`);
  }
  const noReexec = MANAGED_FLAGS.reexec.find((flag) => knows(tool, flag));
  if (!noReexec && target.crossSystem) {
    problems.push(`${what} accepts neither --no-reexec nor --fast: it would re-exec the target's nixos-rebuild here (Exec format error)`);
  }
  const managed = [...MANAGED_FLAGS.reexec, ...MANAGED_FLAGS.sudo];
  const extraArgs = inventory.extraArgs.filter((arg) => !managed.includes(arg));
  if (tool.flavour !== "unknown") {
    for (const arg of extraArgs) {
      const flag = arg.split("=")[0];
      if (flag.startsWith("--") && !tool.flags.includes(flag)) problems.push(`nixosRebuild.extraArgs: ${flag} is not an option of ${what}`);
    }
  }
  return { sudo, noReexec, extraArgs, problems };
}

// lib/nix/system.ts
var NIX_CPU = { x64: "x86_64", arm64: "aarch64", ia32: "i686" };
function localNixSystem(arch = process.arch, platform = process.platform) {
  return `${NIX_CPU[arch] ?? arch}-${platform}`;
}

// lib/nix/version.ts
function parseNixVersion(text) {
  const line = text.trim().split("\n")[0] ?? "";
  const match = /\b(\d+)\.(\d+)(?:\.\d+)?/.exec(line);
  if (!match) return void 0;
  return { text: line, major: Number(match[1]), minor: Number(match[2]) };
}
async function probeNixVersion(executor, timeoutMs) {
  const result = await executor.run({ argv: ["nix", "--version"], timeoutMs });
  return result.exitCode === 0 ? parseNixVersion(result.stdout) : void 0;
}
function knowsCaretSyntax(nix) {
  return nix === void 0 || nix.major > 2 || nix.major === 2 && nix.minor >= 13;
}
function derivationOutputInstallable(drvPath, output2, nix) {
  return knowsCaretSyntax(nix) ? `${drvPath}^${output2}` : drvPath;
}

// lib/plan/assemble.ts
import { userInfo as userInfo2 } from "node:os";
import { posix as posix2 } from "node:path";

// lib/backoff.ts
function* backoffDelays(initialMs, capMs) {
  let delay = Math.min(initialMs, capMs);
  for (; ; ) {
    yield delay;
    delay = Math.min(delay * 2, capMs);
  }
}
function sleep2(ms, signal) {
  return new Promise((resolve2) => {
    if (signal?.aborted) return resolve2();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve2();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

// lib/cache/narinfo.ts
import { createPublicKey, verify } from "node:crypto";
import { posix } from "node:path";
var NarInfoFormatError = class extends Error {
  name = "NarInfoFormatError";
};
function parseKeyValueLines(text) {
  const fields = /* @__PURE__ */ new Map();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    fields.set(key, [...fields.get(key) ?? [], value]);
  }
  return fields;
}
function parseNarInfo(text) {
  const fields = parseKeyValueLines(text);
  const one = (key) => {
    const value = fields.get(key)?.[0];
    if (value === void 0) throw new NarInfoFormatError(`narinfo has no ${key} field`);
    return value;
  };
  const narSize = Number(one("NarSize"));
  if (!Number.isSafeInteger(narSize) || narSize < 0) throw new NarInfoFormatError(`narinfo NarSize is not a size: ${one("NarSize")}`);
  const refs = fields.get("References")?.[0] ?? "";
  return {
    storePath: one("StorePath"),
    url: one("URL"),
    narHash: one("NarHash"),
    narSize,
    references: refs.split(" ").filter(Boolean),
    deriver: fields.get("Deriver")?.[0],
    sigs: fields.get("Sig") ?? []
  };
}
function fingerprint(info) {
  const storeDir = posix.dirname(info.storePath);
  const refs = info.references.map((ref) => `${storeDir}/${ref}`).sort();
  return `1;${info.storePath};${info.narHash};${info.narSize};${refs.join(",")}`;
}
function parsePublicKey(text) {
  const colon = text.indexOf(":");
  const key = Buffer.from(text.slice(colon + 1), "base64");
  if (colon <= 0 || key.length !== 32) throw new NarInfoFormatError(`not a Nix public key: ${text}`);
  return { name: text.slice(0, colon), key };
}
var ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
function checkSignature(info, trusted) {
  const keyNames = info.sigs.map((sig) => sig.slice(0, Math.max(0, sig.indexOf(":"))));
  if (info.sigs.length === 0) return { ok: false, reason: "unsigned", keyNames };
  const message = Buffer.from(fingerprint(info));
  let sawTrustedName = false;
  for (const sig of info.sigs) {
    const colon = sig.indexOf(":");
    const key = trusted.find((k) => k.name === sig.slice(0, colon));
    if (!key) continue;
    sawTrustedName = true;
    const spki = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, key.key]), format: "der", type: "spki" });
    if (verify(null, message, spki, Buffer.from(sig.slice(colon + 1), "base64"))) return { ok: true, keyName: key.name };
  }
  return { ok: false, reason: sawTrustedName ? "bad-signature" : "other-key", keyNames };
}
function storePathHash(storePath) {
  const hash = posix.basename(storePath).slice(0, 32);
  if (!/^[0-9a-df-np-sv-z]{32}$/.test(hash)) throw new NarInfoFormatError(`not a store path: ${storePath}`);
  return hash;
}

// lib/cache/client.ts
var CacheRequestError = class extends Error {
  name = "CacheRequestError";
};
async function get(url, timeoutMs, signal) {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    return await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: "error" });
  } catch (error) {
    const cause = error.cause?.code;
    const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : cause ?? error.message;
    throw new CacheRequestError(`GET ${url} failed: ${why}`);
  }
}
function cacheBase(cacheUrl2) {
  const base = new URL(cacheUrl2);
  if (base.search || base.hash || base.href.includes("?") || base.href.includes("#")) {
    throw new CacheRequestError(`cache URL ${cacheUrl2} has a query or fragment; the cache's paths go beneath it`);
  }
  if (!base.pathname.endsWith("/")) base.pathname = `${base.pathname}/`;
  return base;
}
function cacheInfoUrl(cacheUrl2) {
  return new URL("nix-cache-info", cacheBase(cacheUrl2)).href;
}
async function fetchCacheInfo(cacheUrl2, timeoutMs, signal) {
  const url = cacheInfoUrl(cacheUrl2);
  const response = await get(url, timeoutMs, signal);
  if (!response.ok) throw new CacheRequestError(`GET ${url} answered HTTP ${response.status}`);
  const fields = parseKeyValueLines(await response.text());
  const storeDir = fields.get("StoreDir")?.[0];
  if (!storeDir) throw new CacheRequestError(`GET ${url} has no StoreDir: is this a Nix binary cache?`);
  const priority = fields.get("Priority")?.[0];
  const mass = fields.get("WantMassQuery")?.[0];
  return { storeDir, priority: priority ? Number(priority) : void 0, wantMassQuery: mass ? mass === "1" : void 0 };
}
function narInfoUrl(cacheUrl2, storePath) {
  return narInfoUrlForHash(cacheUrl2, storePathHash(storePath));
}
var NARINFO_HASH = /^(?:[0-9a-df-np-sv-z]{32}|\{\{[a-z-]+:[a-z0-9-]+\}\})$/;
function narInfoUrlForHash(cacheUrl2, hash) {
  if (!NARINFO_HASH.test(hash)) throw new CacheRequestError(`not a store path hash or a placeholder for one: ${hash}`);
  return `${cacheBase(cacheUrl2).href}${hash}.narinfo`;
}
async function probeNarInfo(url, storePath, trusted, timeoutMs, signal) {
  const response = await get(url, timeoutMs, signal);
  if (response.status === 404) return { state: "missing" };
  if (!response.ok) throw new CacheRequestError(`GET ${url} answered HTTP ${response.status}`);
  const info = parseNarInfo(await response.text());
  if (info.storePath !== storePath) throw new CacheRequestError(`GET ${url} describes ${info.storePath}, not ${storePath}`);
  return { state: "served", info, signature: checkSignature(info, trusted) };
}
async function waitForNarInfo(url, storePath, trusted, options) {
  const deadline = Date.now() + options.timeoutMs;
  const delays = backoffDelays(options.initialDelayMs ?? 100, options.maxDelayMs ?? 1e3);
  let attempts = 0;
  let lastError;
  for (; ; ) {
    attempts += 1;
    try {
      const probe = await probeNarInfo(url, storePath, trusted, options.requestTimeoutMs, options.signal);
      options.onPoll?.(attempts, probe);
      if (probe.state === "served") return { ...probe, attempts };
      lastError = void 0;
    } catch (error) {
      lastError = error;
      options.onPoll?.(attempts, lastError);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0 || options.signal?.aborted) return { state: "timeout", attempts, lastError };
    await sleep2(Math.min(delays.next().value, remaining), options.signal);
  }
}

// lib/cache/gc-roots.ts
function pinRootsArgvs(gcRootDir, roots) {
  return [["mkdir", "-p", gcRootDir], ...roots.map(({ storePath, root }) => ["ln", "-sfn", storePath, root])];
}
function writableDirArgv(gcRootDir) {
  return ["sh", "-c", 'mkdir -p -- "$1" && test -w "$1" && test -x "$1" || { echo "cannot create links in $1 as $(id -un)" >&2; exit 1; }', "avalanche-pin-check", gcRootDir];
}
function listRootsArgv(gcRootDir) {
  return ["find", gcRootDir, "-maxdepth", "1", "-printf", "%d\\t%y\\t%Y\\t%T@\\t%f\\t%l\\n"];
}
function parseRootListing(stdout) {
  let exists = false;
  const roots = [];
  for (const line of stdout.split("\n")) {
    const fields = line.split("	");
    if (fields.length < 6) continue;
    const [depth, type, targetType, mtime, name] = fields;
    const target = fields.slice(5).join("	");
    if (depth === "0") exists = type === "d";
    else if (depth === "1" && type === "l") {
      roots.push({ name, target, dangling: targetType === "N" || targetType === "L", mtimeMs: Math.round(Number(mtime) * 1e3) });
    }
  }
  return exists ? { exists, roots } : { exists };
}
var ROOTS_TO_TRY = 3;
function newestLiveRoots(listing, count2 = ROOTS_TO_TRY) {
  if (!listing?.exists) return [];
  return listing.roots.filter((root) => !root.dangling && isStorePath(root.target)).sort((a, b) => b.mtimeMs - a.mtimeMs).slice(0, count2);
}
function isStorePath(path) {
  try {
    storePathHash(path);
    return path.startsWith("/nix/store/");
  } catch {
    return false;
  }
}

// lib/remote/host.ts
import { z as z3 } from "zod";

// lib/util/shell.ts
function shellQuote(word) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

// lib/remote/host.ts
var remoteHostSchema = z3.object({
  user: z3.string(),
  /** parsed once by the inventory schema; each syntax below spells it its own way */
  address: hostAddressSchema,
  /**
   * How steps that need root get it: `sudo -n` for a non-root user, as
   * nixos-rebuild's --sudo/--use-remote-sudo does for the activation (but
   * never prompting: -n fails instead of asking for a password).
   */
  escalation: z3.enum(["none", "sudo"]),
  /** the private key to log in with (ssh -i); absent: ssh's own defaults and agent */
  identityFile: z3.string().optional(),
  /** ssh(1) options, given before the destination: ssh keeps the first value it sees for an option */
  sshOptions: z3.array(z3.string()),
  /**
   * This machine, the one the orchestrator runs on (the coordinator deploying
   * itself): its commands run here, without ssh, as the orchestrator's user
   * (`user`), behind `sudo -n` for root like a remote non-root user's.
   */
  local: z3.literal(true).optional()
});
var SUDO_NON_INTERACTIVE = ["sudo", "-n", "--"];
var SUDO_HINT = "Every step that needs root (activation, the watchdog, confirmation, rollback) uses sudo -n: give the deploy user passwordless sudo (NixOS: security.sudo.extraRules with NOPASSWD for it, or security.sudo.wheelNeedsPassword = false with it in wheel), or deploy as root.";
var FRESH_CONNECTION = ["-o", "ControlMaster=no", "-o", "ControlPath=none"];
function sshDestination(host2) {
  return `${host2.user}@${host2.address.host}`;
}
function urlHost(address2) {
  return address2.kind === "ipv6" ? `[${address2.host}]` : address2.host;
}
function nixSshStoreUri(host2) {
  const unset = "unset.invalid";
  const uri = new URL(`ssh://${unset}`);
  uri.hostname = urlHost(host2.address);
  uri.username = host2.user;
  if (uri.hostname === unset || uri.username !== host2.user) {
    throw new Error(`cannot write ${host2.user} at ${host2.address.host} as an ssh:// store URI`);
  }
  return uri.href;
}
function targetHostArg(host2) {
  if (host2.address.kind === "ipv6") {
    throw new Error(`--target-host cannot name the IPv6 address ${host2.address.host} (ssh and nix-copy-closure spell it differently): use a host name`);
  }
  return sshDestination(host2);
}
function sshOptionArgs(host2) {
  return [...host2.sshOptions, ...host2.identityFile ? ["-i", host2.identityFile] : []];
}
function nixSshOpts(host2) {
  return sshOptionArgs(host2).join(" ");
}
function asRoot(host2, argv) {
  return host2.escalation === "sudo" ? [...SUDO_NON_INTERACTIVE, ...argv] : [...argv];
}
function remoteArgv(host2, argv, options = {}) {
  const command = options.asRoot ? asRoot(host2, argv) : [...argv];
  if (host2.local) return command;
  return ["ssh", ...options.extraOptions ?? [], ...sshOptionArgs(host2), sshDestination(host2), "--", command.map(shellQuote).join(" ")];
}
function closeMasterArgv(host2) {
  return ["ssh", ...sshOptionArgs(host2), "-O", "exit", sshDestination(host2)];
}

// lib/remote/scripts.ts
var PROBE_GENERATION = `
resolved() { [ -e "$1" ] && readlink -f "$1" 2>/dev/null; }
readlink "$1" 2>/dev/null || echo
resolved "$1" || echo
resolved "$2" || echo
`;
function generationProbeArgv(target, paths) {
  return remoteArgv(target, ["sh", "-c", PROBE_GENERATION, "avalanche-probe", paths.profile, paths.currentSystem]);
}
var ACTIVATION_UNIT = "nixos-rebuild-switch-to-configuration.service";
var ACTIVATE_IN_UNIT = `
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
  exec systemd-run -E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER --collect --no-ask-password --pipe --quiet --service-type=exec \\
    --unit=${ACTIVATION_UNIT.replace(/\.service$/, "")} --wait "$toplevel/bin/switch-to-configuration" "$goal" </dev/null
fi
exec "$toplevel/bin/switch-to-configuration" "$goal" </dev/null
`;
var CHECK_SWITCHABLE = `
if [ ! -x "$toplevel/bin/switch-to-configuration" ]; then echo "$toplevel has no bin/switch-to-configuration: not a NixOS system" >&2; exit 4; fi
`;
var SWITCH_TO_GENERATION = `
profile=$1 number=$2 toplevel=$3 goal=$4
link="$(basename "$profile")-$number-link"
if [ "$(readlink -f "$(dirname "$profile")/$link" 2>/dev/null)" != "$toplevel" ]; then
  echo "generation $number of $profile is not $toplevel any more (deleted, or made again?)" >&2; exit 4
fi${CHECK_SWITCHABLE}echo "generation $number: $toplevel"
if [ "$goal" != test ]; then
  ln -sfn "$link" "$profile.avalanche-tmp" && mv -T "$profile.avalanche-tmp" "$profile" || exit 1
fi${ACTIVATE_IN_UNIT}`;
var ACTIVATE_TOPLEVEL = `
toplevel=$1 goal=$2${CHECK_SWITCHABLE}${ACTIVATE_IN_UNIT}`;
var ROLLED_BACK_BY = { watchdog: "watchdog", deploy: "avalanche-deploy" };
var REPORT_FUNCTION = `
report() {
  grep -F -- " ${ROLLED_BACK_BY.watchdog} $(basename "$4") " "$3" 2>/dev/null | tail -n 1 | sed 's/ .*//; s/^/watchdog-at=/'
  echo "profile-link=$(readlink "$1" 2>/dev/null)"
  echo "profile-path=$(readlink -f "$1" 2>/dev/null)"
  echo "current-system=$(readlink -f "$2" 2>/dev/null)"
}
`;
var ROLLBACK_FUNCTION = `
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
var ROLLBACK = `${ROLLBACK_FUNCTION}${REPORT_FUNCTION}
status=0
rollback "$@" ${ROLLED_BACK_BY.deploy} || status=$?
report "$1" "$2" "$6" "$7"
exit "$status"
`;
var WATCHDOG = `${ROLLBACK_FUNCTION}
confirm=$8 arm=$9
waited=0
while [ "$(readlink -f "$2" 2>/dev/null)" = "$4" ]; do
  [ -e "$7" ] || exit 0
  if [ "$waited" -ge "$arm" ]; then rm -f "$7"; exit 0; fi
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
var ARM = `
script=$1; shift
canary=$7
mkdir -p "$(dirname "$canary")" && : >"$canary" || exit 1
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
  exec systemd-run --quiet --collect --unit "avalanche-watchdog-$(basename "$canary")" /bin/sh -c "$script" avalanche-watchdog "$@"
fi
setsid /bin/sh -c "$script" avalanche-watchdog "$@" </dev/null >/dev/null 2>&1 &
`;
var CONFIRM = `${REPORT_FUNCTION}
if [ ! -e "$1" ]; then report "$3" "$4" "$2" "$1"; exit 3; fi
rm -f "$1"
`;
function armArgs(args) {
  return ["sh", "-c", ARM, "avalanche-arm", WATCHDOG, ...args];
}
function keyValues(stdout) {
  const fields = /* @__PURE__ */ new Map();
  for (const line of stdout.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) fields.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return fields;
}
function parseRollbackReport(stdout) {
  const fields = keyValues(stdout);
  const outcome = fields.get("outcome");
  const watchdogAt = Number(fields.get("watchdog-at"));
  return {
    outcome: outcome === "restored" || outcome === "unchanged" ? outcome : void 0,
    watchdogAt: Number.isFinite(watchdogAt) && watchdogAt > 0 ? watchdogAt : void 0,
    profileLink: fields.get("profile-link"),
    profilePath: fields.get("profile-path"),
    currentSystem: fields.get("current-system")
  };
}
function parseGeneration(stdout) {
  const [profileLink = "", profilePath = "", currentSystem = ""] = stdout.split("\n").map((l) => l.trim());
  return { profileLink, profilePath, currentSystem };
}
var REBOOT_MARKER_DIR = "/run/avalanche-deploy";
var REBOOT = `
marker=$1
mkdir -p "$(dirname "$marker")" && cat /proc/sys/kernel/random/boot_id >"$marker" || exit 1
echo "boot-id=$(cat "$marker")"
echo "marker=$marker"
exec systemctl --no-block reboot
`;
var BOOT_CHECK = `
resolved() { [ -e "$1" ] && readlink -f "$1" 2>/dev/null; }
if [ -e "$1" ]; then echo marker=present; else echo marker=gone; fi
echo "boot-id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
echo "booted-system=$(resolved "$2")"
echo "current-system=$(resolved "$3")"
echo "state=$(systemctl is-system-running 2>/dev/null)"
`;
function parseBootCheck(stdout) {
  const fields = keyValues(stdout);
  const marker = fields.get("marker");
  const nonEmpty = (key) => fields.get(key) || void 0;
  return {
    rebooted: marker === "gone" ? true : marker === "present" ? false : void 0,
    bootId: nonEmpty("boot-id"),
    bootedSystem: nonEmpty("booted-system"),
    currentSystem: nonEmpty("current-system"),
    state: nonEmpty("state"),
    marker: marker === "gone" || marker === "present" ? void 0 : nonEmpty("marker")
  };
}

// lib/nix/commands.ts
var GOALS = ["switch", "boot", "test", "dry-activate"];
var ACTIVATING_GOALS = ["switch", "test"];
function installable(flake, attribute) {
  return `${flake}#${attribute}`;
}
function evaluateToplevelsArgv(inventory, flake, hosts) {
  const segments = inventory.attribute.split(".");
  const at = segments.indexOf(HOST_PLACEHOLDER);
  const prefix = segments.slice(0, at).join(".");
  const suffix = segments.slice(at + 1).map((s) => `.${s}`).join("");
  const names = hosts.map((h) => JSON.stringify(h)).join(" ");
  const expr = `attrs: builtins.listToAttrs (map (name: let t = attrs.\${name}${suffix}; in { inherit name; value = { drv = t.drvPath; out = t.outPath; }; }) [ ${names} ])`;
  return ["nix", "eval", "--json", installable(flake, prefix), "--apply", expr];
}
var COORDINATOR_BUILDER_DEFAULTS = { maxJobs: 1, speedFactor: 1, supportedFeatures: ["nixos-test", "benchmark", "big-parallel"] };
function machinesLine(builder2, system2, b) {
  return [
    nixSshStoreUri(builder2),
    system2,
    b.sshKey ?? "-",
    String(b.maxJobs),
    String(b.speedFactor),
    b.supportedFeatures.length ? b.supportedFeatures.join(",") : "-",
    "-",
    b.hostKey ?? "-"
  ].join(" ");
}
function builderSpec(inventory, host2, builder2) {
  const entry = inventory.hosts[host2];
  if (!entry?.builder) throw new Error(`host ${host2} is not a builder`);
  return machinesLine(builder2, entry.system, entry.builder);
}
function coordinatorBuilderSpec(inventory, builder2) {
  return machinesLine(builder2, inventory.coordinator.system, inventory.coordinator.builder ?? COORDINATOR_BUILDER_DEFAULTS);
}
function joinBuilderSpecs(specs) {
  return specs.join(" ; ");
}
function builderProbeArgv(builder2) {
  return remoteArgv(builder2, ["nix-store", "--version"]);
}
function seedBuildArgv(installables, on) {
  const placement = on === "here" ? ["--max-jobs", "auto", "--builders", ""] : ["--max-jobs", "0", "--builders", on.builders, "--option", "builders-use-substitutes", "true"];
  return [
    // Nix 2.8 takes --log-format only before the subcommand.
    "nix",
    "--log-format",
    "internal-json",
    "build",
    "--no-link",
    "--json",
    "--option",
    "build-poll-interval",
    "1",
    ...placement,
    ...installables
  ];
}
function copyToArgv(destination, storePaths, options = {}) {
  return ["nix", "copy", ...options.substituteOnDestination ? ["--substitute-on-destination"] : [], "--to", nixSshStoreUri(destination), ...storePaths];
}
function nixosRebuildArgv(command, source, target, goal, flags) {
  return [
    ...command,
    goal,
    ..."storePath" in source ? ["--store-path", source.storePath] : ["--flake", `${source.flake}#${source.host}`],
    // Without --target-host, nixos-rebuild activates this machine, with the same sudo flag.
    ...target.local ? [] : ["--target-host", targetHostArg(target)],
    "--use-substitutes",
    ...flags.sudo ? [flags.sudo] : [],
    ...flags.noReexec ? [flags.noReexec] : [],
    ...flags.extraArgs
  ];
}
function directDeployArgvs(target, toplevel, goal, profile) {
  return {
    ...target.local ? {} : { copy: copyToArgv(target, [toplevel], { substituteOnDestination: true }) },
    ...goal === "switch" || goal === "boot" ? { setProfile: remoteArgv(target, ["nix-env", "-p", profile, "--set", toplevel], { asRoot: true }) } : {},
    activate: remoteArgv(target, ["sh", "-c", ACTIVATE_TOPLEVEL, "avalanche-activate", toplevel, goal], { asRoot: true })
  };
}
function sshEnv(host2) {
  return { NIX_SSHOPTS: nixSshOpts(host2) };
}

// lib/nix/closure-diff.ts
import { z as z4 } from "zod";

// lib/nix/build-log.ts
var ACT_BUILD = 105;
var RES_BUILD_LOG_LINE = 101;
var NixLevel = { error: 0, warn: 1, notice: 2, info: 3 };
var ANSI = /\u001b\[[0-?]*[ -/]*[@-~]/g;
function stripAnsi(text) {
  return text.replace(ANSI, "");
}
function drvName(drvPath) {
  return drvPath.replace(/^.*\/[0-9a-z]{32}-/, "").replace(/\.drv$/, "");
}
var KEY_OR_STRING = /"((?:[^"\\]|\\.)*)"(?:\s*:\s*(\d+)(?![.\deE]))?/g;
function exactIntegers(json, keys) {
  const found = /* @__PURE__ */ new Map();
  for (const match of json.matchAll(KEY_OR_STRING)) {
    const [, key, digits] = match;
    if (digits !== void 0 && key !== void 0 && keys.includes(key) && !found.has(key)) found.set(key, digits);
  }
  return found;
}
var BuildLogParser = class {
  /** `now`: the clock a build's start and stop are read by (epoch ms) */
  constructor(now = Date.now) {
    this.now = now;
  }
  now;
  builds = [];
  drvByActivity = /* @__PURE__ */ new Map();
  /** the open build activities: their index in `builds` */
  buildByActivity = /* @__PURE__ */ new Map();
  /** One output line; undefined for records that say nothing worth showing (progress, stops, debug). */
  parse(line) {
    return this.parseRecord(line)?.event;
  }
  /** Like parse, with the derivation a build-log line belongs to. */
  parseRecord(line) {
    if (!line.startsWith("@nix ")) return { event: { kind: "text", text: line } };
    const raw = line.slice(5);
    let event;
    try {
      event = JSON.parse(raw);
    } catch {
      return { event: { kind: "text", text: line } };
    }
    if (typeof event !== "object" || event === null) return { event: { kind: "text", text: line } };
    const id = exactIntegers(raw, ["id"]).get("id");
    const fields = Array.isArray(event.fields) ? event.fields : [];
    if (event.action === "start" && event.type === ACT_BUILD && typeof fields[0] === "string") {
      const drvPath = fields[0];
      const machine = typeof fields[1] === "string" && fields[1] !== "" ? fields[1] : void 0;
      if (id !== void 0) {
        this.drvByActivity.set(id, drvPath);
        this.buildByActivity.set(id, this.builds.length);
      }
      this.builds.push({ drvPath, machine, startedAt: this.now() });
      return { event: { kind: "build-start", drvPath, machine } };
    }
    if (event.action === "stop" && id !== void 0 && this.buildByActivity.has(id)) {
      const index = this.buildByActivity.get(id);
      this.buildByActivity.delete(id);
      this.builds[index] = { ...this.builds[index], endedAt: this.now() };
      return void 0;
    }
    if (event.action === "result" && event.type === RES_BUILD_LOG_LINE && typeof fields[0] === "string") {
      const drvPath = id === void 0 ? void 0 : this.drvByActivity.get(id);
      return { event: { kind: "build-log", drvName: drvPath ? drvName(drvPath) : "?", line: stripAnsi(fields[0]) }, drvPath };
    }
    if (event.action === "msg" && typeof event.msg === "string") {
      return { event: { kind: "message", level: Number(event.level ?? 0), text: stripAnsi(event.msg) } };
    }
    if (event.action === "start" && typeof event.text === "string" && event.text !== "" && Number(event.level) <= NixLevel.info) {
      return { event: { kind: "activity", text: stripAnsi(event.text) } };
    }
    return void 0;
  }
};
function ignoredRestrictedSetting(message) {
  return /ignoring the (?:client|user)-specified setting '([^']+)', because it is a restricted setting/i.exec(stripAnsi(message))?.[1];
}
var DRV_PATH = /\/nix\/store\/[0-9a-z]{32}-[^'"\s]+?\.drv/g;
var BuildLogRecorder = class {
  parser;
  notes = [];
  logTails = /* @__PURE__ */ new Map();
  ignored = /* @__PURE__ */ new Set();
  lastLogged;
  logLinesPerDrv;
  maxNotes;
  maxFailedDrvs;
  constructor(options = {}) {
    this.logLinesPerDrv = options.logLinesPerDrv ?? 20;
    this.maxNotes = options.maxNotes ?? 30;
    this.maxFailedDrvs = options.maxFailedDrvs ?? 3;
    this.parser = new BuildLogParser(options.now);
  }
  /** Every build start, in order: the derivation and the machine Nix reported for it (`fields[1]`). */
  get builds() {
    return this.parser.builds;
  }
  /** Restricted settings the daemon said it ignored (e.g. "builders"). */
  get ignoredSettings() {
    return this.ignored;
  }
  /** The kept messages and stderr lines, without colours, in order. */
  get messages() {
    return this.notes;
  }
  /** The last build-log lines of `drvPath` (without colours), oldest first. */
  logTail(drvPath) {
    return this.logTails.get(drvPath) ?? [];
  }
  /**
   * Records one output line and returns its event for a live display.
   * stdout is not recorded (`nix build --json` prints its result there).
   */
  add(line, stream = "stderr") {
    const parsed = this.parser.parseRecord(line);
    if (!parsed || stream === "stdout") return parsed?.event;
    const { event, drvPath } = parsed;
    if (event.kind === "build-log" && drvPath !== void 0) {
      const tail2 = this.logTails.get(drvPath) ?? [];
      tail2.push(event.line.trimEnd());
      if (tail2.length > this.logLinesPerDrv) tail2.shift();
      this.logTails.set(drvPath, tail2);
      this.lastLogged = drvPath;
    } else if (event.kind === "message" && event.level <= NixLevel.notice) {
      const setting = ignoredRestrictedSetting(event.text);
      if (setting !== void 0) this.ignored.add(setting);
      this.note(event.text);
    } else if (event.kind === "text" && event.text.trim() !== "" && !isOutputNoise(event.text)) {
      this.note(event.text);
    }
    return event;
  }
  note(text) {
    const clean = stripAnsi(text).trimEnd();
    if (this.notes.includes(clean)) return;
    this.notes.push(clean);
    if (this.notes.length > this.maxNotes) this.notes.shift();
  }
  /**
   * The derivations a failure is about: those named by the kept messages
   * that have a build log, else the one that logged last.
   */
  failedDrvs() {
    const named = [...new Set(this.notes.flatMap((note) => note.match(DRV_PATH) ?? []))].filter((d) => this.logTails.has(d));
    const drvs = named.length ? named : this.lastLogged ? [this.lastLogged] : [];
    return drvs.slice(-this.maxFailedDrvs);
  }
  /**
   * What a failed build said, as lines for an error message: the kept
   * messages (multi-line ones split), then the last build-log lines of each
   * failed derivation under a heading naming it and where it was built.
   */
  failureLines() {
    const lines2 = this.notes.flatMap((note) => note.split("\n").map((l) => l.trimEnd()).filter((l) => l.trim() !== ""));
    for (const drvPath of this.failedDrvs()) {
      const tail2 = this.logTail(drvPath);
      const machine = [...this.builds].reverse().find((b) => b.drvPath === drvPath)?.machine;
      lines2.push(`${drvName(drvPath)} on ${machine ?? "this machine"}, last ${tail2.length} log line${tail2.length === 1 ? "" : "s"}:`);
      lines2.push(...tail2.map((l) => `  ${l}`));
    }
    return lines2;
  }
};
function isBuiltOn(machine, expectedUri) {
  const bare = (uri) => uri.replace(/[?#].*$/, "").replace(/\/+$/, "");
  return machine !== void 0 && bare(machine) === bare(expectedUri);
}
function isOutputNoise(line) {
  const text = stripAnsi(line).trim();
  return /^copying 0 paths(?:\.\.\.)?$/.test(text) || /^\[\s*\{\s*"drvPath"\s*:/.test(text) || text === "Pseudo-terminal will not be allocated because stdin is not a terminal.";
}
function tailWithoutNoise(result, count2 = 15) {
  return outputTail(result, Number.POSITIVE_INFINITY).filter((line) => !line.startsWith("@nix ") && !isOutputNoise(line)).slice(-count2);
}
function parseBuildResults(stdout) {
  const parsed = JSON.parse(stdout);
  if (!Array.isArray(parsed)) throw new Error("nix build --json did not print a list");
  return parsed;
}

// lib/nix/config.ts
function nixCommandArgv(...args) {
  return ["nix", "--extra-experimental-features", "nix-command", ...args];
}
var CONFIG_SHOW_ARGV = nixCommandArgv("config", "show", "--json");
var SHOW_CONFIG_ARGV = nixCommandArgv("show-config", "--json");
function isUnknownSubcommand(result) {
  if (result.exitCode === 0 || result.exitCode === null || result.timedOut) return false;
  const output2 = stripAnsi(`${result.stderr}
${result.stdout}`);
  return /is not a recogni[sz]ed command|unrecogni[sz]ed (?:sub)?command|unknown (?:sub)?command/i.test(output2);
}
async function readNixConfigWith(run, configShow, showConfig) {
  const first = await run(configShow);
  if (!isUnknownSubcommand(first.result)) return [first];
  return [first, await run(showConfig)];
}
function parseNixSettings(stdout) {
  const parsed = JSON.parse(stdout);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("nix config show --json did not print an object");
  const settings = {};
  for (const [name, setting] of Object.entries(parsed)) {
    if (typeof setting === "object" && setting !== null && "value" in setting) settings[name] = setting.value;
  }
  return settings;
}
function stringSetting(settings, name) {
  const value = settings[name];
  return typeof value === "string" ? value : void 0;
}
function stringListSetting(settings, name) {
  const value = settings[name];
  if (Array.isArray(value)) return value.filter((v) => typeof v === "string");
  return typeof value === "string" ? value.split(/\s+/).filter((v) => v !== "") : [];
}

// lib/nix/closure-diff.ts
var PACKAGE_CHANGES = ["added", "removed", "changed", "resized"];
var packageDiffSchema = z4.object({
  /** the package name as Nix splits it off the store path's name (`linux` of `linux-6.1.2`) */
  name: z4.string(),
  /**
   * `added`: versions only the new closure has, none gone; `removed`: the
   * reverse; `changed`: versions gone and others come (`6.1.1 → 6.1.2`);
   * `resized`: the same versions, but the name's paths' size moved by at
   * least 8 KiB (a rebuild with other contents)
   */
  change: z4.enum(PACKAGE_CHANGES),
  /** versions only the old closure has, sorted as Nix prints them ('' for a path without a version) */
  before: z4.array(z4.string()),
  /** versions only the new closure has */
  after: z4.array(z4.string()),
  /**
   * after − before of the name's paths' NAR sizes, in bytes, as Nix printed
   * it (rounded to 0.1 of its unit); absent when under 8 KiB, which Nix does not print
   */
  sizeDeltaBytes: z4.number().int().optional()
});
var closureDiffSchema = z4.object({
  kind: z4.literal("diff"),
  /** the store path the host runs (the old system) */
  before: z4.string(),
  /** the new toplevel */
  after: z4.string(),
  /** as `nix store diff-closures` lists them, by name */
  packages: z4.array(packageDiffSchema),
  /** the closures' sizes in bytes (sums of NAR sizes, `nix path-info -S`), exact */
  closureBytes: z4.object({ before: z4.number().int().nonnegative(), after: z4.number().int().nonnegative() }),
  /** closureBytes.after − closureBytes.before */
  sizeDeltaBytes: z4.number().int()
});
var firstDeployDiffSchema = z4.object({
  kind: z4.literal("first-deploy"),
  /** the new toplevel */
  after: z4.string(),
  closureBytes: z4.object({ after: z4.number().int().nonnegative() })
});
var hostClosureDiffSchema = z4.discriminatedUnion("kind", [closureDiffSchema, firstDeployDiffSchema]);
var ANSI_SGR = /\x1b\[[0-9;]*m/g;
var SIZE = /^([+-]?\d+(?:\.\d+)?) ([KMGTPEZY])iB$/;
var UNIT_POWER = { K: 1, M: 2, G: 3, T: 4, P: 5, E: 6, Z: 7, Y: 8 };
var NOTHING = "\u2205";
var EMPTY_VERSION = "\u03B5";
var ARROW = " \u2192 ";
function parseSize(text) {
  const match = SIZE.exec(text);
  if (!match) return void 0;
  return Math.round(Number(match[1]) * 1024 ** UNIT_POWER[match[2]]);
}
function parseVersions(text) {
  if (text === NOTHING) return [];
  return text.split(", ").map((v) => v === EMPTY_VERSION ? "" : v);
}
function changeOf(before, after) {
  if (before.length === 0) return after.length === 0 ? "resized" : "added";
  return after.length === 0 ? "removed" : "changed";
}
function parseDiffClosures(stdout) {
  const packages = [];
  for (const raw of stdout.replace(ANSI_SGR, "").split("\n")) {
    const line = raw.trimEnd();
    if (line === "") continue;
    const match = /^([^\s:]+): (.+)$/.exec(line);
    if (!match) throw new Error(`cannot read this line of nix store diff-closures: ${JSON.stringify(raw)}`);
    const name = match[1];
    let rest = match[2];
    let sizeDeltaBytes;
    const comma = rest.lastIndexOf(", ");
    const sizeText = comma === -1 ? rest : rest.slice(comma + 2);
    const size = parseSize(sizeText);
    if (size !== void 0) {
      sizeDeltaBytes = size;
      rest = comma === -1 ? "" : rest.slice(0, comma);
    }
    let before = [];
    let after = [];
    if (rest !== "") {
      const arrow = rest.indexOf(ARROW);
      if (arrow === -1) throw new Error(`cannot read this line of nix store diff-closures: ${JSON.stringify(raw)}`);
      before = parseVersions(rest.slice(0, arrow));
      after = parseVersions(rest.slice(arrow + ARROW.length));
    } else if (size === void 0) {
      throw new Error(`cannot read this line of nix store diff-closures: ${JSON.stringify(raw)}`);
    }
    packages.push({ name, change: changeOf(before, after), before, after, ...sizeDeltaBytes === void 0 ? {} : { sizeDeltaBytes } });
  }
  return packages;
}
var FORMAT = "avalanche-closure-diff-1";
var DIFF_CLOSURES_MARKER = "diff-closures:";
var CLOSURE_DIFF = `
current=$1 toplevel=$2
nixc() { ${nixCommandArgv().join(" ")} "$@"; }
have() {
  nix-store --realise --no-gc-warning "$1" >/dev/null && return 0
  echo "closure-diff: cannot get $2 $1 here: it is neither in this host's store nor served by its substituters" >&2
  return 1
}
closure_bytes() { nixc path-info -S "$1" | sed -n '1s/.*[[:space:]]//p'; }
have "$toplevel" "the new toplevel" || exit 3
if [ -n "$current" ]; then have "$current" "the current system" || exit 4; fi
echo "format=${FORMAT}"
echo "current-system=$current"
echo "toplevel=$toplevel"
after=$(closure_bytes "$toplevel") && [ -n "$after" ] || exit 1
echo "closure-bytes-after=$after"
[ -n "$current" ] || exit 0
before=$(closure_bytes "$current") && [ -n "$before" ] || exit 1
echo "closure-bytes-before=$before"
echo "${DIFF_CLOSURES_MARKER}"
nixc store diff-closures "$current" "$toplevel"
`;
var SCRIPT_NAME = "avalanche-closure-diff";
function closureDiffLocalArgv(paths) {
  return ["sh", "-c", CLOSURE_DIFF, SCRIPT_NAME, paths.current, paths.toplevel];
}
function closureDiffArgv(target, paths) {
  return remoteArgv(target, closureDiffLocalArgv(paths));
}
function parseClosureDiffOutput(stdout) {
  const lines2 = stdout.split("\n");
  const marker = lines2.indexOf(DIFF_CLOSURES_MARKER);
  const head = marker === -1 ? lines2 : lines2.slice(0, marker);
  const fields = /* @__PURE__ */ new Map();
  for (const line of head) {
    const at = line.indexOf("=");
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  if (fields.get("format") !== FORMAT) throw new Error(`not a closure diff (expected a "format=${FORMAT}" line): ${JSON.stringify(stdout.slice(0, 200))}`);
  const bytes = (key) => {
    const value = fields.get(key) ?? "";
    if (!/^\d+$/.test(value)) throw new Error(`closure diff: ${key} is ${JSON.stringify(value)}, not a number of bytes`);
    return Number(value);
  };
  const toplevel = fields.get("toplevel") ?? "";
  const current = fields.get("current-system") ?? "";
  const after = bytes("closure-bytes-after");
  if (current === "") return { kind: "first-deploy", after: toplevel, closureBytes: { after } };
  const before = bytes("closure-bytes-before");
  if (marker === -1) throw new Error(`closure diff: no "${DIFF_CLOSURES_MARKER}" line after the sizes`);
  return {
    kind: "diff",
    before: current,
    after: toplevel,
    packages: parseDiffClosures(lines2.slice(marker + 1).join("\n")),
    closureBytes: { before, after },
    sizeDeltaBytes: after - before
  };
}
var UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];
function formatBytes(bytes, options = {}) {
  const sign = bytes < 0 ? "-" : options.signed ? "+" : "";
  let value = Math.abs(bytes);
  if (value < 1024) return `${sign}${value} B`;
  let unit = -1;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${sign}${value.toFixed(1)} ${UNITS[unit]}`;
}
function formatVersions(versions) {
  return versions.length === 0 ? NOTHING : versions.map((v) => v === "" ? EMPTY_VERSION : v).join(", ");
}
function formatVersionChange(pkg) {
  return pkg.before.length === 0 && pkg.after.length === 0 ? "" : `${formatVersions(pkg.before)}${ARROW}${formatVersions(pkg.after)}`;
}
var KERNEL = "linux";
function headline(diff) {
  const changed = diff.packages.filter((p) => p.change === "changed");
  return changed.find((p) => p.name === KERNEL) ?? changed.find((p) => !p.name.startsWith("nixos-system-")) ?? changed[0];
}
function summarizeClosureDiff(diff) {
  if (diff.kind === "first-deploy") return `first deploy, ${formatBytes(diff.closureBytes.after)}`;
  const count2 = (change) => diff.packages.filter((p) => p.change === change).length;
  const parts = [];
  const changed = count2("changed");
  if (changed > 0) {
    const named = headline(diff);
    parts.push(`${changed} changed${named ? ` (${named.name} ${formatVersionChange(named)})` : ""}`);
  }
  for (const change of ["added", "removed", "resized"]) {
    const n = count2(change);
    if (n > 0) parts.push(`${n} ${change}`);
  }
  if (parts.length === 0) parts.push("no package changes");
  parts.push(formatBytes(diff.sizeDeltaBytes, { signed: true }));
  return parts.join(", ");
}

// lib/nix/trust.ts
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { userInfo } from "node:os";
function trustProbeCommands(user, timeoutMs) {
  const bounded = (argv) => ({ argv: [...argv], timeoutMs });
  return {
    storeInfo: bounded(nixCommandArgv("store", "info", "--json")),
    storePing: bounded(nixCommandArgv("store", "ping", "--json")),
    configShow: bounded(CONFIG_SHOW_ARGV),
    showConfig: bounded(SHOW_CONFIG_ARGV),
    groups: bounded(["id", "-Gn", user])
  };
}
var succeeded2 = (r) => r.exitCode === 0 && !r.timedOut && !r.aborted;
async function probeNixTrust(executor, timeoutMs, options = {}) {
  const user = options.user ?? userInfo().username;
  const commands = options.commands ?? trustProbeCommands(user, timeoutMs);
  const run = (command) => executor.run(command, { signal: options.signal });
  const tried = [];
  for (const command of [commands.storeInfo, commands.storePing]) {
    const what2 = command.argv.filter((word) => word !== "--extra-experimental-features" && word !== "nix-command").join(" ");
    const result = await run(command);
    if (result.aborted) return { trusted: "unknown", how: `${what2}: interrupted`, user };
    const answer = succeeded2(result) ? storeTrustField(result.stdout) : void 0;
    if (answer) return { trusted: answer.trusted, how: `${what2}: "trusted": ${answer.raw}${answer.url ? ` (store ${answer.url})` : ""}`, user };
    tried.push(`${what2}: ${succeeded2(result) ? 'no "trusted" field' : failure(result)}`);
  }
  const runs = await readNixConfigWith(async (command) => ({ argv: command.argv, result: await run(command) }), commands.configShow, commands.showConfig);
  const config = runs.at(-1);
  const what = config.argv.slice(3).join(" ");
  if (!succeeded2(config.result)) return { trusted: "unknown", how: [...tried, `nix ${what}: ${failure(config.result)}`].join("; "), user };
  let settings;
  try {
    settings = parseNixSettings(config.result.stdout);
  } catch (error) {
    return { trusted: "unknown", how: [...tried, `nix ${what}: ${error.message}`].join("; "), user };
  }
  const store = stringSetting(settings, "store") ?? "auto";
  const kind = await storeKind(store, options);
  if (kind === "other") return { trusted: "unknown", how: [...tried, `store ${store}: neither this machine's store nor its daemon`].join("; "), user };
  if (kind === "local") return { trusted: true, how: `store ${store} is not a daemon: its owner is trusted (nix ${what})`, user };
  const trustedUsers = stringListSetting(settings, "trusted-users");
  const listed = `trusted-users = ${trustedUsers.join(" ") || "(empty)"}`;
  if (trustedUsers.includes("*")) return { trusted: true, how: `${listed}: * trusts everyone`, user };
  if (trustedUsers.includes(user)) return { trusted: true, how: `${listed}: names ${user}`, user };
  const groupsRun = await run(commands.groups);
  const groups = succeeded2(groupsRun) ? groupsRun.stdout.trim().split(/\s+/).filter((g) => g !== "") : [];
  const group = trustedUsers.find((u) => u.startsWith("@") && groups.includes(u.slice(1)));
  if (group) return { trusted: true, how: `${listed}: names ${group}, a group of ${user}`, user };
  const groupNote = succeeded2(groupsRun) ? `groups ${groups.join(" ") || "(none)"}` : `id -Gn ${user}: ${failure(groupsRun)}`;
  return { trusted: false, how: `${listed}: names neither ${user}, * nor a group of ${user} (${groupNote}); the daemon ignores --builders`, user };
}
function storeTrustField(stdout) {
  let parsed;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return void 0;
  }
  if (typeof parsed !== "object" || parsed === null) return void 0;
  const { trusted, url } = parsed;
  if (typeof trusted !== "number" && typeof trusted !== "boolean") return void 0;
  return { trusted: Boolean(trusted), raw: String(trusted), ...typeof url === "string" ? { url } : {} };
}
function failure(result) {
  if (result.timedOut) return "timed out";
  const line = `${result.stderr}
${result.stdout}`.split("\n").map((l) => l.trim()).find((l) => l !== "");
  return `exited with ${result.exitCode ?? result.signal}${line ? ` (${line})` : ""}`;
}
async function storeKind(store, options) {
  const uri = store.replace(/\?.*$/, "");
  if (uri === "daemon" || uri.startsWith("unix://")) return "daemon";
  if (uri === "local" || uri.startsWith("/")) return "local";
  if (uri !== "auto" && uri !== "") return "other";
  const stateDir = options.stateDir ?? process.env.NIX_STATE_DIR ?? "/nix/var/nix";
  const socket = options.daemonSocket ?? process.env.NIX_DAEMON_SOCKET_PATH ?? `${stateDir}/daemon-socket/socket`;
  if (await access(stateDir, constants.R_OK | constants.W_OK).then(() => true, () => false)) return "local";
  return await stat(socket).then(() => true, () => false) ? "daemon" : "local";
}

// lib/nix/deploy-method.ts
import { z as z5 } from "zod";
var deployMethodSchema = z5.object({
  /** what the deploy stage runs per host */
  kind: z5.enum(["store-path", "flake", "direct"]),
  /** what the inventory's deploy.method asked for; absent: chosen by the probe */
  requested: z5.enum(DEPLOY_METHODS).optional(),
  /** why: the inventory's choice and the probe result that settled it */
  why: z5.string(),
  /** true only for `flake`: each host's configuration is evaluated again in the deploy stage */
  evaluatesAgain: z5.boolean()
});
function acceptsStorePath(tool) {
  return tool.found && tool.flags.includes("--store-path");
}
function chooseDeployMethod(tool, requested) {
  const what = describeTool(tool);
  const storePath = acceptsStorePath(tool);
  const base = requested ? { requested } : {};
  if (requested === "direct") {
    return { kind: "direct", ...base, why: "deploy.method is direct: the orchestrator copies the closure, sets the system profile and activates", evaluatesAgain: false };
  }
  if (storePath) {
    const by = requested ? "deploy.method is nixos-rebuild and" : "probed:";
    return { kind: "store-path", ...base, why: `${by} ${what} accepts --store-path: it deploys the built toplevel, no evaluation`, evaluatesAgain: false };
  }
  if (requested === "nixos-rebuild") {
    const lacks = tool.found ? `${what} has no --store-path` : `${what}`;
    return { kind: "flake", ...base, why: `deploy.method is nixos-rebuild and ${lacks}: --flake, so each host's configuration is evaluated again`, evaluatesAgain: true };
  }
  const probed = tool.found ? `${what} has no --store-path` : `${what}`;
  return { kind: "direct", why: `probed: ${probed}: the orchestrator copies the closure, sets the system profile and activates (nothing evaluated again)`, evaluatesAgain: false };
}
var REFUSED_WITH_STORE_PATH = ["--flake", "--file", "-f", "--attr", "-A", "--rollback"];
function methodProblems(method, extraArgs) {
  if (method.kind !== "store-path") return [];
  const refused = extraArgs.filter((arg) => REFUSED_WITH_STORE_PATH.includes(arg.split("=")[0]));
  return refused.map((flag) => `nixosRebuild.extraArgs: ${flag.split("=")[0]} cannot go with --store-path (nixos-rebuild-ng refuses it): remove it, or set deploy.method to direct`);
}
function runsNixosRebuild(method) {
  return method.kind !== "direct";
}
function describeDeployMethod(method) {
  return method.kind === "direct" ? "direct" : method.kind === "store-path" ? "nixos-rebuild --store-path" : "nixos-rebuild --flake (evaluates each host again)";
}

// lib/remote/fleet.ts
function sshOptions(inventory) {
  const seconds2 = inventory.timeouts.connectSeconds;
  const given = new Set(inventory.ssh.options.map((o) => o.split("=")[0].toLowerCase()));
  const defaults = ["BatchMode=yes", `ConnectTimeout=${seconds2}`, `ServerAliveInterval=${seconds2}`, "ServerAliveCountMax=3"];
  return [
    ...inventory.ssh.options,
    ...defaults.filter((d) => !given.has(d.split("=")[0].toLowerCase())).flatMap((d) => ["-o", d])
  ];
}
function connectionReuseOptions(controlDir) {
  return ["-o", "ControlMaster=auto", "-o", `ControlPath=${controlDir}/%C`, "-o", "ControlPersist=60"];
}
function entryOf(inventory, name) {
  const entry = inventory.hosts[name];
  if (!entry) throw new Error(`unknown host ${name}`);
  return entry;
}
function targetHost(inventory, name, controlDir) {
  const entry = entryOf(inventory, name);
  return {
    user: entry.deployUser,
    address: entry.address,
    escalation: entry.deployUser === "root" ? "none" : "sudo",
    ...entry.sshKey ? { identityFile: entry.sshKey } : {},
    sshOptions: [...sshOptions(inventory), ...controlDir ? connectionReuseOptions(controlDir) : []]
  };
}
function localTargetHost(inventory, name, user) {
  const entry = entryOf(inventory, name);
  return { user, address: entry.address, escalation: user === "root" ? "none" : "sudo", sshOptions: [], local: true };
}
function thisMachineAmong(inventory, hosts, hostname4) {
  const short = hostname4.split(".")[0];
  return hosts.find((name) => name === short || inventory.hosts[name].address.host === hostname4);
}
function localCoordinatorProblem(inventory, hostname4) {
  const named = thisMachineAmong(inventory, Object.keys(inventory.hosts), hostname4);
  if (!inventory.coordinator.local || named === void 0 || named === inventory.coordinator.name) return void 0;
  return `coordinator.local is true (the run is on ${inventory.coordinator.name}), but this machine's hostname ${hostname4} is ${named}'s: set coordinator.local to false where the run is not always on ${inventory.coordinator.name}`;
}
function hereAmong(inventory, hosts, hostname4, user) {
  const name = thisMachineAmong(inventory, hosts, hostname4);
  return name === void 0 ? void 0 : { name, user };
}
function reachTarget(inventory, name, here, controlDir) {
  return name === here?.name ? localTargetHost(inventory, name, here.user) : targetHost(inventory, name, controlDir);
}
function builderHost(inventory, name) {
  const entry = entryOf(inventory, name);
  if (!entry.builder) return void 0;
  const { user, sshKey } = entry.builder;
  return { user, address: entry.address, escalation: "none", ...sshKey ? { identityFile: sshKey } : {}, sshOptions: sshOptions(inventory) };
}
function coordinatorHost(inventory) {
  const { user, address: address2 } = inventory.coordinator;
  return { user, address: address2, escalation: "none", sshOptions: sshOptions(inventory) };
}
function coordinatorBuilderHost(inventory) {
  const sshKey = inventory.coordinator.builder?.sshKey;
  return { ...coordinatorHost(inventory), ...sshKey ? { identityFile: sshKey } : {} };
}
function coordinatorPlace(inventory, onCoordinator) {
  return onCoordinator ? { kind: "local" } : { kind: "ssh", host: coordinatorHost(inventory) };
}
function atPlace(place2, argv) {
  return place2.kind === "local" ? [...argv] : remoteArgv(place2.host, argv);
}
function isOnCoordinator(inventory, hostname4) {
  const { local, name, address: address2 } = inventory.coordinator;
  const short = hostname4.split(".")[0];
  return local || hostname4 === address2.host || short === name;
}
function shortCommandTimeoutMs(inventory) {
  return (inventory.timeouts.connectSeconds * 2 + 10) * 1e3;
}

// lib/remote/lock-scripts.ts
var LOCK_HELD = 75;
var LOCK_CANNOT_CREATE = 73;
var ACQUIRE_LOCK = `
mkdir -p "$(dirname "$1")" || exit ${LOCK_CANNOT_CREATE}
if err=$( ( set -C; printf '%s\\n' "$2" >"$1" ) 2>&1 ); then exit 0; fi
if [ -e "$1" ]; then cat "$1"; exit ${LOCK_HELD}; fi
printf '%s\\n' "$err" >&2
exit ${LOCK_CANNOT_CREATE}
`;
var REMOVE_LOCK = `rm -f "$1"`;
var RELEASE_LOCK = `grep -qF -- "$2" "$1" 2>/dev/null && rm -f "$1"; exit 0`;

// lib/remote/generations.ts
import { z as z6 } from "zod";
var BOOTED_SYSTEM = "/run/booted-system";
var FORMAT2 = "avalanche-generations-1";
var LIST_GENERATIONS = `
profile=$1
dir=$(dirname "$profile") base=$(basename "$profile")
resolved() { [ -e "$1" ] && readlink -f "$1" 2>/dev/null; }
echo "format=${FORMAT2}"
echo "profile-name=$base"
echo "profile-link=$([ -L "$profile" ] && readlink "$profile" 2>/dev/null)"
echo "current-system=$(resolved "$2")"
echo "booted-system=$(resolved "$3")"
for link in "$dir/$base"-*-link; do
  [ -L "$link" ] || continue
  n=\${link#"$dir/$base"-}; n=\${n%-link}
  [ -n "$n" ] || continue
  case $n in *[!0-9]*) continue ;; esac
  echo "generation=$n $(stat -c %Y "$link" 2>/dev/null) $(readlink -f "$link" 2>/dev/null)"
done
`;
function generationsArgv(target, paths) {
  return remoteArgv(target, ["sh", "-c", LIST_GENERATIONS, "avalanche-generations", paths.profile, paths.currentSystem, BOOTED_SYSTEM]);
}
var systemGenerationSchema = z6.object({
  /** N of `system-N-link` */
  number: z6.number().int().nonnegative(),
  /** when the generation was made (its link's mtime, as nix-env --list-generations shows), ISO 8601 UTC; absent when stat could not tell */
  createdAt: z6.string().optional(),
  /** the store path the generation's link resolves to */
  toplevel: z6.string(),
  /** the profile points at it: the generation the bootloader starts by default */
  bootDefault: z6.boolean(),
  /** its toplevel is what runs now (/run/current-system) */
  current: z6.boolean(),
  /** its toplevel is what the host booted (/run/booted-system) */
  booted: z6.boolean()
});
var hostGenerationsSchema = z6.object({
  /** ascending by number; empty on a host never deployed (no profile) */
  generations: z6.array(systemGenerationSchema),
  /** the generation the profile points at (the boot default); absent without a profile, or when it points elsewhere than a system-N-link */
  profileGeneration: z6.number().int().nonnegative().optional(),
  /** the store path /run/current-system resolves to; absent when it does not exist */
  currentSystem: z6.string().optional(),
  /** the store path /run/booted-system resolves to; absent when it does not exist (not booted as NixOS) */
  bootedSystem: z6.string().optional()
});
function linkNumber(link, profileBase) {
  const name = link.slice(link.lastIndexOf("/") + 1);
  const match = /^(.+)-(\d+)-link$/.exec(name);
  if (!match || profileBase !== void 0 && match[1] !== profileBase) return void 0;
  return Number(match[2]);
}
function parseGenerations(stdout) {
  const fields = /* @__PURE__ */ new Map();
  const raw = [];
  for (const line of stdout.split("\n")) {
    const at = line.indexOf("=");
    if (at <= 0) continue;
    const key = line.slice(0, at);
    const value = line.slice(at + 1).trim();
    if (key !== "generation") {
      fields.set(key, value);
      continue;
    }
    const match = /^(\d+) (\d*) (.*)$/.exec(line.slice(at + 1).trimEnd());
    if (!match) throw new Error(`cannot read the generation line "${line}"`);
    raw.push({ number: Number(match[1]), mtime: match[2], toplevel: match[3] });
  }
  if (fields.get("format") !== FORMAT2) throw new Error(`not a generation listing (expected a "format=${FORMAT2}" line): ${JSON.stringify(stdout.slice(0, 200))}`);
  const profileLink = fields.get("profile-link") || void 0;
  const profileGeneration = profileLink === void 0 ? void 0 : linkNumber(profileLink, fields.get("profile-name") || void 0);
  const currentSystem = fields.get("current-system") || void 0;
  const bootedSystem = fields.get("booted-system") || void 0;
  const generations = raw.sort((a, b) => a.number - b.number).map((g) => ({
    number: g.number,
    ...g.mtime === "" ? {} : { createdAt: new Date(Number(g.mtime) * 1e3).toISOString() },
    toplevel: g.toplevel,
    bootDefault: g.number === profileGeneration,
    current: currentSystem !== void 0 && g.toplevel === currentSystem,
    booted: bootedSystem !== void 0 && g.toplevel === bootedSystem
  }));
  return {
    generations,
    ...profileGeneration === void 0 ? {} : { profileGeneration },
    ...currentSystem === void 0 ? {} : { currentSystem },
    ...bootedSystem === void 0 ? {} : { bootedSystem }
  };
}
function previousGeneration(host2) {
  const current = host2.profileGeneration;
  if (current === void 0) return void 0;
  return host2.generations.filter((g) => g.number < current).at(-1);
}

// lib/plan/concurrency.ts
var DEFAULT_CONCURRENCY = 10;
function concurrencyFor(hosts, given) {
  return Math.max(1, Math.min(given ?? DEFAULT_CONCURRENCY, Math.max(1, hosts)));
}

// lib/plan/placeholders.ts
var PLACEHOLDER = {
  /** this run's id: names its watchdog canary on the targets */
  runId: "{{run-id}}",
  /** this run's private directory of ssh control sockets */
  sshControlDir: "{{ssh-control-dir}}",
  /** the profile link the host had (system-5-link), empty for a first deploy */
  previousProfileLink: "{{previous-profile-link}}",
  /** the store path the host was running */
  previousSystem: "{{previous-system}}",
  /** this run's lock holder record (JSON) and its id */
  lockHolder: "{{lock-holder}}",
  lockHolderId: "{{lock-holder-id}}",
  /** the evaluated toplevel of a host (its store path), and that path's base name */
  toplevel: (host2) => `{{toplevel:${host2}}}`,
  toplevelName: (host2) => `{{toplevel-name:${host2}}}`,
  /** the hash part of a host's toplevel, which names its narinfo */
  toplevelHash: (host2) => `{{toplevel-hash:${host2}}}`,
  /** the derivation (`.drv` store path) the evaluate stage instantiated for a host's toplevel: what the seed build builds */
  toplevelDrv: (host2) => `{{toplevel-drv:${host2}}}`,
  /** the --builders entries of a system's builders that answered in preflight, the seed first */
  builders: (system2) => `{{builders:${system2}}}`,
  /** the --builders entry of a system's seed alone: the preferred seed as soon as it answered, else the first builder that did */
  seedBuilder: (system2) => `{{seed-builder:${system2}}}`,
  /** a rollback's chosen system generation number on a host (its toplevel is `{{toplevel:<host>}}`) */
  generation: (host2) => `{{generation:${host2}}}`
};
var KNOWN = /\{\{(run-id|ssh-control-dir|previous-profile-link|previous-system|lock-holder|lock-holder-id|toplevel:[^{}]+|toplevel-name:[^{}]+|toplevel-hash:[^{}]+|toplevel-drv:[^{}]+|generation:[^{}]+|builders:[^{}]+|seed-builder:[^{}]+)\}\}/g;
var UNSAFE = /['\n\r\0]/;
function toplevelValues(toplevels) {
  return Object.fromEntries(
    Object.entries(toplevels).flatMap(([host2, storePath]) => [
      [`toplevel:${host2}`, storePath],
      [`toplevel-name:${host2}`, storePath.slice(storePath.lastIndexOf("/") + 1)],
      [`toplevel-hash:${host2}`, storePathHash(storePath)]
    ])
  );
}
function toplevelDerivationValues(drvPaths) {
  return Object.fromEntries(Object.entries(drvPaths).map(([host2, drvPath]) => [`toplevel-drv:${host2}`, drvPath]));
}
function previousGenerationValues(generation) {
  return { "previous-profile-link": generation.profileLink, "previous-system": generation.currentSystem };
}
function toplevelOf(values, host2) {
  return values[`toplevel:${host2}`];
}
function fillText(text, values) {
  return text.replace(KNOWN, (token, name) => {
    const value = values[name];
    if (value === void 0) throw new Error(`placeholder ${token} has no value at run time`);
    if (UNSAFE.test(value)) throw new Error(`refusing to put ${JSON.stringify(value)} into a command for ${token}: it holds a quote or a line break`);
    return value;
  });
}
function fillCommand(command, values) {
  return {
    ...command,
    argv: command.argv.map((word) => fillText(word, values)),
    ...command.env ? { env: Object.fromEntries(Object.entries(command.env).map(([k, v]) => [k, fillText(v, values)])) } : {}
  };
}

// lib/plan/types.ts
import { z as z7 } from "zod";
var STAGES = ["preflight", "resolve", "evaluate", "seed-build", "wait-for-cache", "deploy", "report"];
var OPERATIONS = ["deploy", "rollback"];
var OPERATION_STAGES = {
  deploy: ["preflight", "evaluate", "seed-build", "wait-for-cache", "deploy", "report"],
  rollback: ["preflight", "resolve", "deploy", "report"]
};
var DEPLOY_GOALS = [...GOALS, "build"];
function deployStages(goal) {
  return OPERATION_STAGES.deploy.filter((stage) => goal !== "build" || stage !== "deploy");
}
var stagesSchema = z7.array(z7.enum(STAGES));
var plannedCommandSchema = z7.object({
  /** argv[0] is the program; each element reaches it as one argument (placeholders `{{…}}` filled at run time) */
  argv: z7.array(z7.string()),
  /** added to the orchestrator's environment */
  env: z7.record(z7.string(), z7.string()).optional(),
  /** killed (with everything it started) after this many ms */
  timeoutMs: z7.number()
});
var place = z7.discriminatedUnion("kind", [z7.object({ kind: z7.literal("local") }), z7.object({ kind: z7.literal("ssh"), host: remoteHostSchema })]);
var healthCheckPlanSchema = z7.discriminatedUnion("kind", [
  z7.object({
    kind: z7.literal("command"),
    name: z7.string(),
    command: plannedCommandSchema,
    /** healthy when stdout (trimmed) is one of these, whatever the exit status; absent: when it exits 0 */
    stdoutOneOf: z7.array(z7.string()).optional()
  }),
  z7.object({ kind: z7.literal("http"), name: z7.string(), url: z7.string(), status: z7.number(), timeoutMs: z7.number() })
]);
var healthPlanSchema = z7.object({
  checks: z7.array(healthCheckPlanSchema),
  /** each check is tried 1 + retries times, intervalMs apart */
  retries: z7.number(),
  intervalMs: z7.number(),
  /** after they first pass, every check must keep passing this long (0: no settle window) */
  settleMs: z7.number()
});
var rebootPlanSchema = z7.object({
  /** as root: leaves `marker` in /run and runs systemctl reboot (lib/remote/scripts.ts REBOOT); its ssh session may end with 255 */
  command: plannedCommandSchema,
  /** in /run, a fresh tmpfs on every boot: gone means the host booted again (the kernel's boot_id is the host machine's in a container) */
  marker: z7.string(),
  /** asked every pollIntervalMs over a new connection (the run's reused one dies with the host): the marker, boot id, booted and running system, system state (BOOT_CHECK) */
  poll: plannedCommandSchema,
  pollIntervalMs: z7.number(),
  /** how long the host may take to come back, from the reboot command's end (inventory timeouts.rebootSeconds) */
  waitMs: z7.number(),
  /** what it must have booted: the link `bootedSystem` (NixOS's stage 2 makes it) resolves to this toplevel */
  bootedSystem: z7.string(),
  expectBooted: z7.string()
});
var hostPlanSchema = z7.object({
  name: z7.string(),
  system: z7.string(),
  target: remoteHostSchema,
  /** prints the profile link, its store path and the running system (lib/remote/scripts.ts PROBE_GENERATION) */
  probe: plannedCommandSchema,
  /**
   * what the new toplevel changes against the system the probe read
   * (lib/nix/closure-diff.ts CLOSURE_DIFF, on the target as its deploy user,
   * fetching the new toplevel from its substituters): before activation
   */
  diff: plannedCommandSchema.optional(),
  /** deploy method direct, a target other than this machine: copies the toplevel's closure there (before the watchdog is armed: it changes nothing the host runs) */
  copy: plannedCommandSchema.optional(),
  /** arms the magic-rollback watchdog with the generation the probe read */
  arm: plannedCommandSchema.optional(),
  /** deploy method direct, goals switch and boot: points the system profile at the new toplevel (a new generation) */
  setProfile: plannedCommandSchema.optional(),
  /** the activation: nixos-rebuild (--store-path or --flake), the direct method's switch-to-configuration, or a rollback's switch to a generation */
  rebuild: plannedCommandSchema,
  /** --reboot: reboot into the new boot default and check it booted it */
  reboot: rebootPlanSchema.optional(),
  /** for goals that activate (switch, test), and after a reboot */
  health: healthPlanSchema.optional(),
  /** disarms the watchdog over a new connection: exit 3 means it came too late */
  confirm: plannedCommandSchema.optional(),
  /** back to the probed generation when activation or health checks fail */
  rollback: plannedCommandSchema.optional(),
  /** closes the run's reused connection to the target */
  closeConnection: plannedCommandSchema.optional()
});
var builderPlanSchema = z7.object({
  /** the inventory's name for it (the coordinator's name when the coordinator builds its own system for a run started elsewhere) */
  host: z7.string(),
  /** it answers SSH as its builder user and has Nix */
  check: plannedCommandSchema,
  /** how Nix names this builder in its log: the URI its --builders entry starts with */
  uri: z7.string(),
  /** its --builders entry, in Nix's machines format */
  spec: z7.string()
});
var systemBuildSchema = z7.object({
  system: z7.string(),
  hosts: z7.array(z7.string()),
  on: z7.enum(["builders", "here"]),
  /** the preferred seed first, then the others in inventory order; empty when built here */
  builders: z7.array(builderPlanSchema),
  /**
   * Started as soon as `hosts`' first host is evaluated (the first
   * evaluation), while the others' evaluation goes on: the derivations its
   * toplevel shares with the others (the kernel) start building then. On
   * builders: on the seed alone (`{{seed-builder:<system>}}`), once it
   * answered, not waiting for the other builders' checks.
   * Absent for a system of one host.
   */
  headStart: z7.object({ hosts: z7.array(z7.string()), build: plannedCommandSchema }).optional(),
  /**
   * the system's other toplevels (all of them without a head start), once
   * they are evaluated: what they share with the head start's (the kernel)
   * is found built or building
   */
  build: plannedCommandSchema
});
var lockPlanSchema = z7.object({
  path: z7.string(),
  acquire: plannedCommandSchema,
  release: plannedCommandSchema,
  remove: plannedCommandSchema,
  /** a lock older than this is stale whoever holds it */
  maxAgeMs: z7.number()
});
var targetChecksSchema = z7.array(
  z7.object({
    host: z7.string(),
    command: plannedCommandSchema,
    escalates: z7.boolean(),
    /** the target is this machine: checked here, without ssh */
    local: z7.boolean().optional()
  })
);
var deployStageSchema = z7.object({
  /** ask before activating each host, showing its closure diff (--interactive) */
  interactive: z7.boolean(),
  /** stop each host after its closure diff: nothing is activated (--dry-run --diff) */
  diffOnly: z7.boolean(),
  concurrency: z7.number(),
  /** the first wave's hosts when it is a canary wave: deployed alone first, their failure stops the rest (--canary, or the seeds with --rolling) */
  canaries: z7.array(z7.string()),
  rolling: z7.boolean(),
  keepGoing: z7.boolean(),
  rollback: z7.boolean(),
  magicRollback: z7.boolean(),
  confirmTimeoutSeconds: z7.number(),
  hosts: z7.record(z7.string(), hostPlanSchema)
});
var deployPlanSchema = z7.object({
  operation: z7.literal("deploy"),
  goal: z7.enum(DEPLOY_GOALS),
  /** the stages the run executes, in order (lib/plan/types.ts deployStages): without `deploy` for goal build */
  stages: stagesSchema,
  flake: z7.string(),
  hosts: z7.array(z7.string()),
  coordinator: z7.object({ name: z7.string(), place }),
  baselineMinutes: z7.number(),
  /** absent for goal build: it changes no host, so it does not wait for (or block) a deploy */
  lock: lockPlanSchema.optional(),
  preflight: z7.object({
    /** empty for goal build: a prebuild must work while a target is down */
    targets: targetChecksSchema,
    /** whether this machine's Nix trusts `user` (else its daemon ignores --builders): asked in order until one answer tells */
    nixTrust: z7.object({
      user: z7.string(),
      storeInfo: plannedCommandSchema,
      storePing: plannedCommandSchema,
      configShow: plannedCommandSchema,
      showConfig: plannedCommandSchema,
      groups: plannedCommandSchema
    }),
    /** the nixos-rebuild probed here, and what cannot work with it; absent for goal build and the direct method (none runs) */
    rebuild: z7.object({ tool: rebuildToolSchema, problems: z7.array(z7.string()) }).optional(),
    gcRootDir: z7.string(),
    /** the seed build pins into gcRootDir on the coordinator: it must be writable there before building */
    gcRootDirWritable: plannedCommandSchema,
    /** the cache must sign with this key: checked on the newest paths pinned on the coordinator */
    cacheKey: z7.object({ publicKey: z7.string(), listRoots: plannedCommandSchema }),
    cacheUrl: z7.string(),
    requestTimeoutMs: z7.number()
  }),
  /**
   * The evaluations, all started with the run, beside preflight (they touch
   * no host): the first holds each system's first host, so that its head
   * start begins after one evaluation; the second the others. Each host is
   * in exactly one: evaluated once per run.
   */
  evaluate: z7.array(z7.object({ hosts: z7.array(z7.string()), command: plannedCommandSchema })),
  /** one build per Nix system of the selected hosts, run at the same time */
  builds: z7.array(systemBuildSchema),
  /** the deploy stage's order: each system's seed that is a target first, alone with them; the rest; this machine last */
  waves: z7.array(z7.array(z7.string())),
  /** brings the toplevels to the coordinator's store when this machine is not the coordinator */
  copyToCoordinator: plannedCommandSchema.optional(),
  /** GC roots for the toplevels on the coordinator (mkdir, then one ln per toplevel) */
  pin: z7.object({ commands: z7.array(plannedCommandSchema), roots: z7.array(z7.object({ host: z7.string(), storePath: z7.string(), root: z7.string() })) }),
  waitForCache: z7.object({
    cacheUrl: z7.string(),
    publicKey: z7.string(),
    /** one narinfo per toplevel, polled at most every pollMaxMs until timeoutMs */
    narinfos: z7.array(z7.object({ host: z7.string(), storePath: z7.string(), url: z7.string() })),
    pollMaxMs: z7.number(),
    timeoutMs: z7.number(),
    requestTimeoutMs: z7.number(),
    allowUnsigned: z7.boolean()
  }),
  /** how the deploy stage puts each toplevel on its host, and why (lib/nix/deploy-method.ts); absent for goal build */
  deployMethod: deployMethodSchema.optional(),
  /** no hosts for goal build: the run stops after the cache wait (`stages` has no `deploy`) */
  deploy: deployStageSchema
});
var rollbackTargetSchema = z7.discriminatedUnion("kind", [
  /** the highest-numbered generation below the profile's (nixos-rebuild --rollback) */
  z7.object({ kind: z7.literal("previous") }),
  /** generation `number` of the system profile (--to) */
  z7.object({ kind: z7.literal("generation"), number: z7.number().int().nonnegative() }),
  /** the newest generation whose toplevel is this store path: what run `run` found on the host (--run) */
  z7.object({ kind: z7.literal("toplevel"), toplevel: z7.string(), run: z7.string() })
]);
var rollbackPlanSchema = z7.object({
  operation: z7.literal("rollback"),
  goal: z7.enum(["switch", "boot", "test"]),
  /** the stages the run executes, in order: OPERATION_STAGES.rollback */
  stages: stagesSchema,
  hosts: z7.array(z7.string()),
  coordinator: z7.object({ name: z7.string(), place }),
  lock: lockPlanSchema,
  preflight: z7.object({ targets: targetChecksSchema }),
  resolve: z7.object({
    hosts: z7.record(
      z7.string(),
      z7.object({
        /** lists the host's system generations (lib/remote/generations.ts), as its deploy user */
        list: plannedCommandSchema,
        to: rollbackTargetSchema
      })
    )
  }),
  /** the order the hosts go in: one wave, or waves of the batch size with --rolling */
  waves: z7.array(z7.array(z7.string())),
  deploy: deployStageSchema
});
function activationName(plan) {
  if (plan.operation === "rollback") return "switch to the chosen generation";
  return plan.deployMethod?.kind === "direct" ? "switch-to-configuration" : "nixos-rebuild";
}
var dryRunOutputSchema = z7.object({
  dryRun: z7.literal(true),
  plan: z7.discriminatedUnion("operation", [deployPlanSchema, rollbackPlanSchema]),
  /** with --diff: each host's closure diff, made after building and fetching (nothing activated) */
  diffs: z7.record(z7.string(), hostClosureDiffSchema).optional()
});

// lib/plan/waves.ts
function preferredSeed(build, coordinator) {
  return build.builders[0]?.host ?? coordinator;
}
function builderSeeds(builds) {
  return builds.flatMap((build) => build.builders.slice(0, 1).map((builder2) => builder2.host));
}
function isLastAloneWave(plan, index) {
  const wave = plan.waves[index];
  return index > 0 && wave.length === 1 && (wave[0] === plan.coordinator.name || plan.deploy.hosts[wave[0]].target.local === true);
}

// lib/plan/assemble.ts
var MINUTE = 6e4;
var POLL_MAX_MS = 1e3;
function planDeploy(inventory, hosts, options) {
  const flake = options.flake ?? inventory.flake;
  const t = inventory.timeouts;
  const shortMs = shortCommandTimeoutMs(inventory);
  const coordinator = coordinatorPlace(inventory, options.onCoordinator);
  const coordinatorEnv = sshEnv(coordinatorHost(inventory));
  const goal = options.goal;
  const deploys = goal !== "build";
  const deployed = deploys ? hosts : [];
  const rebuildGoal = goal === "build" ? "dry-activate" : goal;
  const localUser = options.localUser ?? userInfo2().username;
  const thisMachine2 = options.thisMachine !== void 0 && deployed.includes(options.thisMachine) ? options.thisMachine : void 0;
  const targets = planTargets(inventory, deployed, options.reuseConnections ?? true, thisMachine2 === void 0 ? void 0 : { name: thisMachine2, user: localUser });
  const builds = planBuilds(inventory, hosts, options, coordinatorEnv);
  const rolling = options.rolling ?? false;
  const batchSize = Math.max(1, options.batchSize ?? 1);
  const last = [inventory.coordinator.name, ...thisMachine2 === void 0 ? [] : [thisMachine2]];
  const canaries = deploys ? planCanaries(options.canaries, deployed, last, rolling ? builderSeeds(builds) : []) : [];
  const waves = planWaves(deployed, { first: canaries, last, rolling, batchSize });
  const rebuildTool = options.rebuildTool ?? unprobedRebuildTool(inventory.nixosRebuild.command);
  const { flags, problems } = planRebuildFlags(inventory, targets, rebuildTool, options.localSystem ?? inventory.coordinator.system);
  const deployMethod = deploys ? chooseDeployMethod(rebuildTool, inventory.deploy?.method) : void 0;
  const { gcRootDir } = inventory.cache;
  const roots = hosts.map((host2) => ({ host: host2, storePath: PLACEHOLDER.toplevel(host2), root: posix2.join(gcRootDir, PLACEHOLDER.toplevelName(host2)) }));
  const onCoordinator = (argv) => ({ argv: atPlace(coordinator, argv), timeoutMs: shortMs });
  return {
    operation: "deploy",
    goal,
    stages: deployStages(goal),
    flake,
    hosts: [...hosts],
    coordinator: { name: inventory.coordinator.name, place: coordinator },
    baselineMinutes: inventory.baselineMinutes,
    ...deploys ? { lock: planLock(inventory, coordinator) } : {},
    preflight: {
      targets: planTargetChecks(deployed, targets, shortMs),
      nixTrust: { user: localUser, ...trustProbeCommands(localUser, t.connectSeconds * 1e3) },
      ...deployMethod && runsNixosRebuild(deployMethod) ? { rebuild: { tool: rebuildTool, problems: [...problems, ...methodProblems(deployMethod, inventory.nixosRebuild.extraArgs)] } } : {},
      gcRootDir,
      gcRootDirWritable: onCoordinator(writableDirArgv(gcRootDir)),
      cacheKey: { publicKey: inventory.cache.publicKey, listRoots: onCoordinator(listRootsArgv(gcRootDir)) },
      cacheUrl: inventory.cache.url,
      requestTimeoutMs: t.connectSeconds * 1e3
    },
    evaluate: evaluationGroups(builds).map((group) => ({ hosts: group, command: { argv: evaluateToplevelsArgv(inventory, flake, group), env: coordinatorEnv, timeoutMs: 10 * MINUTE } })),
    builds,
    waves,
    ...options.onCoordinator ? {} : { copyToCoordinator: { argv: copyToArgv(coordinatorHost(inventory), roots.map((r) => r.storePath)), env: coordinatorEnv, timeoutMs: t.buildMinutes * MINUTE } },
    pin: { commands: pinRootsArgvs(gcRootDir, roots).map(onCoordinator), roots },
    waitForCache: {
      cacheUrl: inventory.cache.url,
      publicKey: inventory.cache.publicKey,
      narinfos: hosts.map((host2) => ({ host: host2, storePath: PLACEHOLDER.toplevel(host2), url: narInfoUrlForHash(inventory.cache.url, PLACEHOLDER.toplevelHash(host2)) })),
      pollMaxMs: POLL_MAX_MS,
      timeoutMs: t.cacheWaitSeconds * 1e3,
      requestTimeoutMs: t.connectSeconds * 1e3,
      allowUnsigned: options.allowUnsigned ?? false
    },
    ...deployMethod ? { deployMethod } : {},
    deploy: planDeployStage(inventory, deployed, targets, {
      ...options,
      goal: rebuildGoal,
      concurrency: rolling ? batchSize : concurrencyFor(Math.max(1, ...waves.map((w) => w.length)), options.concurrency),
      canaries,
      ...planDeployMethodSteps(inventory, flake, rebuildGoal, deployMethod, flags)
    })
  };
}
function planDeployMethodSteps(inventory, flake, goal, method, flags) {
  const t = inventory.timeouts;
  const deployMs = t.deployMinutes * MINUTE;
  if (method?.kind === "direct") {
    const steps = (host2, target) => directDeployArgvs(target, PLACEHOLDER.toplevel(host2), goal, inventory.paths.profile);
    return {
      activate: (host2, target) => ({ argv: steps(host2, target).activate, timeoutMs: deployMs }),
      prepare: (host2, target) => {
        const { copy, setProfile } = steps(host2, target);
        return {
          // Bounded like the activation: it may download the whole closure.
          ...copy ? { copy: { argv: copy, env: sshEnv(target), timeoutMs: deployMs } } : {},
          ...setProfile ? { setProfile: { argv: setProfile, timeoutMs: shortCommandTimeoutMs(inventory) } } : {}
        };
      }
    };
  }
  return {
    activate: (host2, target) => ({
      argv: nixosRebuildArgv(inventory.nixosRebuild.command, method?.kind === "store-path" ? { storePath: PLACEHOLDER.toplevel(host2) } : { flake, host: host2 }, target, goal, flags[host2]),
      env: sshEnv(target),
      timeoutMs: deployMs
    })
  };
}
function planBuilds(inventory, hosts, options, env) {
  const t = inventory.timeouts;
  const shortMs = shortCommandTimeoutMs(inventory);
  const check = (builder2) => ({ argv: builderProbeArgv(builder2), timeoutMs: shortMs });
  const toplevelDrvs = (of) => of.map((host2) => derivationOutputInstallable(PLACEHOLDER.toplevelDrv(host2), "out", options.localNix));
  return systemBuilders(inventory, hosts, options.seed).map(({ system: system2, hosts: of, builders: names }) => {
    const timeoutMs = t.buildMinutes * MINUTE;
    const headStart = (placement) => of.length > 1 ? { headStart: { hosts: [of[0]], build: { argv: seedBuildArgv(toplevelDrvs([of[0]]), placement), env, timeoutMs } } } : {};
    const rest = of.length > 1 ? of.slice(1) : of;
    if (names.length === 0 && options.onCoordinator) {
      return { system: system2, hosts: [...of], on: "here", builders: [], ...headStart("here"), build: { argv: seedBuildArgv(toplevelDrvs(rest), "here"), env, timeoutMs } };
    }
    const builders = names.length ? names.map((name) => {
      const builder2 = builderHost(inventory, name);
      return { host: name, check: check(builder2), uri: nixSshStoreUri(builder2), spec: builderSpec(inventory, name, builder2) };
    }) : [(() => {
      const builder2 = coordinatorBuilderHost(inventory);
      return { host: inventory.coordinator.name, check: check(builder2), uri: nixSshStoreUri(builder2), spec: coordinatorBuilderSpec(inventory, builder2) };
    })()];
    return {
      system: system2,
      hosts: [...of],
      on: "builders",
      builders,
      ...headStart({ builders: PLACEHOLDER.seedBuilder(system2) }),
      build: { argv: seedBuildArgv(toplevelDrvs(rest), { builders: PLACEHOLDER.builders(system2) }), env, timeoutMs }
    };
  });
}
function evaluationGroups(builds) {
  const first = builds.map((b) => b.hosts[0]);
  const rest = builds.flatMap((b) => b.hosts.slice(1));
  return [first, rest].filter((group) => group.length > 0);
}
function planLock(inventory, coordinator) {
  const t = inventory.timeouts;
  const lockCommand = (script, args) => ({
    argv: atPlace(coordinator, ["sh", "-c", script, "avalanche-lock", inventory.paths.lock, ...args]),
    timeoutMs: shortCommandTimeoutMs(inventory)
  });
  return {
    path: inventory.paths.lock,
    acquire: lockCommand(ACQUIRE_LOCK, [PLACEHOLDER.lockHolder]),
    release: lockCommand(RELEASE_LOCK, [PLACEHOLDER.lockHolderId]),
    remove: lockCommand(REMOVE_LOCK, []),
    maxAgeMs: (t.buildMinutes + t.deployMinutes + 60) * MINUTE
  };
}
function planTargetChecks(hosts, targets, shortMs) {
  return hosts.map((host2) => ({
    host: host2,
    command: { argv: remoteArgv(targets[host2], ["true"], { asRoot: true }), timeoutMs: shortMs },
    escalates: targets[host2].escalation === "sudo",
    ...targets[host2].local ? { local: true } : {}
  }));
}
function planTargets(inventory, hosts, reuse, here) {
  return Object.fromEntries(hosts.map((host2) => [host2, reachTarget(inventory, host2, here, reuse ? PLACEHOLDER.sshControlDir : void 0)]));
}
function planDeployStage(inventory, hosts, targets, o) {
  const magicRollback = (o.magicRollback ?? true) && ACTIVATING_GOALS.includes(o.goal);
  const rollback = o.rollback ?? true;
  const confirmTimeoutSeconds = o.confirmTimeoutSeconds ?? defaultConfirmSeconds(inventory);
  const diffOnly = o.diffOnly ?? false;
  const interactive = o.interactive ?? false;
  const diff = (o.diff ?? true) || diffOnly || interactive;
  const reboot = o.reboot ?? false;
  if (reboot && o.goal !== "boot") throw new UsageError(`--reboot goes with --goal boot (got ${o.goal}): it boots the new boot default`);
  const here = hosts.find((h) => targets[h].local);
  if (reboot && here !== void 0) {
    throw new UsageError(
      `--reboot: ${here} is the machine this run is on, which cannot reboot and wait for itself; --exclude ${here} (deploy it with --goal boot and reboot it yourself), or run the deploy from another machine`
    );
  }
  const context = { goal: o.goal, magicRollback, rollback, confirmTimeoutSeconds, reuse: o.reuseConnections ?? true, shortMs: shortCommandTimeoutMs(inventory), diff, reboot };
  return {
    interactive,
    diffOnly,
    concurrency: o.concurrency,
    canaries: [...o.canaries ?? []],
    rolling: o.rolling ?? false,
    keepGoing: o.keepGoing ?? false,
    rollback,
    magicRollback,
    confirmTimeoutSeconds,
    hosts: Object.fromEntries(
      hosts.map((host2) => [host2, planHost(inventory, host2, targets[host2], { ...context, activate: o.activate(host2, targets[host2]), prepare: o.prepare?.(host2, targets[host2]) ?? {} })])
    )
  };
}
function planHost(inventory, host2, target, c) {
  const { profile, currentSystem, targetState } = inventory.paths;
  const canary = `${targetState}/canary-${PLACEHOLDER.runId}`;
  const marker = `${targetState}/rollbacks.log`;
  const previous = [profile, currentSystem, PLACEHOLDER.previousProfileLink, PLACEHOLDER.previousSystem, c.goal, marker, canary];
  const deployMs = inventory.timeouts.deployMinutes * MINUTE;
  const armSeconds = String(Math.ceil(inventory.timeouts.deployMinutes * 60));
  const asRoot2 = (argv, timeoutMs, extraOptions) => ({
    argv: remoteArgv(target, argv, { asRoot: true, extraOptions }),
    timeoutMs
  });
  const activates = ACTIVATING_GOALS.includes(c.goal);
  return {
    name: host2,
    system: inventory.hosts[host2].system,
    target,
    probe: { argv: generationProbeArgv(target, inventory.paths), timeoutMs: c.shortMs },
    // Bounded like the activation: it may download the new closure (which the activation then finds in place).
    ...c.diff ? { diff: { argv: closureDiffArgv(target, { current: PLACEHOLDER.previousSystem, toplevel: PLACEHOLDER.toplevel(host2) }), timeoutMs: deployMs } } : {},
    ...c.prepare.copy ? { copy: c.prepare.copy } : {},
    ...c.magicRollback ? { arm: asRoot2(armArgs([...previous, String(c.confirmTimeoutSeconds), armSeconds]), c.shortMs) } : {},
    ...c.prepare.setProfile ? { setProfile: c.prepare.setProfile } : {},
    rebuild: c.activate,
    ...c.reboot ? { reboot: planReboot(inventory, host2, target, c.shortMs) } : {},
    ...activates || c.reboot ? { health: planHealth(inventory, host2, target) } : {},
    // Over a new connection: a path that only a multiplexed master still holds cannot confirm.
    ...c.magicRollback ? { confirm: asRoot2(["sh", "-c", CONFIRM, "avalanche-confirm", canary, marker, profile, currentSystem], c.shortMs, FRESH_CONNECTION) } : {},
    ...c.rollback && c.goal !== "dry-activate" ? { rollback: asRoot2(["sh", "-c", ROLLBACK, "avalanche-rollback", ...previous], deployMs) } : {},
    ...c.reuse && !target.local ? { closeConnection: { argv: closeMasterArgv(target), timeoutMs: c.shortMs } } : {}
  };
}
var REBOOT_POLL_MS = 2e3;
function planReboot(inventory, host2, target, shortMs) {
  const marker = posix2.join(REBOOT_MARKER_DIR, `reboot-${PLACEHOLDER.runId}`);
  return {
    command: { argv: remoteArgv(target, ["sh", "-c", REBOOT, "avalanche-reboot", marker], { asRoot: true }), timeoutMs: shortMs },
    marker,
    poll: {
      argv: remoteArgv(target, ["sh", "-c", BOOT_CHECK, "avalanche-boot-check", marker, BOOTED_SYSTEM, inventory.paths.currentSystem], { extraOptions: FRESH_CONNECTION }),
      timeoutMs: shortMs
    },
    pollIntervalMs: REBOOT_POLL_MS,
    waitMs: inventory.timeouts.rebootSeconds * 1e3,
    bootedSystem: BOOTED_SYSTEM,
    expectBooted: PLACEHOLDER.toplevel(host2)
  };
}
function planHealth(inventory, host2, target) {
  const defaults = inventory.health;
  const own = inventory.hosts[host2].health;
  const timeoutMs = defaults.timeoutSeconds * 1e3;
  const onTarget = (argv) => ({ argv: remoteArgv(target, argv), timeoutMs });
  const checks = target.local ? [] : [{ kind: "command", name: "ssh answers", command: onTarget(["true"]) }];
  const systemState = own?.systemState ?? defaults.systemState ?? "running-or-degraded";
  if (systemState !== "skip") {
    const accepted = systemState === "running" ? ["running"] : ["running", "degraded"];
    checks.push({ kind: "command", name: `system state is ${accepted.join(" or ")}`, command: onTarget(["systemctl", "is-system-running"]), stdoutOneOf: accepted });
  }
  const units = [...defaults.units, ...own?.units ?? []];
  if (units.length) checks.push({ kind: "command", name: `units active: ${units.join(", ")}`, command: onTarget(["systemctl", "is-active", "--", ...units]) });
  for (const argv of [...defaults.commands, ...own?.commands ?? []]) {
    checks.push({ kind: "command", name: `command: ${argv.join(" ")}`, command: onTarget(argv) });
  }
  for (const { url, status } of [...defaults.http, ...own?.http ?? []]) {
    checks.push({ kind: "http", name: `GET ${url} answers ${status}`, url, status, timeoutMs });
  }
  return { checks, retries: defaults.retries, intervalMs: defaults.intervalSeconds * 1e3, settleMs: defaults.settleSeconds * 1e3 };
}
function planRebuildFlags(inventory, targets, tool, localSystem) {
  const flags = Object.fromEntries(
    Object.entries(targets).map(([host2, target]) => {
      const needsSudo = target.escalation === "sudo";
      return [host2, chooseRebuildFlags(tool, { needsSudo, crossSystem: inventory.hosts[host2].system !== localSystem }, inventory.nixosRebuild)];
    })
  );
  return { flags, problems: [...new Set(Object.values(flags).flatMap((f) => f.problems))] };
}
function defaultConfirmSeconds(inventory) {
  const { retries, timeoutSeconds, intervalSeconds, settleSeconds } = inventory.health;
  return Math.max(30, Math.ceil(settleSeconds + (retries + 1) * (timeoutSeconds + intervalSeconds) + 10));
}
function planWaves(hosts, o) {
  const last = [...new Set(o.last ?? [])].filter((h) => hosts.includes(h));
  const first = (o.first ?? []).filter((h) => hosts.includes(h) && !last.includes(h));
  const rest = hosts.filter((h) => !first.includes(h) && !last.includes(h));
  return [first, ...o.rolling ? chunk(rest, o.batchSize) : [rest], ...last.map((h) => [h])].filter((w) => w.length > 0);
}
function planCanaries(asked, deployed, last, fallback) {
  if (!asked?.length) return fallback.filter((h) => deployed.includes(h) && !last.includes(h));
  for (const host2 of asked) {
    if (!deployed.includes(host2)) throw new UsageError(`--canary ${host2}: not one of the hosts deployed (${deployed.join(", ")})`);
    if (last.includes(host2)) throw new UsageError(`--canary ${host2}: the cache host and the machine the run is on go last, alone, after every other host; name another canary`);
  }
  return [...new Set(asked)];
}
function chunk(items, size) {
  const chunks = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

// lib/cache/hints.ts
var cacheHints = {
  keyMismatch: (cacheUrl2) => `Key mismatch: the inventory's cache.publicKey must match the cache's signing key (trusted-public-keys on every machine); compare with ${cacheUrl2}'s cache-pub-key.pem`,
  harmoniaDown: (cacheUrl2) => `Harmonia down: curl ${cacheUrl2}/nix-cache-info should answer "StoreDir: /nix/store"`,
  pathNotSigned: () => "Path not signed: Harmonia only serves paths signed with its key, and the path must exist in the cache host's store (was the build copied back to it?)",
  firewall: (cacheUrl2) => `Firewall: ensure the cache port is open on the cache host (${new URL(cacheUrl2).host})`
};
function cacheUnreachableHints(cacheUrl2) {
  return [cacheHints.harmoniaDown(cacheUrl2), cacheHints.firewall(cacheUrl2)];
}
function pathMissingHints(cacheUrl2) {
  return [cacheHints.pathNotSigned(), cacheHints.harmoniaDown(cacheUrl2), cacheHints.keyMismatch(cacheUrl2), cacheHints.firewall(cacheUrl2)];
}
var gcRootHints = {
  missingRoot: (dir) => `Missing GC root: check ${dir}/ for the expected symlink (the post-build hook pin-arm-cache.sh and every deploy create them)`,
  dangling: () => "Dangling symlink: the target store path was manually deleted; re-build and re-pin",
  unreachable: (destinationText) => `The cache host must answer SSH: ssh ${destinationText} -- true must work by hand`
};
function signatureProblem(check, cacheUrl2) {
  if (check.reason === "unsigned") return { message: "path not signed", hint: cacheHints.pathNotSigned() };
  const signers = check.keyNames.join(", ");
  return {
    message: check.reason === "bad-signature" ? `key mismatch: the signature by ${signers} does not verify` : `key mismatch: signed by ${signers}`,
    hint: cacheHints.keyMismatch(cacheUrl2)
  };
}
function isPlaceholderKey(publicKey) {
  const bytes = Buffer.from(publicKey.slice(publicKey.indexOf(":") + 1), "base64");
  return bytes.length === 32 && bytes.every((b) => b === 0);
}

// lib/exec/describe.ts
function commandLine(command) {
  const env = Object.entries(command.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return [...env, ...command.argv.map(shellQuote)].join(" ");
}
function exitStatus(result) {
  if (result.timedOut) return `timed out after ${Math.round(result.durationMs / 1e3)} s`;
  if (result.exitCode !== null) return `exited with ${result.exitCode}`;
  return `was killed by ${result.signal ?? "a signal"}`;
}
function describeFailure(what, command, result, output2 = outputTail(result)) {
  const tail2 = output2.map((line) => `  | ${line}`);
  return [`${what}: ${command.argv[0]} ${exitStatus(result)}`, `  $ ${commandLine(command)}`, ...tail2].join("\n");
}

// lib/plan/render.ts
var cmd = (c, indent = "    ") => `${indent}$ ${commandLine(c)}`;
var seconds = (ms) => `${Math.round(ms / 1e3)} s`;
function renderPlan(plan) {
  return plan.operation === "rollback" ? renderRollbackPlan(plan) : renderDeployPlan(plan);
}
function coordinatorWhere(plan) {
  return plan.coordinator.place.kind === "local" ? `on the coordinator ${plan.coordinator.name}` : `${plan.coordinator.name} over SSH as ${sshDestination(plan.coordinator.place.host)}`;
}
function renderLock(plan) {
  if (!plan.lock) return ["no deploy lock: a build changes no host, so it neither waits for a deploy nor blocks one"];
  return [
    `first: take the deploy lock ${plan.lock.path} on ${plan.coordinator.name}`,
    cmd(plan.lock.acquire),
    "    released at the end:",
    cmd(plan.lock.release),
    "    with --force-unlock, removed first:",
    cmd(plan.lock.remove)
  ];
}
function renderDeployStage(plan, heading, waves, method = []) {
  const { deploy } = plan;
  return [
    heading,
    ...method,
    ...deploy.rolling ? [`  rolling: waves of ${deploy.concurrency}; ${deploy.keepGoing ? "keep going after a failure" : "the first failure stops the rollout"}`] : [],
    ...waves.map((wave, i) => `  wave ${i + 1}: ${wave.join(", ")}`),
    ...plan.hosts.flatMap((host2) => renderHost(deploy.hosts[host2], deploy, activationName(plan)))
  ];
}
function describeTarget(to) {
  if (to.kind === "previous") return "the generation before the profile's (as nixos-rebuild --rollback)";
  if (to.kind === "generation") return `generation ${to.number}`;
  return `the newest generation of ${to.toplevel} (what run ${to.run} found there)`;
}
function renderRollbackPlan(plan) {
  return [
    `plan: roll back ${plan.hosts.join(", ")} (${plan.goal}), the lock ${coordinatorWhere(plan)}; nothing is evaluated or built`,
    `placeholders, filled at run time: ${PLACEHOLDER.toplevel("host")} (the toplevel of the generation chosen on the host), ${PLACEHOLDER.previousProfileLink} ${PLACEHOLDER.previousSystem} (what the host ran before), ${PLACEHOLDER.runId} ${PLACEHOLDER.sshControlDir} ${PLACEHOLDER.lockHolder} ${PLACEHOLDER.lockHolderId} (this run's)`,
    "",
    ...renderLock(plan),
    "1. preflight",
    "    every target logs in and becomes root as the root steps will",
    ...plan.preflight.targets.map((check) => cmd(check.command)),
    "2. resolve: read each host's generations and choose the one it goes back to",
    ...plan.hosts.flatMap((host2) => {
      const { list, to } = plan.resolve.hosts[host2];
      return [`  ${host2}: ${describeTarget(to)}`, cmd(list)];
    }),
    ...renderDeployStage(plan, `3. switch (${plan.goal}; at most ${plan.deploy.concurrency} at a time)`, plan.waves),
    "4. report (per stage and host)"
  ].join("\n");
}
function renderRebuildTool(rebuild, method) {
  if (method?.kind === "direct") return ["    nixos-rebuild: not run (deploy method direct), so not checked"];
  if (!rebuild) return [];
  const { tool, problems } = rebuild;
  return [
    `    nixos-rebuild on this machine (read from ${commandLine({ argv: rebuildHelpArgv(tool.command) })} when planning \u2014 the one command --dry-run runs): ${describeTool(tool)}${tool.error ? ` (${tool.error})` : ""}${tool.found ? "" : " \u2014 preflight will fail"}`,
    ...problems.map((problem) => `    \u2716 ${problem} \u2014 preflight will fail`)
  ];
}
function renderDeployPlan(plan) {
  const { preflight, deploy, waitForCache } = plan;
  const where = coordinatorWhere(plan);
  const seedOf2 = (b) => `${preferredSeed(b, plan.coordinator.name)}${b.on === "here" ? " (here)" : ""}`;
  const seedText = plan.builds.length === 1 ? `seed ${seedOf2(plan.builds[0])}` : `seeds ${plan.builds.map((b) => `${b.system}: ${seedOf2(b)}`).join(", ")}`;
  const build = !plan.stages.includes("deploy");
  const lines2 = [
    build ? `plan: build ${plan.hosts.join(", ")} from ${plan.flake}, ${seedText} (${where}): build, pin and wait for the cache, then stop \u2014 no host is deployed` : `plan: ${plan.goal} ${plan.hosts.join(", ")} from ${plan.flake}, ${seedText} (${where})`,
    `placeholders, filled at run time: ${PLACEHOLDER.toplevel("host")} ${PLACEHOLDER.toplevelName("host")} ${PLACEHOLDER.toplevelHash("host")} (the evaluated toplevel, its base name and hash), ${PLACEHOLDER.previousProfileLink} ${PLACEHOLDER.previousSystem} (what the host ran before), ${PLACEHOLDER.runId} ${PLACEHOLDER.sshControlDir} ${PLACEHOLDER.lockHolder} ${PLACEHOLDER.lockHolderId} (this run's)`,
    "",
    ...renderLock(plan),
    "1. preflight",
    ...renderRebuildTool(preflight.rebuild, plan.deployMethod),
    ...plan.builds.filter((b) => b.on === "builders").flatMap((b) => [
      `    ${b.system}'s builders answer (those that do build; the first, the seed: ${b.builders.map((x) => x.host).join(", ")})`,
      ...b.builders.map((x) => cmd(x.check))
    ]),
    `    Nix on this machine trusts ${preflight.nixTrust.user} (asked in order until one answer tells)`,
    ...[preflight.nixTrust.storeInfo, preflight.nixTrust.storePing, preflight.nixTrust.configShow, preflight.nixTrust.showConfig, preflight.nixTrust.groups].map((c) => cmd(c)),
    ...build ? ["    no target is asked: a build needs none of them (it works while a target is down)"] : ["    every target logs in and becomes root as the root steps will", ...preflight.targets.map((check) => cmd(check.command))],
    `    GC roots can be made in ${preflight.gcRootDir}`,
    cmd(preflight.gcRootDirWritable),
    `    the cache signs with ${preflight.cacheKey.publicKey.split(":")[0]}: the newest pinned paths' narinfos are checked`,
    ...isPlaceholderKey(preflight.cacheKey.publicKey) ? [`    \u2716 cache.publicKey is the placeholder shipped in hosts.json \u2014 preflight will fail`] : [],
    cmd(preflight.cacheKey.listRoots),
    `    GET ${preflight.cacheUrl}/<hash of each of the newest pinned paths>.narinfo`,
    `    GET ${cacheInfoUrl(preflight.cacheUrl)}   (expects StoreDir: /nix/store)`,
    `2. evaluate (${plan.evaluate.length > 1 ? `${plan.evaluate.length} evaluations one after the other, ` : ""}from the start of the run, beside preflight; each host once)`,
    ...plan.evaluate.flatMap((e) => [`    ${e.hosts.join(", ")}:`, cmd(e.command)]),
    `3. seed build (one per system, at the same time${plan.builds.some((b) => b.on === "builders") ? "; on builders nothing is built locally" : ""})`,
    ...plan.builds.flatMap((b) => [
      b.on === "here" ? `    ${b.system} (${b.hosts.join(", ")}): here, natively on ${plan.coordinator.name}` : `    ${b.system} (${b.hosts.join(", ")}): on those of ${b.builders.map((x) => x.host).join(", ")} that answered, ${PLACEHOLDER.builders(b.system)} = their entries:`,
      ...b.builders.map((x) => `      ${x.spec}`),
      ...b.headStart ? [`    ${b.headStart.hosts.join(", ")} as soon as evaluated (a head start for what the toplevels share)${b.on === "builders" ? `, on the seed alone once it answered (${PLACEHOLDER.seedBuilder(b.system)}: its entry)` : ""}:`, cmd(b.headStart.build), `    then the others, once evaluated:`] : [],
      cmd(b.build)
    ]),
    // A Nix daemon makes the builds itself: only the --builders spec reaches it.
    "    (under a Nix daemon the daemon connects to the builder: its key and host key come from the --builders spec above; NIX_SSHOPTS and ssh.options do not reach it)",
    ...plan.copyToCoordinator ? [cmd(plan.copyToCoordinator)] : [],
    ...plan.pin.commands.map((c) => cmd(c)),
    `4. wait for cache (every \u2264 ${seconds(waitForCache.pollMaxMs)}, at most ${seconds(waitForCache.timeoutMs)}; signed by ${waitForCache.publicKey.split(":")[0]}${waitForCache.allowUnsigned ? "; --allow-unsigned: unsigned or untrusted narinfos ACCEPTED" : ""})`,
    ...waitForCache.narinfos.map((n) => `    GET ${n.url}`),
    ...build ? ["the run stops after the cache wait: nothing is deployed, no host is touched", "5. report (per stage; what was built, where and how long; each host built or not; no baseline: nothing was deployed)"] : [
      ...renderDeployStage(plan, `5. deploy (${plan.goal}; ${deployOrder(plan)}at most ${deploy.concurrency} at a time)`, plan.waves, renderDeployMethod(plan)),
      `6. report (per stage and host, against the ${plan.baselineMinutes} min baseline)`
    ]
  ];
  return lines2.join("\n");
}
function renderDeployMethod(plan) {
  const method = plan.deployMethod;
  return method ? [`  method: ${describeDeployMethod(method)} \u2014 ${method.why}`] : [];
}
function deployOrder(plan) {
  const { canaries } = plan.deploy;
  const first = plan.waves.length > 1 && canaries.length ? [`${canaries.join(", ")} first (canar${canaries.length > 1 ? "ies" : "y"}: the others only if ${canaries.length > 1 ? "they deploy" : "it deploys"} well)`] : [];
  const last = plan.waves.filter((_, index) => isLastAloneWave(plan, index)).map(([host2]) => plan.deploy.hosts[host2].target.local ? `${host2} (this machine, no ssh)` : `${host2} (the cache host)`);
  return [...first, ...last.length ? [`${last.join(" then ")} last`] : []].map((part) => `${part}, `).join("");
}
function renderHost(host2, deploy, activation) {
  const step = (what, command) => command ? [`    ${what}`, cmd(command, "      ")] : [];
  return [
    `  ${host2.name}:`,
    ...step("read its generation", host2.probe),
    ...step(`compare its closure with what it runs (nix store diff-closures)${deploy.diffOnly ? " \u2014 and stop: nothing is activated" : deploy.interactive ? ", show it and ask before activating" : ", beside the steps below"}`, host2.diff),
    ...step("copy the closure (the target substitutes from its caches what it can)", host2.copy),
    ...step(`arm the magic-rollback watchdog (reverts unless confirmed within ${deploy.confirmTimeoutSeconds} s of the activation)`, host2.arm),
    ...step("set the system profile (a new generation)", host2.setProfile),
    ...step(activation === "switch-to-configuration" ? "activate (switch-to-configuration, in a transient unit where systemd runs)" : activation, host2.rebuild),
    ...host2.reboot ? [
      ...step(`reboot into the new boot default: leave ${host2.reboot.marker} (/run is new every boot), systemctl reboot (the session may end with 255)`, host2.reboot.command),
      `    wait for it to come back (at most ${seconds(host2.reboot.waitMs)}, asked every ${seconds(host2.reboot.pollIntervalMs)} over a new connection): the marker gone, a booted system, not starting`,
      cmd(host2.reboot.poll, "      "),
      `    it must have booted ${host2.reboot.expectBooted} (${host2.reboot.bootedSystem}); if not, the boot default is set back to what it runs`
    ] : [],
    ...host2.health ? [
      `    health checks (each tried ${host2.health.retries + 1}\xD7, ${seconds(host2.health.intervalMs)} apart; then held for ${seconds(host2.health.settleMs)})`,
      ...host2.health.checks.map((check) => check.kind === "http" ? `      GET ${check.url} answers ${check.status}` : cmd(check.command, "      "))
    ] : [],
    ...step(host2.target.local ? "confirm (here)" : "confirm over a new SSH connection", host2.confirm),
    ...step("on failure, roll back", host2.rollback),
    ...host2.rollback ? [] : [`    on failure: no rollback (${deploy.rollback ? "nothing to roll back for this goal" : "--no-rollback"})`],
    ...step("at the end, close the reused connection", host2.closeConnection)
  ];
}
function dryRunJson(plan, diffs) {
  return JSON.stringify(dryRunOutputSchema.parse({ dryRun: true, plan, ...diffs ? { diffs } : {} }), null, 2);
}

// lib/report/compare.ts
var RECENT_RUNS = 10;
function median(values) {
  if (values.length === 0) return void 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
function comparableRuns(history, shape, before) {
  const hosts = [...shape.hosts].sort().join(" ");
  return history.filter(
    (run) => run.outcome === "success" && (run.operation ?? "deploy") === (shape.operation ?? "deploy") && run.goal === shape.goal && [...run.hosts].sort().join(" ") === hosts && (before === void 0 || run.startedAt < before)
  );
}
function recentMedians(history, shape, before) {
  const runs = comparableRuns(history, shape, before).slice(-RECENT_RUNS);
  const totalMs = median(runs.map((run) => run.totalMs));
  if (totalMs === void 0) return void 0;
  return {
    label: runs.length === 1 ? "the last run" : `the median of the last ${runs.length} runs`,
    column: "median",
    totalMs,
    stageMs: medianPerName(runs.map((run) => run.stageMs)),
    hostMs: medianPerName(runs.map((run) => run.hostMs))
  };
}
function medianPerName(durations) {
  const names = new Set(durations.flatMap((d) => Object.keys(d)));
  return Object.fromEntries(
    [...names].map((name) => [name, median(durations.flatMap((d) => d[name] === void 0 ? [] : [d[name]]))])
  );
}

// lib/report/history.ts
import { mkdir as mkdir2, open, readFile as readFile3 } from "node:fs/promises";
import { dirname, join as join2 } from "node:path";
import { z as z9 } from "zod";

// lib/report/report.ts
import { z as z8 } from "zod";

// lib/util/atomic-json.ts
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
async function writeJsonAtomically(dir, name, value) {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(value, null, 2)}
`);
  await rename(temporary, path);
  return path;
}

// lib/report/timing.ts
var OUTCOMES = ["success", "failed", "skipped", "interrupted"];
var HOST_STATES = ["deployed", "failed", "rolled-back", "not-started", "interrupted", "built"];
var HOST_GENERATIONS = ["new", "previous", "unknown"];
var HOST_EFFECTS = ["switched", "boot-default", "activated", "checked", "unchanged", "rebooted"];
var GOAL_EFFECTS = { switch: "switched", boot: "boot-default", test: "activated", "dry-activate": "checked" };
function goalEffect(goal) {
  return Object.hasOwn(GOAL_EFFECTS, goal) ? GOAL_EFFECTS[goal] : void 0;
}
var RunRecorder = class {
  constructor(now = Date.now) {
    this.now = now;
    this.startedAt = now();
  }
  now;
  stages = /* @__PURE__ */ new Map();
  /** the seed builds, by Nix system */
  builds = /* @__PURE__ */ new Map();
  hosts = /* @__PURE__ */ new Map();
  startedAt;
  startStage(name) {
    this.stages.set(name, { startedAt: this.now() });
  }
  endStage(name, outcome) {
    const span2 = this.stages.get(name);
    if (span2 && span2.endedAt === void 0) Object.assign(span2, { endedAt: this.now(), outcome });
  }
  /** Ends every stage still open, e.g. when the run was interrupted. */
  closeOpenStages(outcome) {
    for (const [name, span2] of this.stages) if (span2.endedAt === void 0) this.endStage(name, outcome);
  }
  /** Whether the build of `system` has started. */
  hasBuild(system2) {
    return this.builds.has(system2);
  }
  startBuild(system2, what) {
    this.builds.set(system2, { startedAt: this.now(), ...what });
  }
  endBuild(system2, outcome, derivations) {
    const span2 = this.builds.get(system2);
    if (span2 && span2.endedAt === void 0) Object.assign(span2, { endedAt: this.now(), outcome, derivations });
  }
  startHost(name) {
    this.hosts.set(name, { startedAt: this.now(), state: "not-started" });
  }
  endHost(name, end) {
    const span2 = this.hosts.get(name);
    if (span2) Object.assign(span2, { endedAt: this.now(), ...end, outcome: end.state === "deployed" ? "success" : "failed" });
  }
  /** A host's closure diff, whenever it comes: before its end or, running beside the host's steps, after it. */
  noteHostDiff(name, diff) {
    const span2 = this.hosts.get(name);
    if (span2) Object.assign(span2, { diff });
  }
  elapsed() {
    return this.now() - this.startedAt;
  }
};
function spanDuration(span2) {
  return span2?.endedAt === void 0 ? void 0 : span2.endedAt - span2.startedAt;
}

// lib/report/report.ts
var runOutcomeSchema = z8.enum(["success", "failed", "interrupted"]);
var baselineVerdictSchema = z8.object({
  totalMs: z8.number(),
  baselineMinutes: z8.number(),
  /** baseline / total: above 1 means faster than the baseline (infinite for a 0 ms run) */
  speedup: z8.number(),
  /** baseline - total, in minutes; negative when slower */
  savedMinutes: z8.number()
});
var pinnedRootSchema = z8.object({
  storePath: z8.string(),
  root: z8.string(),
  /** "local" or user@address of the cache host */
  on: z8.string()
});
var span = {
  /** offset from the run's start */
  startMs: z8.number().optional(),
  durationMs: z8.number().optional()
};
var stageEntrySchema = z8.object({ name: z8.enum(STAGES), outcome: z8.enum([...OUTCOMES, "not-started"]), ...span });
var hostEntrySchema = z8.object({
  name: z8.string(),
  state: z8.enum(HOST_STATES),
  /** absent in reports written before generations were recorded */
  generation: z8.enum(HOST_GENERATIONS).optional(),
  /**
   * For a deployed host, what its goal did there (timing.ts HOST_EFFECTS);
   * absent in reports written before effects were recorded (read from the run's goal then).
   */
  effect: z8.enum(HOST_EFFECTS).optional(),
  /** true when the host had no system profile before the run (so no previous generation) */
  firstDeploy: z8.boolean().optional(),
  /** what the host ran before the run (its running system) and its profile's generation then: what `rollback --run` goes back to */
  previousToplevel: z8.string().optional(),
  previousGeneration: z8.number().int().nonnegative().optional(),
  note: z8.string().optional(),
  ...span,
  toplevel: z8.string().optional(),
  /**
   * What the new toplevel changes against the system the host ran, found
   * before activation (lib/nix/closure-diff.ts): packages added, removed and
   * changed, and the closure sizes; `kind: 'first-deploy'` when the host ran
   * no system to compare with (as `firstDeploy`: it had none). Absent when
   * no diff was asked for or it could not be made.
   */
  diff: hostClosureDiffSchema.optional()
});
var buildRecordSchema = z8.object({ drvPath: z8.string(), machine: z8.string().optional(), ...span });
var systemBuildEntrySchema = z8.object({
  system: z8.string(),
  on: z8.enum(["builders", "here"]),
  seed: z8.string(),
  hosts: z8.array(z8.string()).readonly(),
  outcome: z8.enum([...OUTCOMES, "not-started"]),
  /** derivations Nix built: 0 when every output was there already */
  derivations: z8.number().int().nonnegative().optional(),
  ...span
});
var commandLogEntrySchema = z8.object({
  argv: z8.array(z8.string()).readonly(),
  exitCode: z8.number().nullable(),
  startedAt: z8.number(),
  durationMs: z8.number()
});
var runReportSchema = z8.object({
  id: z8.string(),
  outcome: runOutcomeSchema,
  /** absent in reports written before rollbacks: a deploy */
  operation: z8.enum(OPERATIONS).optional(),
  goal: z8.string(),
  /** a deploy's seed builder, of the first system when there are several (a rollback builds nothing) */
  seed: z8.string().optional(),
  /** a deploy's seed build of each Nix system, side by side; absent in reports written before several systems per run */
  systemBuilds: z8.array(systemBuildEntrySchema).readonly().optional(),
  /** why another builder than the preferred seed built */
  seedFailover: z8.string().optional(),
  flake: z8.string().optional(),
  startedAt: z8.string(),
  totalMs: z8.number(),
  /** a deploy against the one-by-one baseline; absent for a rollback */
  verdict: baselineVerdictSchema.optional(),
  stages: z8.array(stageEntrySchema).readonly(),
  hosts: z8.array(hostEntrySchema).readonly(),
  builds: z8.array(buildRecordSchema).readonly(),
  commands: z8.array(commandLogEntrySchema).readonly(),
  error: z8.string().optional(),
  /** GC roots this run made on the cache host for the built toplevels */
  pinnedRoots: z8.array(pinnedRootSchema).readonly().optional(),
  /** what the run accepted that it normally refuses (--allow-unsigned) */
  warnings: z8.array(z8.string()).readonly().optional()
});
function compareWithBaseline(totalMs, baselineMinutes) {
  const totalMinutes = totalMs / 6e4;
  return {
    totalMs,
    baselineMinutes,
    speedup: totalMs > 0 ? baselineMinutes / totalMinutes : Number.POSITIVE_INFINITY,
    savedMinutes: baselineMinutes - totalMinutes
  };
}
function buildReport(input) {
  const { recorder } = input;
  const totalMs = recorder.elapsed();
  const startedAt = new Date(recorder.startedAt).toISOString();
  const offset = (span2) => span2 ? span2.startedAt - recorder.startedAt : void 0;
  const built = input.goal === "build" && recorder.stages.get("wait-for-cache")?.outcome === "success";
  return {
    id: startedAt.replace(/[:.]/g, "-"),
    outcome: input.outcome,
    operation: input.operation ?? "deploy",
    goal: input.goal,
    seed: input.seed,
    seedFailover: input.seedFailover,
    flake: input.flake,
    startedAt,
    totalMs,
    ...input.baselineMinutes === void 0 ? {} : { verdict: compareWithBaseline(totalMs, input.baselineMinutes) },
    stages: (input.stages ?? OPERATION_STAGES[input.operation ?? "deploy"]).filter((name) => name !== "report").map((name) => {
      const span2 = recorder.stages.get(name);
      return { name, outcome: span2?.outcome ?? "not-started", startMs: offset(span2), durationMs: spanDuration(span2) };
    }),
    hosts: input.hosts.map((name) => {
      const span2 = recorder.hosts.get(name);
      return {
        name,
        state: span2?.state ?? (built ? "built" : "not-started"),
        // A host never started is still on the generation it had.
        generation: span2?.generation ?? "previous",
        effect: span2?.effect,
        firstDeploy: span2?.firstDeploy,
        previousToplevel: span2?.previousToplevel,
        previousGeneration: span2?.previousGeneration,
        diff: span2?.diff,
        note: span2?.note,
        startMs: offset(span2),
        durationMs: spanDuration(span2),
        toplevel: input.toplevels?.[name]
      };
    }),
    ...recorder.builds.size ? {
      // By system name: the order the builds started in (a head start first) says nothing.
      systemBuilds: [...recorder.builds].sort(([a], [b]) => a.localeCompare(b)).map(([system2, b]) => ({
        system: system2,
        on: b.on,
        seed: b.seed,
        hosts: b.hosts,
        outcome: b.outcome ?? "not-started",
        derivations: b.derivations,
        startMs: offset(b),
        durationMs: spanDuration(b)
      }))
    } : {},
    builds: input.builds.map(({ drvPath, machine, startedAt: startedAt2, endedAt }) => ({
      drvPath,
      ...machine === void 0 ? {} : { machine },
      ...startedAt2 === void 0 ? {} : { startMs: startedAt2 - recorder.startedAt },
      ...startedAt2 === void 0 || endedAt === void 0 ? {} : { durationMs: endedAt - startedAt2 }
    })),
    commands: input.commands,
    error: input.error,
    pinnedRoots: input.pinnedRoots ?? [],
    warnings: input.warnings ?? []
  };
}
function writeReport(dir, report) {
  return writeJsonAtomically(dir, report.id, report);
}

// lib/report/history.ts
var historyEntrySchema = z9.object({
  id: z9.string(),
  startedAt: z9.string(),
  outcome: runOutcomeSchema,
  /** absent in lines written before rollbacks: a deploy */
  operation: z9.enum(OPERATIONS).optional(),
  goal: z9.string(),
  /** a deploy's seed; absent for a rollback */
  seed: z9.string().optional(),
  hosts: z9.array(z9.string()),
  totalMs: z9.number(),
  /** durations of the stages and hosts that ended, whatever their outcome */
  stageMs: z9.record(z9.string(), z9.number()),
  hostMs: z9.record(z9.string(), z9.number()),
  /** a deploy's verdict against the baseline; absent for a rollback */
  verdict: z9.object({ baselineMinutes: z9.number(), speedup: z9.number().nullable(), savedMinutes: z9.number() }).optional()
});
function historyPathFor(reportDir) {
  return join2(dirname(reportDir), "history.jsonl");
}
function summarizeRun(report) {
  const durations = (items) => Object.fromEntries(items.flatMap((item) => item.durationMs === void 0 ? [] : [[item.name, item.durationMs]]));
  const verdict = report.verdict;
  return {
    id: report.id,
    startedAt: report.startedAt,
    outcome: report.outcome,
    operation: report.operation ?? "deploy",
    goal: report.goal,
    ...report.seed === void 0 ? {} : { seed: report.seed },
    hosts: report.hosts.map((h) => h.name),
    totalMs: report.totalMs,
    stageMs: durations(report.stages),
    hostMs: durations(report.hosts),
    // speedup is infinite for a 0 ms run, which JSON cannot hold
    ...verdict ? { verdict: { baselineMinutes: verdict.baselineMinutes, speedup: Number.isFinite(verdict.speedup) ? round(verdict.speedup, 2) : null, savedMinutes: round(verdict.savedMinutes, 1) } } : {}
  };
}
var NEWLINE = 10;
async function appendHistory(path, entry) {
  await mkdir2(dirname(path), { recursive: true });
  const file = await open(path, "a+");
  try {
    const { size } = await file.stat();
    const last = size > 0 ? (await file.read(Buffer.alloc(1), 0, 1, size - 1)).buffer[0] : NEWLINE;
    const line = Buffer.from(`${last === NEWLINE ? "" : "\n"}${JSON.stringify(entry)}
`);
    const { bytesWritten } = await file.write(line);
    if (bytesWritten !== line.length) throw new Error(`${path}: short write (${bytesWritten} of ${line.length} bytes)`);
  } finally {
    await file.close();
  }
}
async function readHistory(path, warn) {
  let text;
  try {
    text = await readFile3(path, "utf8");
  } catch (error) {
    const code = error.code;
    if (code !== "ENOENT") warn(`cannot read ${path} (${code ?? String(error)}); going on without the run history`);
    return [];
  }
  return parseHistory(text, path, warn);
}
function parseHistory(text, source, warn) {
  const entries = [];
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    const problem = (reason) => warn(`${source}:${index + 1}: skipped a corrupt line (${reason})`);
    let json;
    try {
      json = JSON.parse(line);
    } catch (error) {
      problem(error.message);
      return;
    }
    const parsed = historyEntrySchema.safeParse(json);
    if (parsed.success) entries.push(parsed.data);
    else problem(parsed.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`).join("; "));
  });
  return entries;
}
function round(value, digits) {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

// lib/report/format.ts
function formatDuration(ms) {
  if (ms < 6e4) return `${(ms / 1e3).toFixed(1)}s`;
  const totalSeconds = Math.round(ms / 1e3);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor(totalSeconds % 3600 / 60);
  const seconds2 = totalSeconds % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, "0")}m`;
  return `${minutes}m${String(seconds2).padStart(2, "0")}s`;
}
function formatElapsed(ms) {
  const seconds2 = Math.max(0, Math.floor(ms / 1e3));
  return seconds2 < 60 ? `${seconds2}s` : formatDuration(seconds2 * 1e3);
}
function formatUsual(ms) {
  if (ms >= 1e3) return formatElapsed(ms);
  return `${Math.max(0.1, Math.round(ms / 100) / 10).toFixed(1)}s`;
}

// lib/report/render/table.ts
function textTable(columns, rows2) {
  const widths = columns.map((column, i) => Math.max(column.header.length, ...rows2.map((row) => (row[i] ?? "").length)));
  const line = (cells) => columns.map((column, i) => {
    const cell = cells[i] ?? "";
    return column.align === "right" ? cell.padStart(widths[i]) : cell.padEnd(widths[i]);
  }).join("  ").trimEnd();
  return [line(columns.map((c) => c.header)), ...rows2.map(line)];
}
function reportTable(report, comparison, hostPrefix = "  ") {
  const duration = (ms) => ms === void 0 ? "\u2014" : formatDuration(ms);
  const compared = (ms) => comparison ? [duration(ms)] : [];
  return {
    columns: [
      { header: "stage / host" },
      { header: "duration", align: "right" },
      ...comparison ? [{ header: comparison.column, align: "right" }] : [],
      { header: "outcome" }
    ],
    rows: [
      ...report.stages.map((s) => [s.name, duration(s.durationMs), ...compared(comparison?.stageMs[s.name]), s.outcome]),
      ...report.hosts.map((h) => [`${hostPrefix}${h.name}`, duration(h.durationMs), ...compared(comparison?.hostMs[h.name]), hostOutcome(h, report.goal, report.operation)])
    ]
  };
}
var EFFECT_WORDS = {
  switched: ["switched", "new generation, boot default"],
  "boot-default": ["boot default set", "runs the old one until reboot"],
  activated: ["activated until reboot", "boot default unchanged"],
  checked: ["checked", "nothing changed"],
  unchanged: ["unchanged", "already ran this toplevel"],
  rebooted: ["rebooted", "booted the new generation, boot default"]
};
var ROLLBACK_EFFECT_WORDS = {
  ...EFFECT_WORDS,
  switched: ["switched back", "to the chosen generation, boot default"],
  "boot-default": ["boot default set back", "runs the newer one until reboot"],
  activated: ["activated the chosen generation until reboot", "boot default unchanged"],
  rebooted: ["rebooted", "booted the chosen generation, boot default"]
};
function hostOutcome(host2, goal, operation) {
  const firstDeploy = host2.firstDeploy === true;
  if (host2.state === "built") return "built (pinned, served signed; host untouched)";
  if (host2.state === "deployed") {
    const effect = host2.effect ?? goalEffect(goal);
    if (effect) {
      const [done, detail] = operation === "rollback" ? ROLLBACK_EFFECT_WORDS[effect] : EFFECT_WORDS[effect];
      return `${done} (${detail}${firstDeploy ? "; first deploy" : ""})`;
    }
  }
  if (!host2.generation) return host2.state;
  if (firstDeploy) return `${host2.state} (first deploy${host2.generation === "previous" ? "" : `, ${host2.generation} generation`})`;
  return `${host2.state} (${host2.generation} generation)`;
}

// lib/report/render/closure-diff.ts
var ORDER = ["changed", "added", "removed", "resized"];
var COLUMNS = [{ header: "package" }, { header: "change" }, { header: "versions" }, { header: "size", align: "right" }];
function hostDiffs(report) {
  return report.hosts.flatMap((h) => h.diff ? [{ host: h.name, diff: h.diff }] : []);
}
function describeClosureDiff(diff) {
  const summary = summarizeClosureDiff(diff);
  return diff.kind === "diff" ? `${summary} (closure ${formatBytes(diff.closureBytes.before)} \u2192 ${formatBytes(diff.closureBytes.after)})` : summary;
}
function closureDiffRows(diff) {
  return ORDER.flatMap(
    (change) => diff.packages.filter((p) => p.change === change).map((p) => [p.name, p.change, formatVersionChange(p), p.sizeDeltaBytes === void 0 ? "" : formatBytes(p.sizeDeltaBytes, { signed: true })])
  );
}
function hostClosureDiffText(host2, diff) {
  return [
    `  ${host2}: ${describeClosureDiff(diff)}`,
    ...diff.kind === "diff" && diff.packages.length > 0 ? textTable(COLUMNS, closureDiffRows(diff)).map((line) => `    ${line}`) : []
  ];
}
function closureDiffText(report) {
  const diffs = hostDiffs(report);
  if (diffs.length === 0) return [];
  return ["closure changes:", ...diffs.flatMap(({ host: host2, diff }) => hostClosureDiffText(host2, diff))];
}

// lib/report/render/builds.ts
var COLUMNS2 = [{ header: "derivation" }, { header: "built on" }, { header: "took", align: "right" }];
function buildsSummary(report) {
  const stage = report.stages.find((s) => s.name === "seed-build");
  if (!stage || stage.outcome === "not-started") return void 0;
  const wall = stage.durationMs === void 0 ? stage.outcome : formatDuration(stage.durationMs);
  const count2 = report.builds.length;
  if (count2 === 0) {
    return stage.outcome === "success" ? `nothing built: every toplevel was in the store already (seed build ${wall})` : `nothing built (seed build ${wall})`;
  }
  return `built ${count2} derivation${count2 > 1 ? "s" : ""} (seed build ${wall})`;
}
function rows(report) {
  return report.builds.map((b) => [drvName(b.drvPath), b.machine ?? "this machine", b.durationMs === void 0 ? "\u2014" : formatDuration(b.durationMs)]);
}
function buildsText(report) {
  const summary = buildsSummary(report);
  if (summary === void 0) return [];
  return [summary, ...report.builds.length ? textTable(COLUMNS2, rows(report)).map((line) => `  ${line}`) : []];
}

// lib/report/render/timeline.ts
function timelineRows(report) {
  const bar = (startMs, durationMs, outcome) => startMs === void 0 || durationMs === void 0 ? void 0 : { startMs, durationMs, kind: barKind(outcome) };
  const hosts = [...report.hosts].sort((a, b) => (a.startMs ?? Number.POSITIVE_INFINITY) - (b.startMs ?? Number.POSITIVE_INFINITY));
  return [
    ...report.stages.flatMap((s) => [
      { label: s.name, host: false, bar: bar(s.startMs, s.durationMs, s.outcome), outcome: s.outcome },
      ...s.name === "seed-build" && (report.systemBuilds?.length ?? 0) > 1 ? report.systemBuilds.map((b) => ({ label: `${b.system} on ${b.seed}`, host: true, bar: bar(b.startMs, b.durationMs, b.outcome), outcome: b.outcome })) : []
    ]),
    ...hosts.map((h) => ({ label: h.name, host: true, bar: bar(h.startMs, h.durationMs, h.state), outcome: h.state }))
  ];
}
function barKind(outcome) {
  if (outcome === "success" || outcome === "deployed") return "success";
  return outcome === "interrupted" ? "interrupted" : "failed";
}
function timelineSpanMs(report, rows2) {
  return Math.max(report.totalMs, ...rows2.map((r) => r.bar ? r.bar.startMs + r.bar.durationMs : 0), 1);
}
var TICK_STEPS_MS = [
  100,
  200,
  500,
  1e3,
  2e3,
  5e3,
  1e4,
  15e3,
  3e4,
  6e4,
  12e4,
  3e5,
  6e5,
  9e5,
  18e5,
  36e5,
  72e5
];
function axisTicks(spanMs, maxTicks) {
  const step = TICK_STEPS_MS.find((s) => spanMs / s <= maxTicks) ?? Math.ceil(spanMs / maxTicks / 36e5) * 36e5;
  const ticks = [];
  for (let t = 0; t <= spanMs; t += step) ticks.push(t);
  return ticks;
}
function formatTick(ms) {
  if (ms === 0) return "0";
  if (ms < 1e3) return `${ms}ms`;
  if (ms < 6e4) return `${ms / 1e3}s`;
  const minutes = Math.floor(ms / 6e4);
  const seconds2 = Math.round(ms % 6e4 / 1e3);
  if (minutes >= 60 && minutes % 60 === 0 && seconds2 === 0) return `${minutes / 60}h`;
  return seconds2 ? `${minutes}m${String(seconds2).padStart(2, "0")}s` : `${minutes}m`;
}
var BAR_CHAR = { success: "\u2588", failed: "\u2593", interrupted: "\u2591" };
function renderTimeline(report, width = 80) {
  const rows2 = timelineRows(report);
  const labels = rows2.map((r) => r.host ? `  ${r.label}` : r.label);
  const notes = rows2.map((r) => {
    if (!r.bar) return `\u2014 ${r.outcome}`;
    const duration = formatDuration(r.bar.durationMs);
    return r.bar.kind === "success" ? duration : `${duration} ${r.outcome}`;
  });
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const noteWidth = Math.max(...notes.map((n) => n.length));
  const barWidth = Math.max(10, width - labelWidth - noteWidth - 4);
  const spanMs = timelineSpanMs(report, rows2);
  const column = (ms) => ms / spanMs * barWidth;
  const lines2 = rows2.map((row, i) => {
    const cells = Array.from({ length: barWidth }, () => " ");
    if (row.bar) {
      const from = Math.min(Math.floor(column(row.bar.startMs)), barWidth - 1);
      const to = Math.max(from + 1, Math.min(Math.ceil(column(row.bar.startMs + row.bar.durationMs)), barWidth));
      cells.fill(BAR_CHAR[row.bar.kind], from, to);
    }
    return `${labels[i].padEnd(labelWidth)}  ${cells.join("")}  ${notes[i]}`.trimEnd();
  });
  const ticks = axisTicks(spanMs, Math.max(1, Math.floor(barWidth / 8)));
  const rule = Array.from({ length: barWidth }, () => "\u2500");
  let tickLabels = "";
  for (const tick of ticks) {
    const at = Math.min(Math.floor(column(tick)), barWidth - 1);
    rule[at] = at === 0 ? "\u2514" : "\u2534";
    const label = formatTick(tick);
    if (at >= tickLabels.length + (tickLabels ? 1 : 0)) tickLabels = tickLabels.padEnd(at) + label;
  }
  const indent = " ".repeat(labelWidth + 2);
  return [...lines2, `${indent}${rule.join("")}`, `${indent}${tickLabels}`].join("\n");
}

// lib/report/render/verdict.ts
function formatVerdict(v) {
  const total = `total ${formatDuration(v.totalMs)}`;
  const wholeMinutes = Number.isInteger(v.baselineMinutes) && v.baselineMinutes >= 1;
  const amount = (minutes) => wholeMinutes ? `${Math.round(minutes)} min` : formatDuration(minutes * 6e4);
  const baseline = `the ${amount(v.baselineMinutes)} baseline`;
  if (v.speedup >= 1) return `${total} \u2014 ${v.speedup.toFixed(1)}\xD7 faster than ${baseline}, ${amount(v.savedMinutes)} saved`;
  return `${total} \u2014 ${(1 / v.speedup).toFixed(1)}\xD7 slower than ${baseline}, ${amount(-v.savedMinutes)} lost`;
}
function formatRelative(totalMs, otherMs, other) {
  const percent = otherMs > 0 ? Math.round((otherMs - totalMs) / otherMs * 100) : 0;
  const reference = `${other} (${formatDuration(otherMs)})`;
  if (percent === 0) return `about as fast as ${reference}`;
  return percent > 0 ? `${percent}% faster than ${reference}` : `${-percent}% slower than ${reference}`;
}
function renderVerdict(report, comparison) {
  if (report.outcome !== "success") return `total ${formatDuration(report.totalMs)} \u2014 ${report.outcome}${report.verdict ? ", not compared with the baseline" : ""}`;
  const verdict = report.verdict ? formatVerdict(report.verdict) : `total ${formatDuration(report.totalMs)}${report.goal === "build" ? " \u2014 built, pinned and served; nothing deployed" : ""}`;
  return comparison ? `${verdict}; ${formatRelative(report.totalMs, comparison.totalMs, comparison.label)}` : verdict;
}

// lib/report/render/text.ts
function renderReport(report, options = {}) {
  const table = reportTable(report, options.comparison);
  const changes = closureDiffText(report);
  const builds = buildsText(report);
  return [
    ...textTable(table.columns, table.rows),
    ...builds.length ? ["", ...builds] : [],
    ...changes.length ? ["", ...changes] : [],
    "",
    renderTimeline(report, options.width),
    "",
    renderVerdict(report, options.comparison)
  ].join("\n");
}

// lib/run/run.ts
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join as join3 } from "node:path";
import { Chalk } from "chalk";
import { Listr, ListrTaskEventType, ListrTaskState } from "listr2";

// lib/report/progress.ts
function progressSuffix(elapsedMs, etaMs) {
  const elapsed = formatElapsed(elapsedMs);
  if (etaMs === void 0) return elapsed;
  const remainingMs = etaMs - elapsedMs;
  return remainingMs > 0 ? `${elapsed} \xB7 ETA ~${formatElapsed(Math.ceil(remainingMs / 1e3) * 1e3)}` : `${elapsed} \xB7 usually ~${formatUsual(etaMs)}`;
}
function withProgressTitle(task, options = {}) {
  const { etaMs, now = Date.now, intervalMs = 1e3 } = options;
  const target = task;
  const startedAt = now();
  let base = String(target.title ?? "");
  const show = (suffix) => {
    target.title = base ? `${base} \xB7 ${suffix}` : suffix;
  };
  const tick = () => show(progressSuffix(now() - startedAt, etaMs));
  const proxy = new Proxy(target, {
    get(object, property) {
      if (property === "title") return base;
      const value = Reflect.get(object, property, object);
      return typeof value === "function" ? value.bind(object) : value;
    },
    set(object, property, value) {
      if (property !== "title") return Reflect.set(object, property, value, object);
      if (typeof value === "string") base = value;
      else {
        object.title = value;
        base = String(object.title);
      }
      tick();
      return true;
    }
  });
  tick();
  const timer = setInterval(tick, Math.max(1e3, intervalMs));
  timer.unref();
  let stopped = false;
  return {
    task: proxy,
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      show(formatDuration(now() - startedAt));
    }
  };
}

// lib/stages/deploy.ts
import pLimit from "p-limit";

// lib/stages/health.ts
function healthChecksFor(plan, executor, values) {
  return plan.checks.map((check) => ({
    name: check.name,
    run: check.kind === "http" ? (signal) => httpCheck(check, signal) : (signal) => commandCheck(check, executor, values, signal)
  }));
}
async function commandCheck(check, executor, values, signal) {
  const command = fillCommand(check.command, values);
  const result = await executor.run(command, { signal });
  if (check.stdoutOneOf) {
    const said = result.stdout.trim();
    if (!check.stdoutOneOf.includes(said)) throw new Error(`${command.argv.at(-1)} says '${said || result.stderr.trim()}'`);
    return;
  }
  if (!succeeded(result)) {
    const why = result.timedOut ? `no answer within ${Math.round(command.timeoutMs / 1e3)} s` : `exit ${result.exitCode}`;
    throw new Error(`${why}: ${outputTail(result, 3).join(" / ")}`);
  }
}
async function httpCheck(check, signal) {
  const response = await fetch(check.url, { signal: AbortSignal.any([signal, AbortSignal.timeout(check.timeoutMs)]), redirect: "manual" });
  await response.body?.cancel();
  if (response.status !== check.status) throw new Error(`answered ${response.status}`);
}
async function runHealthChecks(checks, options) {
  for (const check of checks) {
    let attempts = 0;
    for (; ; ) {
      attempts += 1;
      options.onProgress?.(`health: ${check.name}${attempts > 1 ? ` (attempt ${attempts})` : ""}`);
      try {
        await check.run(options.signal);
        break;
      } catch (error) {
        if (options.signal.aborted || attempts > options.retries) {
          return { failed: { check: check.name, reason: error.message, attempts } };
        }
        await sleep2(options.intervalMs, options.signal);
      }
    }
  }
  return {};
}
async function holdHealthy(checks, options) {
  const started = Date.now();
  const interval = Math.max(500, options.intervalMs);
  for (; ; ) {
    const left = started + options.durationMs - Date.now();
    if (left <= 0 || options.signal.aborted) return {};
    await sleep2(Math.min(interval, left), options.signal);
    if (options.signal.aborted) return {};
    const elapsed = Math.round((Date.now() - started) / 1e3);
    options.onProgress?.(`health: holding (${elapsed}/${Math.round(options.durationMs / 1e3)} s)`);
    const round2 = await runHealthChecks(checks, { retries: 0, intervalMs: 0, signal: options.signal });
    if (options.signal.aborted) return {};
    if (round2.failed) return { failed: { check: round2.failed.check, reason: round2.failed.reason, afterSeconds: elapsed } };
  }
}

// lib/stages/reboot.ts
var BOOTING_STATES = ["initializing", "starting"];
async function rebootAndWait(plan, deps) {
  const { host: host2, run, signal, say } = deps;
  say("rebooting");
  const asked = await run(plan.command);
  if (asked.aborted) return { kind: "aborted" };
  const before = parseBootCheck(asked.stdout);
  if (before.marker === void 0) return { kind: "not-asked", result: asked };
  if (deps.closeConnection) await run(deps.closeConnection);
  const started = Date.now();
  let last = "no answer yet";
  let booted;
  for (; ; ) {
    say(`waiting for ${host2} to come back (${Math.round((Date.now() - started) / 1e3)} s)`);
    const polled = await run(plan.poll);
    if (polled.aborted || signal.aborted) return { kind: "aborted" };
    if (succeeded(polled)) {
      const now = parseBootCheck(polled.stdout);
      if (now.rebooted) {
        booted = now;
        if (now.bootedSystem && !BOOTING_STATES.includes(now.state ?? "")) return { kind: "back", waitedMs: Date.now() - started, before, after: now };
        say(`${host2} is booting (system ${now.state ?? "unknown"}${now.bootedSystem ? "" : `, no ${plan.bootedSystem} yet`})`);
      } else {
        last = now.rebooted === false ? `the same boot: ${plan.marker} is still there` : `an answer without the boot check's fields: ${outputTail(polled, 1)[0] ?? "nothing"}`;
      }
    } else {
      last = `no answer over SSH: ${outputTail({ stderr: polled.stderr, stdout: "" }, 1)[0] ?? (polled.timedOut ? "timed out" : `exit ${polled.exitCode}`)}`;
    }
    const left = started + plan.waitMs - Date.now();
    if (left <= 0) {
      const waitedMs = Date.now() - started;
      return booted ? { kind: "back", waitedMs, before, after: booted } : { kind: "not-back", waitedMs, last, before };
    }
    await sleep2(Math.min(plan.pollIntervalMs, left), signal);
    if (signal.aborted) return { kind: "aborted" };
  }
}

// lib/stages/deploy-host.ts
var CONFIRM_TOO_LATE = 3;
async function deployHost(deployment, deps, say) {
  const { plan: steps, goal } = deployment;
  const host2 = steps.name;
  const { executor, signal, recorder } = deps;
  let generationValues = {};
  let firstDeploy = false;
  let before = {};
  const fill = (command) => fillCommand(command, { ...deployment.values, ...generationValues });
  const run = (command) => executor.run(fill(command), { signal });
  const end = (result) => recorder.endHost(host2, { ...result, ...before, ...firstDeploy ? { firstDeploy } : {} });
  const newToplevel = toplevelOf(deployment.values, host2);
  const fail = (result, message) => {
    end(result);
    throw new StageError(result.note ? `${message}
  \u2192 ${host2}: ${result.note}` : message);
  };
  recorder.startHost(host2);
  say("reading the current generation");
  const probe = await run(steps.probe);
  if (probe.aborted) return interrupted(end, host2, "previous");
  if (!succeeded(probe)) fail({ state: "failed", generation: "previous", note: "not touched" }, describeFailure(`${host2}: cannot read its generation`, fill(steps.probe), probe));
  const previous = parseGeneration(probe.stdout);
  generationValues = previousGenerationValues(previous);
  firstDeploy = previous.profileLink === "";
  const previousGeneration2 = linkNumber(previous.profileLink);
  before = {
    ...previous.currentSystem ? { previousToplevel: previous.currentSystem } : {},
    ...previousGeneration2 === void 0 ? {} : { previousGeneration: previousGeneration2 }
  };
  const noteDiff = (compared) => {
    if (compared.diff) recorder.noteHostDiff(host2, compared.diff);
    say(compared.diff ? `closure: ${summarizeClosureDiff(compared.diff)}` : `no closure diff: ${compared.why}`);
  };
  let diffing = Promise.resolve();
  const stopDiff = new AbortController();
  let deployed = false;
  const diffAsked = deployment.diffOnly || deps.confirmActivation !== void 0;
  if (steps.diff && diffAsked) {
    say("comparing closures (nix store diff-closures)");
    const compared = await diffClosures(run, steps.diff);
    if (compared === "aborted") return interrupted(end, host2, "previous");
    noteDiff(compared);
    if (deployment.diffOnly) {
      end({ state: "not-started", generation: "previous", note: compared.diff ? "dry run: compared, not activated" : `dry run: no closure diff (${compared.why})` });
      return;
    }
    if (deps.confirmActivation && !await deps.confirmActivation(host2, compared.diff, compared.why)) {
      end({ state: "not-started", generation: "previous", note: "not activated: declined at the --interactive question" });
      return;
    }
  }
  const diffBeside = diffAsked ? void 0 : steps.diff;
  const startDiff = (diff) => {
    say("comparing closures (nix store diff-closures)");
    const diffSignal = AbortSignal.any([signal, stopDiff.signal]);
    const runDiff = (command) => executor.run(fill(command), { signal: diffSignal });
    diffing = diffClosures(runDiff, diff).then((compared) => {
      if (compared !== "aborted" && compared.diff) recorder.noteHostDiff(host2, compared.diff);
    }, () => void 0);
  };
  if (diffBeside && !steps.copy) startDiff(diffBeside);
  try {
    if (steps.copy) {
      say("copying the closure (the target substitutes what it can)");
      const copied = await run(steps.copy);
      if (copied.aborted) return interrupted(end, host2, "previous");
      if (!succeeded(copied)) fail({ state: "failed", generation: "previous", note: "not touched" }, describeFailure(`${host2}: cannot copy its closure`, fill(steps.copy), copied, tailWithoutNoise(copied)));
      if (diffBeside) startDiff(diffBeside);
    }
    let armed = false;
    if (steps.arm) {
      const arm = await run(steps.arm);
      if (arm.aborted) return interrupted(end, host2, "previous");
      if (!succeeded(arm)) fail({ state: "failed", generation: "previous", note: "not touched" }, describeFailure(`${host2}: cannot arm the magic rollback`, fill(steps.arm), arm));
      armed = true;
    }
    const watchdogNote = watchdogReverts(host2, deployment.confirmTimeoutSeconds, previous);
    if (steps.setProfile) {
      say("setting the system profile");
      const set = await run(steps.setProfile);
      if (set.aborted) return interrupted(end, host2, armed ? "previous" : "unknown", armed ? watchdogNote : void 0);
      if (!succeeded(set)) return fail(await rollBack(armed, "setting the system profile failed"), describeFailure(`${host2}: cannot set its system profile`, fill(steps.setProfile), set));
    }
    const activation = deployment.activation ?? "nixos-rebuild";
    say(activation === "nixos-rebuild" ? `nixos-rebuild ${goal}` : `${activation} (${goal})`);
    const command = fill(steps.rebuild);
    const shownLive = (line) => {
      if (!isOutputNoise(line)) say(line);
    };
    const rebuilt = await executor.run(command, { signal, onLine: shownLive });
    if (rebuilt.aborted) return interrupted(end, host2, armed ? "previous" : "unknown", armed ? watchdogNote : void 0);
    if (!succeeded(rebuilt)) {
      const why = describeFailure(`${host2} failed`, command, rebuilt, tailWithoutNoise(rebuilt));
      return fail(await rollBack(armed, `${activation} failed`), why);
    }
    let rebootNote;
    if (steps.reboot) {
      await diffing;
      const outcome = await rebootAndWait(steps.reboot, { host: host2, run, signal, say, closeConnection: steps.closeConnection });
      if (outcome.kind === "aborted") return interrupted(end, host2, "unknown", "interrupted while it rebooted");
      if (outcome.kind === "not-asked") return fail(await rollBack(false, "could not ask it to reboot"), describeFailure(`${host2}: cannot reboot it`, fill(steps.reboot.command), outcome.result));
      const waited = `${Math.round(outcome.waitedMs / 1e3)} s`;
      const expected = fillText(steps.reboot.expectBooted, { ...deployment.values, ...generationValues });
      if (outcome.kind === "not-back") {
        const note = `did not come back within ${waited} of its reboot (last: ${outcome.last}); nothing more could be done: it cannot be reached (its boot default is ${expected})`;
        return fail({ state: "failed", generation: "unknown", note }, `${host2}: did not come back within ${waited} after its reboot into ${expected}`);
      }
      const booted = outcome.after.bootedSystem;
      if (booted !== expected) {
        const what = `it booted ${booted ?? `nothing (no ${steps.reboot.bootedSystem})`} instead of ${expected} (back after ${waited})`;
        const ended = await rollBack(false, what);
        return fail(ended.state === "rolled-back" ? { ...ended, note: `${ended.note}; its boot default is what it runs again` } : ended, `${host2}: did not boot the new generation`);
      }
      const bootIds = outcome.before.bootId && outcome.after.bootId ? outcome.before.bootId === outcome.after.bootId ? ", boot id unchanged (a container sharing the machine's)" : ", new boot id" : "";
      rebootNote = `rebooted into ${booted} in ${waited}${bootIds}`;
      say(`booted ${booted.slice(booted.lastIndexOf("/") + 1)} (back after ${waited})`);
    }
    if (steps.health) {
      const checks = healthChecksFor(steps.health, executor, deployment.values);
      const health = await runHealthChecks(checks, { retries: steps.health.retries, intervalMs: steps.health.intervalMs, signal, onProgress: say });
      if (signal.aborted) return interrupted(end, host2, armed ? "previous" : "unknown", armed ? watchdogNote : void 0);
      if (health.failed) {
        const why = `${host2}: health check failed after ${health.failed.attempts} attempt(s): ${health.failed.check}: ${health.failed.reason}`;
        return fail(await rollBack(armed, "health check failed"), why);
      }
      const settleSeconds = steps.health.settleMs / 1e3;
      if (settleSeconds > 0) {
        const held = await holdHealthy(checks, { durationMs: steps.health.settleMs, intervalMs: steps.health.intervalMs, signal, onProgress: say });
        if (signal.aborted) return interrupted(end, host2, armed ? "previous" : "unknown", armed ? watchdogNote : void 0);
        if (held.failed) {
          const why = `${host2}: health check failed ${held.failed.afterSeconds} s after activation, within the ${settleSeconds} s settle window: ${held.failed.check}: ${held.failed.reason}`;
          return fail(await rollBack(armed, "health check failed in the settle window"), why);
        }
      }
    }
    if (armed && steps.confirm) {
      const over = steps.target.local ? "here" : "over a new SSH connection";
      say(`confirming ${over}`);
      const confirm = await run(steps.confirm);
      if (confirm.exitCode === CONFIRM_TOO_LATE) {
        const now = parseRollbackReport(confirm.stdout);
        const generation = generationAfter(now, previous, newToplevel);
        const by = now.watchdogAt !== void 0 ? `the watchdog rolled it back at ${new Date(now.watchdogAt * 1e3).toISOString()}` : "the watchdog had removed its canary without rolling back (it gave up waiting, or its rollback failed)";
        fail(
          { state: now.watchdogAt !== void 0 && generation === "previous" ? "rolled-back" : "failed", generation, note: `confirmation came too late: ${by}` },
          `${host2}: not confirmed in time`
        );
      }
      if (!succeeded(confirm)) {
        fail({ state: "failed", generation: "unknown", note: `not confirmed (${tail(confirm)}); ${watchdogNote}` }, `${host2}: could not confirm the deploy ${over}`);
      }
    }
    await diffing;
    deployed = true;
    end({ state: "deployed", generation: goal === "dry-activate" ? "previous" : "new", effect: steps.reboot ? "rebooted" : effectOf(goal, previous, newToplevel), ...rebootNote ? { note: rebootNote } : {} });
  } finally {
    if (!deployed) stopDiff.abort();
    await diffing;
  }
  async function rollBack(armed, reason) {
    if (goal === "dry-activate") return { state: "failed", generation: "previous", note: `${reason}; dry-activate changes nothing` };
    if (!steps.rollback) {
      return { state: "failed", generation: "unknown", note: `${reason}; not rolled back (--no-rollback)${armed ? "; the watchdog is disarmed only by confirmation" : ""}` };
    }
    say(`rolling back to ${previous.currentSystem || "the previous profile"}`);
    const result = await executor.run(fill(steps.rollback));
    return rollbackEnd(host2, reason, armed, result, previous, newToplevel, deployment.confirmTimeoutSeconds);
  }
}
async function diffClosures(run, command) {
  const result = await run(command);
  if (result.aborted) return "aborted";
  if (!succeeded(result)) return { why: outputTail({ stderr: result.stderr, stdout: "" }, 1)[0] ?? `exit ${result.exitCode}` };
  try {
    return { diff: parseClosureDiffOutput(result.stdout) };
  } catch (error) {
    return { why: error.message };
  }
}
function rollbackEnd(host2, reason, armed, result, previous, newToplevel, confirmSeconds) {
  const after = parseRollbackReport(result.stdout);
  const generation = generationAfter(after, previous, newToplevel);
  if (after.watchdogAt !== void 0) {
    const at = new Date(after.watchdogAt * 1e3).toISOString();
    return { state: "rolled-back", generation, note: `${reason}; rolled back by the magic-rollback watchdog on ${host2} at ${at}, before the deploy's own rollback reached it` };
  }
  if (succeeded(result)) {
    const keptProfile = previous.profileLink === "" && Boolean(after.profileLink);
    const detail = keptProfile ? `; first deploy: there was no system profile to go back to, so the profile stays ${after.profileLink} (${after.profilePath})` : after.outcome === "unchanged" ? " (nothing had changed on the host)" : "";
    return { state: "rolled-back", generation, note: `rolled back: ${reason}${detail}` };
  }
  const watchdog = armed ? watchdogReverts(host2, confirmSeconds, previous) : generation === "unknown" ? "its state is unknown" : `it is on its ${generation} generation`;
  return { state: "failed", generation, note: `${reason}; rollback over SSH failed (${tail(result)}); ${watchdog}` };
}
function effectOf(goal, previous, newToplevel) {
  if (goal === "dry-activate") return "checked";
  if (newToplevel !== void 0 && previous.currentSystem === newToplevel && previous.profilePath === newToplevel) return "unchanged";
  return goalEffect(goal);
}
function generationAfter(after, previous, newToplevel) {
  if (after.profilePath === void 0 || after.currentSystem === void 0) return "unknown";
  if (after.profilePath === previous.profilePath && after.currentSystem === previous.currentSystem) return "previous";
  if (newToplevel !== void 0 && (after.currentSystem === newToplevel || after.profilePath === newToplevel)) return "new";
  return "unknown";
}
function watchdogReverts(host2, seconds2, previous) {
  const reverts = `the magic-rollback watchdog on ${host2} reverts it within ${seconds2} s of its activation`;
  return previous.profileLink === "" ? `${reverts} (its running system: with no earlier system profile to go back to, a profile this run made stays)` : reverts;
}
function interrupted(end, host2, generation, note) {
  end({ state: "interrupted", generation, note });
  throw new InterruptedError(`${host2}: interrupted`);
}
function tail(result) {
  return outputTail({ stderr: result.stderr, stdout: "" }, 1)[0] ?? outputTail(result, 1)[0] ?? `exit ${result.exitCode}`;
}

// lib/stages/subtasks.ts
var ShownFailure = class extends Error {
  constructor(failure3, summary) {
    super(summary);
    this.failure = failure3;
  }
  failure;
  name = "ShownFailure";
};
function stageFailure(failures) {
  const interrupted2 = failures.find((f) => f instanceof InterruptedError);
  if (interrupted2) return interrupted2;
  if (failures.length === 1 && failures[0] instanceof StageError) return failures[0];
  if (failures.length === 0) return void 0;
  return new StageError(failures.map((f) => f.message).join("\n"), mergedHints(failures));
}
function mergedHints(failures) {
  return [...new Set(failures.flatMap((f) => f instanceof StageError ? f.hints : []))];
}
function subtaskList(parent, subtasks, options = {}) {
  const failures = [];
  const { concurrent = true, noun = "checks", failure: failure3 = stageFailure, after } = options;
  return parent.newListr(
    [
      {
        task: (_ctx, group) => group.newListr(
          subtasks.map((sub) => ({
            title: sub.title,
            task: async (_c, task) => {
              try {
                await sub.run(task);
              } catch (error) {
                failures.push(error);
                throw error;
              }
            }
          })),
          // One failure does not stop the others: each shows on its row, the verdict comes after.
          { concurrent, exitOnError: false }
        )
      },
      {
        task: async () => {
          const error = failure3(failures);
          if (!error) return after?.();
          const summary = error instanceof InterruptedError ? "interrupted" : `${failures.length} of ${subtasks.length} ${noun} failed`;
          throw new ShownFailure(error, summary);
        }
      }
    ],
    // Live view: a failed row shows its error in place of its title, and the untitled steps show nothing.
    { concurrent: false, exitOnError: true, rendererOptions: { collapseErrors: true } }
  );
}

// lib/stages/deploy.ts
function deployTask() {
  return {
    title: "deploy",
    task: (ctx, task) => {
      const { deploy, goal } = ctx.plan;
      if (goal === "build") throw new Error("the deploy stage in a --goal build run");
      const plan = ctx.plan;
      const seeds = new Set(plan.operation === "deploy" ? plan.builds.filter((b) => b.on === "builders").map((b) => ctx.seeds[b.system]) : []);
      const { waves } = ctx.plan;
      const rollback = ctx.plan.operation === "rollback";
      const what = deploy.diffOnly ? "compare closures, activate nothing (--dry-run --diff)" : `${rollback ? "switch back" : "deploy"} (${goal}`;
      task.title = deploy.diffOnly ? what : `${what}${deploy.rolling ? `, rolling in waves of ${deploy.concurrency}` : ""})`;
      const limit = pLimit(deploy.concurrency);
      let stoppedAfter;
      let firstFailed;
      const stops = (index) => index === 0 && deploy.canaries.length > 0 || deploy.rolling && !deploy.keepGoing;
      const rollout = new Waves(
        waves.map((wave) => wave.length),
        (index, failed) => {
          if (failed) firstFailed ??= index;
          if (failed && stoppedAfter === void 0 && stops(index)) stoppedAfter = index;
        }
      );
      const hosts = waves.flatMap(
        (wave, index) => wave.map((host2) => {
          const label = `wave ${index + 1}/${waves.length}`;
          return {
            title: seeds.has(host2) ? `${host2} (seed, ${label})` : deploy.hosts[host2].target.local ? `${host2} (this machine, ${label})` : `${host2} (${label})`,
            run: async (sub) => {
              let failed = false;
              try {
                if (index > 0) {
                  sub.output = `${host2}: waiting for wave ${index}/${waves.length} (${waves[index - 1].join(", ")})`;
                  await rollout.ended(index - 1);
                }
                if (ctx.signal.aborted) throw new InterruptedError(`${host2}: not started, interrupted`);
                const stoppedBy = stoppedAfter ?? (isLastAloneWave(plan, index) && !deploy.keepGoing ? firstFailed : void 0);
                if (stoppedBy !== void 0) {
                  sub.skip(`${host2}: not started (wave ${stoppedBy + 1} failed)`);
                  return;
                }
                if (limit.activeCount >= limit.concurrency) sub.output = `${host2}: waiting for a free slot`;
                await limit(async () => {
                  if (ctx.signal.aborted) throw new InterruptedError(`${host2}: not started, interrupted`);
                  const progress = withProgressTitle(sub);
                  try {
                    const deployment = {
                      plan: deploy.hosts[host2],
                      goal,
                      confirmTimeoutSeconds: deploy.confirmTimeoutSeconds,
                      values: ctx.values,
                      activation: activationName(plan),
                      diffOnly: deploy.diffOnly
                    };
                    await deployHost(deployment, ctx, (line) => sub.output = `${host2}: ${line}`);
                    const ended = ctx.recorder.hosts.get(host2);
                    const changes = ended?.diff ? ` \u2014 ${summarizeClosureDiff(ended.diff)}` : "";
                    progress.task.title = ended?.state === "not-started" ? `${host2}: not activated (${ended.note ?? ""})${changes}` : `${host2}: ${goal} done${changes}`;
                  } finally {
                    progress.stop();
                  }
                });
              } catch (error) {
                failed = true;
                throw error;
              } finally {
                rollout.end(index, failed);
              }
            }
          };
        })
      );
      return subtaskList(task, hosts, {
        noun: "hosts",
        failure: (failures) => {
          const error = stageFailure(failures);
          if (!(error instanceof StageError) || stoppedAfter === void 0) return error;
          const left = waves.slice(stoppedAfter + 1).flat();
          return left.length ? new StageError(`${error.message}
not started: ${left.join(", ")}`, error.hints) : error;
        }
      });
    },
    rendererOptions: { outputBar: 3 }
  };
}
var Waves = class {
  constructor(sizes, onEnd) {
    this.onEnd = onEnd;
    this.left = [...sizes];
    this.failed = sizes.map(() => false);
    this.done = sizes.map((_, i) => new Promise((resolve2) => this.release[i] = resolve2));
  }
  onEnd;
  left;
  failed;
  release = [];
  done;
  /** Resolves when every host of wave `index` has ended. */
  ended(index) {
    return this.done[index];
  }
  /** A host of wave `index` ended; the last one's end judges the wave, then lets the next go. */
  end(index, failed) {
    if (failed) this.failed[index] = true;
    this.left[index] -= 1;
    if (this.left[index] !== 0) return;
    this.onEnd(index, this.failed[index]);
    this.release[index]();
  }
};

// lib/util/deferred.ts
function deferred() {
  let resolve2;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve2 = res;
    reject = rej;
  });
  promise.catch(() => void 0);
  return { promise, resolve: resolve2, reject };
}

// lib/stages/context.ts
function seedAnswered(ctx, system2) {
  const all = ctx.seedsAnswered ??= {};
  return all[system2] ??= deferred();
}
function filled(ctx, command, extra = {}) {
  return fillCommand(command, { ...ctx.values, ...extra });
}
function deployRun(ctx) {
  if (ctx.plan.operation !== "deploy") throw new Error(`a deploy stage in a ${ctx.plan.operation} run`);
  return { plan: ctx.plan };
}

// lib/stages/failure.ts
function expectSuccess(what, command, result, hints = [], output2) {
  if (result.aborted) throw new InterruptedError(`${what}: interrupted`);
  if (!succeeded(result)) throw new StageError(describeFailure(what, command, result, output2), hints);
}

// lib/stages/evaluate.ts
function parseEvaluation(stdout, hosts) {
  let parsed;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new StageError(`nix eval printed no JSON: ${stdout.slice(0, 200)}`);
  }
  const toplevels = {};
  for (const host2 of hosts) {
    const entry = parsed?.[host2];
    if (typeof entry?.drv !== "string" || !entry.drv.startsWith("/") || !entry.drv.endsWith(".drv") || typeof entry.out !== "string" || !entry.out.startsWith("/")) {
      throw new StageError(`nix eval gave no toplevel for ${host2}: ${JSON.stringify(entry ?? null).slice(0, 200)}`);
    }
    toplevels[host2] = { drvPath: entry.drv, outPath: entry.out };
  }
  return toplevels;
}
function startEvaluations(ctx) {
  const { plan } = deployRun(ctx);
  const signal = ctx.background ? AbortSignal.any([ctx.signal, ctx.background.signal]) : ctx.signal;
  const running = [];
  const evaluations = { running, show: () => {
  } };
  let previous = Promise.resolve();
  for (const evaluation of plan.evaluate) {
    const entry = {
      hosts: evaluation.hosts,
      done: previous.then(async () => {
        const startedAt = Date.now();
        await runEvaluation(ctx, evaluation, signal, (line) => evaluations.show(line));
        entry.durationMs = Date.now() - startedAt;
      })
    };
    entry.done.catch(() => void 0);
    previous = entry.done;
    running.push(entry);
  }
  return evaluations;
}
async function runEvaluation(ctx, evaluation, signal, show) {
  const command = filled(ctx, evaluation.command);
  const result = await ctx.executor.run(command, { signal, onLine: (line, stream) => stream === "stderr" && show(line) });
  expectSuccess(`evaluation of ${evaluation.hosts.join(", ")} failed`, command, result);
  const toplevels = parseEvaluation(result.stdout, evaluation.hosts);
  ctx.toplevels = { ...ctx.toplevels, ...toplevels };
  const each = (pick) => Object.fromEntries(Object.entries(toplevels).map(([host2, t]) => [host2, pick(t)]));
  Object.assign(ctx.values, toplevelValues(each((t) => t.outPath)), toplevelDerivationValues(each((t) => t.drvPath)));
}
async function evaluated(ctx, hosts, signal) {
  const evaluations = ctx.evaluations ?? (ctx.evaluations = startEvaluations(ctx));
  const waits = evaluations.running.filter((e) => e.hosts.some((h) => hosts.includes(h))).map((e) => e.done);
  await unlessStopped(Promise.all(waits), signal, "the evaluation");
}
async function unlessStopped(promise, signal, what) {
  promise.catch(() => void 0);
  if (signal.aborted) throw new InterruptedError(`stopped before ${what}`);
  let onAbort = () => {
  };
  const stopped = new Promise((_, reject) => {
    onAbort = () => reject(new InterruptedError(`stopped while waiting for ${what}`));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  stopped.catch(() => void 0);
  try {
    return await Promise.race([promise, stopped]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
function evaluateTask() {
  return {
    title: "evaluate",
    task: async (ctx, task) => {
      const { plan } = deployRun(ctx);
      const evaluations = ctx.evaluations ?? (ctx.evaluations = startEvaluations(ctx));
      evaluations.show = (line) => task.output = line;
      const first = evaluations.running[0];
      await evaluated(ctx, first.hosts, ctx.signal);
      const s = (ms) => `${((ms ?? 0) / 1e3).toFixed(1)} s`;
      const rest = evaluations.running.slice(1);
      const total = plan.hosts.length;
      const what = `${total} toplevel${total > 1 ? "s" : ""}`;
      task.title = rest.length === 0 ? `evaluate: ${what} in one nix eval (${s(first.durationMs)}, beside preflight)` : `evaluate: ${first.hosts.join(", ")} (${s(first.durationMs)}); the other ${total - first.hosts.length} beside the seed build`;
      evaluations.show = () => {
      };
    }
  };
}

// lib/stages/preflight.ts
import pLimit2 from "p-limit";

// lib/cache/key-check.ts
async function checkCacheKey(cacheUrl2, publicKey, storePaths, timeoutMs, signal) {
  const trusted = [parsePublicKey(publicKey)];
  for (const storePath of storePaths) {
    let probe;
    try {
      probe = await probeNarInfo(narInfoUrl(cacheUrl2, storePath), storePath, trusted, timeoutMs, signal);
    } catch (error) {
      return { kind: "unchecked", why: `the cache did not answer (${error.message})` };
    }
    if (probe.state === "missing") continue;
    if (probe.signature.ok) return { kind: "verified", storePath, keyName: probe.signature.keyName };
    return { kind: "mismatch", storePath, ...signatureProblem(probe.signature, cacheUrl2), sigs: probe.info.sigs };
  }
  return { kind: "unchecked", why: storePaths.length ? `none of the ${storePaths.length} newest pinned paths is served` : "nothing is pinned on the cache host yet" };
}

// lib/stages/preflight.ts
var SSH_FAILED = 255;
var PLACEHOLDER_HINT = "Put the cache's public key there: the contents of /var/lib/harmonia/cache-pub-key.pem on the cache host (the same line as in every machine's trusted-public-keys).";
var SSH_HINT = "Check the address, the key and known_hosts: ssh with the same options must work by hand.";
function targetCheckTask(ctx, check, login) {
  return {
    title: check.local ? `${check.host} (this machine) runs root steps here` : `${check.host} answers SSH as target`,
    run: async () => {
      const command = filled(ctx, check.command);
      const result = await login(() => ctx.executor.run(command, { signal: ctx.signal }));
      if (check.escalates && !succeeded(result) && !result.aborted && !result.timedOut && result.exitCode !== SSH_FAILED) {
        throw new StageError(describeFailure(`${check.host}: the deploy user cannot become root with sudo -n (no password prompt)`, command, result), [SUDO_HINT]);
      }
      expectSuccess(`${check.host} (target) does not answer SSH`, command, result, [SSH_HINT]);
    }
  };
}
function targetsPreflightTask() {
  return {
    title: "preflight",
    task: (ctx, task) => {
      const login = pLimit2(LOGINS_AT_ONCE);
      return subtaskList(task, ctx.plan.preflight.targets.map((check) => targetCheckTask(ctx, check, login)));
    }
  };
}
function preflightTask() {
  return {
    title: "preflight",
    task: (ctx, task) => {
      const { plan } = deployRun(ctx);
      const { preflight, coordinator } = plan;
      const login = pLimit2(LOGINS_AT_ONCE);
      const builders = plan.builds.filter((build) => build.on === "builders").map((build) => buildersCheckTask(ctx, build, login));
      const others = [
        {
          title: "Nix on this machine obeys --builders (trusted user)",
          run: async (sub) => {
            const { user, ...commands } = preflight.nixTrust;
            const trust = await probeNixTrust(ctx.executor, preflight.requestTimeoutMs, { signal: ctx.signal, user, commands });
            if (trust.trusted === false) {
              throw new StageError(
                `the Nix daemon does not trust ${trust.user}, so it would ignore --builders and build elsewhere than on the builders it names (${trust.how})`,
                [`Add ${trust.user} to trusted-users in this machine's nix.conf (NixOS: nix.settings.trusted-users), or run the deploy as a user that is.`]
              );
            }
            sub.title = trust.trusted === true ? `Nix trusts ${trust.user} (${trust.how})` : `could not tell whether Nix trusts ${trust.user} (${trust.how}); the seed build checks where things were built`;
          }
        },
        {
          title: `GC roots can be made in ${preflight.gcRootDir} on ${coordinator.name}`,
          run: async () => {
            const command = filled(ctx, preflight.gcRootDirWritable);
            expectSuccess(`cannot pin in ${preflight.gcRootDir} on ${coordinator.name}`, command, await ctx.executor.run(command, { signal: ctx.signal }), [
              gcRootHints.missingRoot(preflight.gcRootDir)
            ]);
          }
        },
        // A build (no rebuild planned) runs no nixos-rebuild.
        ...preflight.rebuild ? [rebuildCheck(preflight.rebuild)] : [],
        {
          title: `cache signs with cache.publicKey (${preflight.cacheKey.publicKey.split(":")[0]})`,
          run: async (sub) => {
            const { publicKey, listRoots } = preflight.cacheKey;
            if (isPlaceholderKey(publicKey)) throw new StageError(`cache.publicKey is the placeholder shipped in hosts.json (${publicKey})`, [PLACEHOLDER_HINT]);
            const listing = await ctx.executor.run(filled(ctx, listRoots), { signal: ctx.signal });
            const listed = !listing.timedOut && !listing.aborted && (listing.exitCode === 0 || listing.exitCode === 1);
            const newest = newestLiveRoots(listed ? parseRootListing(listing.stdout) : void 0);
            const check = await checkCacheKey(preflight.cacheUrl, publicKey, newest.map((r) => r.target), preflight.requestTimeoutMs, ctx.signal);
            if (check.kind === "mismatch") {
              const what = `${check.message} \u2014 the cache serves ${check.storePath} with ${check.sigs.map((sig) => `Sig: ${sig}`).join(", ") || "no signature"}; cache.publicKey is ${publicKey}`;
              if (!plan.waitForCache.allowUnsigned) throw new StageError(what, [check.hint]);
              (ctx.warnings ??= []).push(`${what} \u2014 accepted because of --allow-unsigned`);
            }
            const why = !listed ? `could not list the GC roots on ${coordinator.name} (${outputTail(listing, 1)[0] ?? `exit ${listing.exitCode}`})` : check.kind === "unchecked" ? check.why : "";
            sub.title = check.kind === "verified" ? `cache signs with cache.publicKey (${check.keyName}): checked on ${check.storePath}` : check.kind === "unchecked" ? `cache key not checked before the build: ${why}; the cache wait checks it after` : `cache key mismatch ACCEPTED (--allow-unsigned)`;
          }
        },
        {
          title: `cache ${preflight.cacheUrl} answers`,
          run: async (sub) => {
            let storeDir;
            let priority;
            try {
              ({ storeDir, priority } = await fetchCacheInfo(preflight.cacheUrl, preflight.requestTimeoutMs, ctx.signal));
            } catch (error) {
              throw new StageError(`cache does not answer: ${error.message}`, cacheUnreachableHints(preflight.cacheUrl));
            }
            if (storeDir !== "/nix/store") throw new StageError(`cache ${preflight.cacheUrl} serves StoreDir ${storeDir}, not /nix/store`);
            sub.title = `cache ${preflight.cacheUrl} answers (StoreDir ${storeDir}${priority === void 0 ? "" : `, priority ${priority}`})`;
          }
        }
      ];
      return subtaskList(task, [...builders, ...preflight.targets.map((check) => targetCheckTask(ctx, check, login)), ...gatedBy(ctx.buildChecked, others)]);
    }
  };
}
function gatedBy(gate, checks) {
  if (!gate) return [...checks];
  const passed = checks.map(() => deferred());
  void Promise.all(passed.map((d) => d.promise)).then(() => gate.resolve(), (error) => gate.reject(error));
  return checks.map((check, i) => ({
    ...check,
    run: async (sub) => {
      try {
        await check.run(sub);
        passed[i].resolve();
      } catch (error) {
        passed[i].reject(error);
        throw error;
      }
    }
  }));
}
function buildersCheckTask(ctx, build, login) {
  const names = build.builders.map((b) => b.host);
  const known2 = seedAnswered(ctx, build.system);
  const choose = (seed) => {
    ctx.seeds[build.system] = seed.host;
    ctx.values[`seed-builder:${build.system}`] = seed.spec;
    known2.resolve();
  };
  return {
    title: `${names.join(", ")} answer${names.length === 1 ? "s" : ""} SSH as builder${names.length === 1 ? "" : "s"} (${build.system})`,
    run: async (sub) => {
      try {
        await checkBuilders(sub);
      } catch (error) {
        known2.reject(error);
        throw error;
      }
    }
  };
  async function checkBuilders(sub) {
    const probes = await Promise.all(
      build.builders.map(async (builder2, i) => {
        const command = filled(ctx, builder2.check);
        const ask = () => ctx.executor.run(command, { signal: ctx.signal });
        const result = await (i === 0 ? ask() : login(ask));
        if (i === 0 && succeeded(result)) choose(builder2);
        return { builder: builder2, command, result };
      })
    );
    const answering = probes.filter((p) => succeeded(p.result));
    const [preferred] = probes;
    if (answering.length === 0 || ctx.signal.aborted) {
      expectSuccess(`${preferred.builder.host} (builder) does not answer SSH`, preferred.command, preferred.result, [SSH_HINT]);
    }
    const seed = answering[0].builder;
    if (seed !== preferred.builder) choose(seed);
    ctx.values[`builders:${build.system}`] = joinBuilderSpecs(answering.map((p) => p.builder.spec));
    const silent = probes.filter((p) => !succeeded(p.result)).map((p) => `${p.builder.host} (${outputTail(p.result, 1)[0] ?? `exit ${p.result.exitCode}`})`);
    if (seed !== preferred.builder) {
      const failover = `seed ${preferred.builder.host} did not answer (${outputTail(preferred.result, 1)[0] ?? `exit ${preferred.result.exitCode}`}); ${seed.host} builds instead`;
      ctx.seedFailover = ctx.seedFailover ? `${ctx.seedFailover}; ${failover}` : failover;
    }
    sub.title = silent.length ? `${build.system}: ${answering.map((p) => p.builder.host).join(", ")} build${seed === preferred.builder ? "" : ` (seed ${seed.host})`}; not answering, left out: ${silent.join(", ")}` : `${names.join(", ")} answer${names.length === 1 ? "s" : ""} SSH as builder${names.length === 1 ? "" : "s"} (${build.system}, seed ${seed.host})`;
  }
}
var LOGINS_AT_ONCE = DEFAULT_CONCURRENCY;
function rebuildCheck(rebuild) {
  return {
    title: "nixos-rebuild on this machine",
    run: async (sub) => {
      const { tool, problems } = rebuild;
      if (!tool.found) {
        throw new StageError(`${describeTool(tool)}: ${tool.error}`, [REBUILD_NOT_FOUND_HINT]);
      }
      if (problems.length) throw new StageError(problems.join("\n"), ["`just nix doctor` shows which nixos-rebuild this is and which flags it accepts."]);
      sub.title = `nixos-rebuild on this machine: ${describeTool(tool)}`;
    }
  };
}

// lib/stages/resolve.ts
function resolveTask() {
  return {
    title: "resolve",
    task: (ctx, task) => {
      if (ctx.plan.operation !== "rollback") throw new Error(`the resolve stage in a ${ctx.plan.operation} run`);
      const { resolve: resolve2, hosts } = ctx.plan;
      task.title = "resolve: the generation each host goes back to";
      return subtaskList(
        task,
        hosts.map((host2) => ({
          title: `${host2}: its generations`,
          run: async (sub) => {
            const { list, to } = resolve2.hosts[host2];
            const command = filled(ctx, list);
            const result = await ctx.executor.run(command, { signal: ctx.signal });
            expectSuccess(`${host2}: cannot read its generations`, command, result);
            let generations;
            try {
              generations = parseGenerations(result.stdout);
            } catch (error) {
              throw new StageError(`${host2}: ${error.message}`);
            }
            const chosen = chooseGeneration(host2, generations, to);
            Object.assign(ctx.values, toplevelValues({ [host2]: chosen.toplevel }), { [`generation:${host2}`]: String(chosen.number) });
            sub.title = `${host2}: generation ${generations.profileGeneration ?? "?"} \u2192 ${chosen.number} (${chosen.toplevel})`;
          }
        }))
      );
    }
  };
}
function chooseGeneration(host2, generations, to) {
  const have = generations.generations.map((g) => g.number).join(", ") || "none";
  if (to.kind === "previous") {
    const previous = previousGeneration(generations);
    if (previous) return previous;
    throw new StageError(
      generations.profileGeneration === void 0 ? `${host2}: no system profile generation to go back from (generations: ${have})` : `${host2}: no generation before ${generations.profileGeneration} to go back to (generations: ${have})`
    );
  }
  if (to.kind === "generation") {
    const found2 = generations.generations.find((g) => g.number === to.number);
    if (found2) return found2;
    throw new StageError(`${host2}: has no generation ${to.number} (generations: ${have})`);
  }
  const found = generations.generations.filter((g) => g.toplevel === to.toplevel).at(-1);
  if (found) return found;
  throw new StageError(`${host2}: no generation is ${to.toplevel}, which run ${to.run} found there (deleted or garbage-collected?); generations: ${have}`);
}

// lib/stages/seed-build.ts
function seedBuildTask() {
  return {
    title: "seed build",
    task: (ctx, task) => {
      const { plan } = deployRun(ctx);
      task.title = `seed build: ${plan.builds.map((b) => `${b.system} on ${whereBuilt(ctx, b)}`).join(", ")}`;
      return subtaskList(
        task,
        [
          ...plan.builds.map((build) => ({
            title: `${build.system} on ${whereBuilt(ctx, build)}`,
            run: (sub) => buildSystem(ctx, build, sub)
          }))
        ],
        {
          noun: "system builds",
          // The toplevels land in the coordinator's store and are pinned once every system's build has ended well.
          after: async () => {
            await landAndPin(ctx, task);
            task.title = `seed build: ${plan.builds.map((b) => `${b.system} on ${whereBuilt(ctx, b)}`).join(", ")}; pinned in ${plan.preflight.gcRootDir}`;
          }
        }
      );
    },
    rendererOptions: { outputBar: 5 }
  };
}
function whereBuilt(ctx, build) {
  return build.on === "here" ? `${deployRun(ctx).plan.coordinator.name} (here)` : seedOf(ctx, build);
}
function startHeadStarts(ctx) {
  const { plan } = deployRun(ctx);
  ctx.buildChecked ??= deferred();
  ctx.headStarts = Object.fromEntries(
    plan.builds.flatMap((build) => {
      const head = build.headStart;
      if (!head) return [];
      const stopper = new AbortController();
      const signal = AbortSignal.any([ctx.signal, stopper.signal, ...ctx.background ? [ctx.background.signal] : []]);
      const built = [];
      let succeeded3 = false;
      const early = [];
      let show = (line) => {
        if (early.push(line) > EARLY_LINES) early.shift();
      };
      const done = (async () => {
        const seed = build.on === "builders" ? [seedAnswered(ctx, build.system).promise] : [];
        await unlessStopped(Promise.all([ctx.buildChecked?.promise, ...seed]), signal, "preflight's checks for the build");
        await evaluated(ctx, head.hosts, signal);
        startBuildSpan(ctx, build);
        show(`building ${head.hosts.join(", ")} first, while the others are evaluated`);
        try {
          await runBuild(ctx, build, { ...head, on: "seed" }, (line) => show(line), signal, built);
          succeeded3 = true;
        } finally {
          ctx.builds.push(...built);
        }
      })();
      done.catch(() => void 0);
      const entry = {
        done,
        succeeded: () => succeeded3,
        built,
        stop: () => stopper.abort(),
        attach: (say) => {
          for (const line of early.splice(0)) say(line);
          show = say;
        }
      };
      return [[build.system, entry]];
    })
  );
}
var EARLY_LINES = 10;
function startBuildSpan(ctx, build) {
  if (ctx.recorder.hasBuild(build.system)) return;
  ctx.recorder.startBuild(build.system, { on: build.on, seed: seedOf(ctx, build), hosts: build.hosts });
}
async function buildSystem(ctx, build, sub) {
  const { plan } = deployRun(ctx);
  const say = (line) => sub.output = plan.builds.length > 1 ? `${build.system}: ${line}` : line;
  const head = ctx.headStarts?.[build.system];
  if (build.headStart && !head) throw new Error(`the head start of ${build.system} was never started (lib/run/run.ts startHeadStarts)`);
  head?.attach(say);
  startBuildSpan(ctx, build);
  const built = [];
  const stopper = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stopper.signal]);
  let outcome = "failed";
  try {
    const others = (async () => {
      const hosts = build.hosts.filter((h) => !build.headStart?.hosts.includes(h));
      if (head) say(`evaluating ${hosts.join(", ")}; building ${build.headStart.hosts.join(", ")} meanwhile`);
      await evaluated(ctx, hosts, signal);
      return runBuild(ctx, build, { hosts, build: build.build, on: "builders" }, say, signal, built);
    })();
    try {
      await Promise.all([head?.done, others]);
    } catch (error) {
      stopper.abort();
      head?.stop();
      await Promise.allSettled([head?.done, others]);
      throw error;
    }
    sub.title = `${build.system} on ${whereBuilt(ctx, build)}: ${summarizeBuilds([...head?.built ?? [], ...built])}`;
    outcome = "success";
  } finally {
    ctx.builds.push(...built);
    ctx.recorder.endBuild(build.system, ctx.signal.aborted ? "interrupted" : outcome, (head?.built.length ?? 0) + built.length);
  }
}
async function runBuild(ctx, build, of, say, signal, built) {
  const { plan } = deployRun(ctx);
  const log = new BuildLogRecorder();
  const command = filled(ctx, of.build);
  try {
    const result = await ctx.executor.run(command, {
      signal,
      onLine: (line, stream) => {
        const event = log.add(line, stream);
        if (!event || stream === "stdout") return;
        if (event.kind === "build-start") say(`building ${drvName(event.drvPath)} on ${event.machine ?? "this machine"}`);
        else if (event.kind === "build-log") say(`${event.drvName}> ${event.line}`);
        else if (!isOutputNoise(event.text)) say(event.text);
      }
    });
    const answered = new Set((ctx.values[`${of.on === "seed" ? "seed-builder" : "builders"}:${build.system}`] ?? "").split(" ; "));
    const used = build.builders.filter((b) => answered.has(b.spec));
    const allowed = used.map((b) => b.uri);
    const elsewhere = log.builds.filter((b) => build.on === "here" ? b.machine !== void 0 : !allowed.some((uri) => isBuiltOn(b.machine, uri)));
    const told = log.failureLines();
    const shown = told.length ? told : tailWithoutNoise(result);
    const hints = placementHints(log, elsewhere, plan.preflight.nixTrust.user);
    expectSuccess(`seed build of ${build.system} on ${whereBuilt(ctx, build)} failed`, command, result, hints, shown);
    if (elsewhere.length) {
      const where = build.on === "here" ? "this machine" : used.map((b) => `${b.host} (${b.uri})`).join(", ");
      throw new StageError(`built elsewhere than on ${where}: ${describeBuilds(elsewhere)}`, hints);
    }
    const outputs = new Set(parseBuildResults(result.stdout).flatMap((r) => Object.values(r.outputs)));
    const missing = of.hosts.filter((host2) => !outputs.has(ctx.toplevels?.[host2]?.outPath ?? ""));
    if (missing.length) throw new StageError(`the seed build did not produce the evaluated toplevel of ${missing.join(", ")}`);
  } finally {
    built.push(...log.builds);
  }
}
function seedOf(ctx, build) {
  return ctx.seeds[build.system];
}
async function landAndPin(ctx, task) {
  const { plan } = deployRun(ctx);
  const coordinator = plan.coordinator.name;
  if (plan.copyToCoordinator) {
    task.output = `copying the toplevels to ${coordinator}`;
    const copy = filled(ctx, plan.copyToCoordinator);
    expectSuccess(`copying the result to ${coordinator} failed`, copy, await ctx.executor.run(copy, { signal: ctx.signal }));
  }
  const { gcRootDir } = plan.preflight;
  const on = plan.coordinator.place.kind === "local" ? "local" : sshDestination(plan.coordinator.place.host);
  task.output = `pinning the toplevels in ${gcRootDir} (${on})`;
  for (const planned of plan.pin.commands) {
    const command = filled(ctx, planned);
    const pinned = await ctx.executor.run(command, { signal: ctx.signal });
    expectSuccess(`pinning the toplevels on ${coordinator} failed`, command, pinned, [gcRootHints.missingRoot(gcRootDir)]);
  }
  ctx.pinnedRoots = plan.pin.roots.map((root) => ({ storePath: fillText(root.storePath, ctx.values), root: fillText(root.root, ctx.values), on }));
}
function describeBuilds(builds) {
  return builds.map((b) => `${drvName(b.drvPath)} (${b.drvPath}) on ${b.machine ?? "this machine"}`).join(", ");
}
function placementHints(log, elsewhere, user) {
  if (log.ignoredSettings.has("builders")) {
    return [`add ${user} to trusted-users in the coordinator's nix.conf (the daemon ignores --builders from untrusted users)`];
  }
  if (elsewhere.length === 0) return [];
  return [
    `Nix did not build on the builder that --builders names, with --max-jobs 0 forbidding local builds: a Nix daemon ignores --builders from users not in its trusted-users (before Nix 2.22 without a warning; nix store info --json tells "trusted"), so add ${user} to trusted-users in the coordinator's nix.conf; otherwise look for what overrides builders or max-jobs (NIX_CONFIG, --option, the machines file)`
  ];
}
function summarizeBuilds(builds) {
  const names = builds.map((b) => drvName(b.drvPath));
  const machines = [...new Set(builds.map((b) => b.machine ?? "this machine"))];
  if (names.length === 0) return "nothing to build, all in the store already";
  const shown = names.slice(0, 4).join(", ");
  const where = machines.length > 1 ? ` on ${machines.length} machines` : "";
  return `built ${names.length} derivation${names.length > 1 ? "s" : ""}${where} (${shown}${names.length > 4 ? ", \u2026" : ""})`;
}

// lib/stages/wait-for-cache.ts
function waitForCacheTask() {
  return {
    title: "wait for cache",
    task: (ctx, task) => {
      const { waitForCache } = deployRun(ctx).plan;
      const trusted = [parsePublicKey(waitForCache.publicKey)];
      return subtaskList(
        task,
        waitForCache.narinfos.map(({ host: host2, ...narinfo }) => ({
          title: `${host2}: toplevel served by ${waitForCache.cacheUrl}`,
          run: async (sub) => {
            const storePath = fillText(narinfo.storePath, ctx.values);
            const outcome = await waitForNarInfo(fillText(narinfo.url, ctx.values), storePath, trusted, {
              maxDelayMs: waitForCache.pollMaxMs,
              timeoutMs: waitForCache.timeoutMs,
              requestTimeoutMs: waitForCache.requestTimeoutMs,
              signal: ctx.signal,
              onPoll: (attempt, probe) => {
                sub.output = probe instanceof Error ? `poll ${attempt}: ${probe.message}` : `poll ${attempt}: ${probe.state}`;
              }
            });
            if (ctx.signal.aborted) throw new InterruptedError();
            if (outcome.state === "timeout") {
              const why = outcome.lastError ? `the cache did not answer (${outcome.lastError.message})` : "not served";
              throw new StageError(
                `${host2}: ${storePath} ${why} after ${Math.round(waitForCache.timeoutMs / 1e3)} s`,
                outcome.lastError ? cacheUnreachableHints(waitForCache.cacheUrl) : pathMissingHints(waitForCache.cacheUrl)
              );
            }
            if (!outcome.signature.ok) {
              const problem = signatureProblem(outcome.signature, waitForCache.cacheUrl);
              if (!waitForCache.allowUnsigned) throw new StageError(`${host2}: ${storePath}: ${problem.message}`, [problem.hint]);
              (ctx.warnings ??= []).push(`${host2}: ${storePath}: ${problem.message} \u2014 accepted because of --allow-unsigned`);
              sub.title = `${host2}: served, ${problem.message} \u2014 ACCEPTED (--allow-unsigned)`;
              return;
            }
            sub.title = `${host2}: served, signed by ${outcome.signature.keyName} (${outcome.attempts} poll${outcome.attempts > 1 ? "s" : ""})`;
          }
        })),
        { noun: "toplevels" }
      );
    }
  };
}

// lib/run/lock.ts
import { existsSync } from "node:fs";
import { hostname, userInfo as userInfo3 } from "node:os";
function holderLiveness(holder) {
  const where = `pid ${holder.pid} on ${holder.host}`;
  const thisBoot = bootId();
  if (holder.bootId !== void 0 && thisBoot !== void 0 && holder.bootId !== thisBoot) return { alive: false, why: `${holder.host} has rebooted since` };
  if (!existsSync("/proc/self/stat")) return processAlive(holder.pid) ? { alive: true } : { alive: false, why: `${where} is gone` };
  const stat3 = readProcStat(holder.pid);
  if (!stat3) return { alive: false, why: `${where} is gone` };
  if (!isRunningState(stat3.state)) return { alive: false, why: `${where} has exited` };
  if (holder.startTime !== void 0 && stat3.startTime !== holder.startTime) return { alive: false, why: `${where} is another process now` };
  return { alive: true };
}
function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}
function describeHolder(holder) {
  return `${holder.user}@${holder.host} (pid ${holder.pid}) since ${holder.startedAt}: ${holder.command}`;
}
var DeployLock = class _DeployLock {
  constructor(options, holder, note) {
    this.options = options;
    this.holder = holder;
    this.note = note;
  }
  options;
  holder;
  note;
  static async acquire(options) {
    const now = options.now ?? Date.now;
    const me = {
      id: `${hostname()}-${process.pid}-${now()}`,
      user: userInfo3().username,
      host: hostname(),
      pid: process.pid,
      startedAt: new Date(now()).toISOString(),
      command: options.command,
      ...ownIdentity()
    };
    let note;
    if (options.forceUnlock) {
      await _DeployLock.run(options, options.lock.remove);
      note = "removed the deploy lock (--force-unlock)";
    }
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const result = await _DeployLock.run(options, options.lock.acquire, { "lock-holder": holderRecord(me) }, [0, LOCK_HELD]);
      if (result.exitCode === 0) return new _DeployLock(options, me, note);
      const holder = parseHolder(result.stdout);
      const stale = holder ? staleReason(holder, options, now()) : "unreadable lock file";
      if (!stale || attempt > 0) {
        throw new StageError(
          `deploy lock ${options.lock.path} is held by ${holder ? describeHolder(holder) : "an unknown run"}`,
          ["Wait for that deploy to finish; if it is dead, run again with --force-unlock."]
        );
      }
      await (holder?.id ? _DeployLock.run(options, options.lock.release, { "lock-holder-id": holder.id }) : _DeployLock.run(options, options.lock.remove));
      note = `took over a stale deploy lock (${stale})`;
    }
    throw new StageError("could not take the deploy lock");
  }
  static async run(options, command, values = {}, accepted = [0]) {
    const result = await options.executor.run(fillCommand(command, values));
    if (result.exitCode === LOCK_CANNOT_CREATE) {
      const { place: place2, name } = options.coordinator;
      const where = place2.kind === "local" ? "on this machine" : `on ${name} as ${place2.host.user}`;
      throw new StageError(`cannot create the deploy lock ${options.lock.path} ${where}: ${outputTail(result, 2).join(" / ")}`, [
        "paths.lock must be in a directory the deploying user can write (on the coordinator: coordinator.user); --force-unlock does not help here."
      ]);
    }
    if (result.exitCode === null || !accepted.includes(result.exitCode)) {
      throw new StageError(`cannot reach the deploy lock ${options.lock.path}: ${outputTail(result, 3).join(" / ") || `exit ${result.exitCode}`}`);
    }
    return result;
  }
  async release() {
    await _DeployLock.run(this.options, this.options.lock.release, { "lock-holder-id": this.holder.id });
  }
};
function holderRecord(holder) {
  return JSON.stringify(holder).replace(/'/g, "\\u0027");
}
function parseHolder(text) {
  try {
    const holder = JSON.parse(text);
    if (typeof holder.pid !== "number" || typeof holder.host !== "string") return void 0;
    const { startTime, bootId: boot, ...rest } = holder;
    return { ...rest, ...typeof startTime === "number" ? { startTime } : {}, ...typeof boot === "string" ? { bootId: boot } : {} };
  } catch {
    return void 0;
  }
}
function ownIdentity() {
  const startTime = readProcStat(process.pid)?.startTime;
  const boot = bootId();
  return { ...startTime !== void 0 ? { startTime } : {}, ...boot !== void 0 ? { bootId: boot } : {} };
}
function staleReason(holder, options, now) {
  if (holder.host === hostname()) {
    if (options.isAlive) {
      if (!options.isAlive(holder)) return `pid ${holder.pid} on ${holder.host} is gone`;
    } else {
      const liveness = holderLiveness(holder);
      if (!liveness.alive) return liveness.why;
    }
  }
  const age = now - Date.parse(holder.startedAt);
  if (age > options.lock.maxAgeMs) return `older than any run may last (${Math.round(age / 6e4)} min)`;
  return void 0;
}

// lib/run/renderer.ts
import {
  LISTR_LOGGER_STDERR_LEVELS,
  ListrDefaultRendererLogLevels as Row,
  ListrLogger,
  ListrLogLevels as Line,
  PRESET_TIMESTAMP
} from "listr2";
var RunLogger = class extends ListrLogger {
  constructor(chalk, options) {
    super(options);
    this.chalk = chalk;
  }
  chalk;
  log(level, message, options) {
    if (message === void 0) return;
    super.log(level, message, options);
  }
  applyFormat(message, options) {
    return this.chalk.level === 0 ? message : super.applyFormat(message, options);
  }
};
function palette(chalk) {
  const paint = (style) => (text) => style(text ?? "");
  const { yellow, green, red, dim, yellowBright, redBright } = {
    yellow: paint(chalk.yellow),
    green: paint(chalk.green),
    red: paint(chalk.red),
    dim: paint(chalk.dim),
    yellowBright: paint(chalk.yellowBright),
    redBright: paint(chalk.redBright)
  };
  return {
    rows: {
      [Row.SKIPPED_WITH_COLLAPSE]: yellow,
      [Row.SKIPPED_WITHOUT_COLLAPSE]: yellow,
      [Row.PENDING]: yellow,
      [Row.COMPLETED]: green,
      [Row.COMPLETED_WITH_FAILED_SUBTASKS]: yellow,
      [Row.COMPLETED_WITH_FAILED_SISTER_TASKS]: red,
      [Row.RETRY]: yellowBright,
      [Row.ROLLING_BACK]: redBright,
      [Row.ROLLED_BACK]: redBright,
      [Row.FAILED]: red,
      [Row.FAILED_WITH_FAILED_SUBTASKS]: red,
      [Row.WAITING]: dim,
      [Row.PAUSED]: yellowBright
    },
    lines: {
      [Line.STARTED]: yellow,
      [Line.FAILED]: red,
      [Line.SKIPPED]: yellow,
      [Line.COMPLETED]: green,
      [Line.RETRY]: yellowBright,
      [Line.ROLLBACK]: redBright,
      [Line.PAUSED]: yellowBright
    },
    dim
  };
}
function listrRendererOptions(renderer, chalk) {
  const colours2 = palette(chalk);
  const live = {
    // The final screen is the whole run: every stage keeps its rows once it ends.
    collapseSubtasks: false,
    // A failed row keeps its title (and elapsed time); its error is shown under it.
    collapseErrors: false,
    showErrorMessage: true,
    color: colours2.rows,
    logger: new RunLogger(chalk, { useIcons: true, toStderr: [] })
  };
  const plain = {
    // Timestamps: CI logs are read after the fact.
    timestamp: { ...PRESET_TIMESTAMP, format: () => colours2.dim },
    color: colours2.lines,
    logger: new RunLogger(chalk, { useIcons: true, toStderr: LISTR_LOGGER_STDERR_LEVELS })
  };
  return { rendererOptions: renderer === "default" ? live : renderer === "simple" ? plain : {}, fallbackRendererOptions: plain };
}

// lib/run/run.ts
function timed(name, stage, usual) {
  return {
    ...stage,
    task: async (ctx, task) => {
      ctx.recorder.startStage(name);
      const progress = withProgressTitle(task, { etaMs: usual?.stageMs[name] });
      let ended = false;
      const end = (outcome) => {
        if (ended) return;
        ended = true;
        ctx.recorder.endStage(name, outcome);
        progress.stop();
      };
      const fail = (error) => end(error instanceof InterruptedError || ctx.signal.aborted ? "interrupted" : "failed");
      try {
        const result = await stage.task(ctx, progress.task);
        if (!(result instanceof Listr)) {
          end("success");
          return;
        }
        result.add({ task: () => end("success") });
        task.task.on(ListrTaskEventType.STATE, (state) => state === ListrTaskState.FAILED && fail());
        return result;
      } catch (error) {
        fail(error);
        throw error;
      }
    }
  };
}
var STAGE_TASKS = {
  deploy: { preflight: preflightTask, evaluate: evaluateTask, "seed-build": seedBuildTask, "wait-for-cache": waitForCacheTask, deploy: deployTask },
  rollback: { preflight: targetsPreflightTask, resolve: resolveTask, deploy: deployTask }
};
async function runPlan(plan, options) {
  const recorder = new RunRecorder();
  const runId = options.runId ?? `${Date.now().toString(36)}-${process.pid}`;
  const sshControlDir = await mkdtemp(join3(/\s/.test(tmpdir()) ? "/tmp" : tmpdir(), "avalanche-ssh-"));
  const ctx = {
    plan,
    // Until preflight hears from them: each system's preferred seed, or the coordinator building here.
    seeds: plan.operation === "deploy" ? Object.fromEntries(plan.builds.map((b) => [b.system, preferredSeed(b, plan.coordinator.name)])) : {},
    values: { "run-id": runId, "ssh-control-dir": sshControlDir },
    executor: options.executor,
    signal: options.signal,
    recorder,
    confirmActivation: options.confirmActivation,
    builds: [],
    background: new AbortController()
  };
  const renderer = options.renderer;
  const colours2 = options.colours ?? new Chalk({ level: 0 });
  const usual = recentMedians(options.history ?? [], plan);
  const listr = new Listr(
    plan.stages.filter((name) => name !== "report").map((name) => timed(name, STAGE_TASKS[plan.operation][name](), usual)),
    {
      ctx,
      renderer,
      exitOnError: true,
      registerSignalListeners: false,
      collectErrors: false,
      ...listrRendererOptions(options.renderer, colours2)
    }
  );
  let error;
  let lock;
  try {
    if (options.lock && plan.lock) {
      lock = await DeployLock.acquire({
        lock: plan.lock,
        coordinator: plan.coordinator,
        executor: options.executor,
        command: options.lock.command,
        forceUnlock: options.lock.forceUnlock
      });
      if (lock.note) options.notice?.(lock.note);
    }
    if (plan.operation === "deploy") {
      ctx.evaluations = startEvaluations(ctx);
      startHeadStarts(ctx);
    }
    await listr.run();
  } catch (caught) {
    error = options.signal.aborted ? new InterruptedError() : caught instanceof ShownFailure ? caught.failure : caught;
  } finally {
    ctx.background?.abort();
    await Promise.allSettled([...(ctx.evaluations?.running ?? []).map((e) => e.done), ...Object.values(ctx.headStarts ?? {}).map((h) => h.done)]);
    await lock?.release().catch((e) => options.notice?.(`could not release the deploy lock: ${e.message}`));
    const closing = Object.values(plan.deploy.hosts).flatMap((host2) => host2.closeConnection ? [fillCommand(host2.closeConnection, ctx.values)] : []);
    await Promise.all(closing.map((command) => options.executor.run(command)));
    await rm(sshControlDir, { recursive: true, force: true });
  }
  const outcome = error instanceof InterruptedError ? "interrupted" : error ? "failed" : "success";
  recorder.closeOpenStages(outcome === "interrupted" ? "interrupted" : "failed");
  for (const [system2, head] of Object.entries(ctx.headStarts ?? {})) {
    recorder.endBuild(system2, head.succeeded() ? "success" : outcome === "interrupted" ? "interrupted" : "failed", head.built.length);
  }
  const report = buildReport({
    recorder,
    outcome,
    operation: plan.operation,
    stages: plan.stages,
    goal: plan.goal,
    // A build deploys nothing: no verdict against the one-by-one deploy.
    ...plan.operation === "deploy" ? { seed: ctx.seeds[plan.builds[0].system] ?? "", flake: plan.flake, ...plan.goal === "build" ? {} : { baselineMinutes: plan.baselineMinutes } } : {},
    seedFailover: ctx.seedFailover,
    hosts: plan.hosts,
    toplevels: Object.fromEntries(plan.hosts.flatMap((h) => toplevelOf(ctx.values, h) ? [[h, toplevelOf(ctx.values, h)]] : [])),
    builds: ctx.builds,
    commands: options.executor.log,
    error: error?.message,
    pinnedRoots: ctx.pinnedRoots,
    warnings: ctx.warnings
  });
  const reportPath = options.reportDir ? await writeReport(options.reportDir, report) : void 0;
  if (options.reportDir) await appendHistory(historyPathFor(options.reportDir), summarizeRun(report));
  if (error && !(error instanceof StageError) && !(error instanceof InterruptedError)) {
    error = new StageError(error.message);
  }
  return { outcome, report, reportPath, error };
}

// lib/util/writable.ts
import { constants as constants2 } from "node:fs";
import { access as access2, mkdir as mkdir3 } from "node:fs/promises";
async function whyNotWritable(dir, timeoutMs = 5e3) {
  let timer;
  const check = (async () => {
    try {
      await mkdir3(dir, { recursive: true });
      await access2(dir, constants2.W_OK | constants2.X_OK);
      return void 0;
    } catch (error) {
      return error.message;
    }
  })();
  const late = new Promise((resolve2) => {
    timer = setTimeout(() => resolve2(`making it did not finish within ${timeoutMs / 1e3} s`), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([check, late]);
  } finally {
    clearTimeout(timer);
  }
}

// lib/cli/parse.ts
import { parseArgs } from "node:util";
function parseStrict(argv, options, allowPositionals = true) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError(error.message.replace(/\. To specify a positional.*$/s, ""));
  }
}

// lib/cli/selection.ts
import { hostname as hostname2, userInfo as userInfo4 } from "node:os";
var SELECTION_OPTIONS = {
  on: { type: "string", multiple: true, default: [] },
  exclude: { type: "string", multiple: true, default: [] }
};
var SELECTION_HELP = `  --on <selector>      hosts to act on: names, @tag, globs (opi0*), comma lists;
                       repeatable (their union)
  --exclude <selector> hosts to leave out (same syntax; repeatable)`;
function selectorFrom(values, extra = []) {
  return { on: [...extra, ...values.on ?? []], exclude: [...values.exclude ?? []] };
}
function thisMachine(inventory, host2 = hostname2()) {
  const problem = localCoordinatorProblem(inventory, host2);
  if (problem) throw new UsageError(problem);
  return hereAmong(inventory, Object.keys(inventory.hosts), host2, userInfo4().username);
}

// lib/cli/args.ts
function usage(command) {
  if (command === "rollback") return rollbackUsage();
  const synopsis = command === "deploy" ? "npx tsx scripts/deploy.ts <host|@tag|glob\u2026> [options]      (just nix deploy opi03, just nix deploy @k3s)" : "npx tsx scripts/deploy-all.ts [--on <selector>\u2026] [--exclude <selector>\u2026] [options]";
  const what = command === "deploy" ? "Deploy the named hosts of the inventory in stages (positional selectors, or --on)." : "Deploy every host of the inventory (or those --on selects) in stages.";
  return `${what}
Builds each toplevel once on a seed builder, waits until the binary cache serves it
signed, then puts the built toplevel on every host so targets pull from the cache: with
nixos-rebuild --store-path where it takes it, else itself (copy, profile, activation);
the inventory's deploy.method chooses (nixos-rebuild | direct).

Usage: ${synopsis}

Options:
  --inventory <path>   inventory file (default ./hosts.json)
  --flake <ref>        flake reference (default: the inventory's "flake")
  --goal <goal>        switch | boot | test | dry-activate (default switch), or build:
                       preflight, evaluate, seed build, pin and wait for the cache, then
                       stop \u2014 every toplevel built once and served signed, no host touched
                       (no target is asked, no deploy lock is taken)
  --reboot             with --goal boot: reboot each host (in waves with --rolling), wait
                       for it to come back (timeouts.rebootSeconds, default 600), check it
                       booted the new generation (/run/booted-system), run the health checks
  --seed <host>        preferred builder of its system's seed build (default: the inventory's
                       "seed"; the other systems' builders, or the coordinator, build theirs)
  --concurrency <n>    hosts deployed at once (default ${DEFAULT_CONCURRENCY})
  --canary <host>      deploy <host> first, alone (repeatable); the others only if it deployed
                       well. Default: none (every host as soon as it can), or with --rolling
                       the seeds
${SELECTION_HELP}
${command === "deploy-all" ? "  --tag <tag>          the same as --on @<tag>\n" : ""}  --rolling            deploy in waves (--batch-size, default 1) with health checks
                       between them; the first failure stops the rollout
  --batch-size <n>     hosts per wave with --rolling (default 1)
  --keep-going         with --rolling: deploy the remaining waves after a failure, fail at the end
  --confirm-timeout <s>  magic rollback: a target reverts unless confirmed within this many seconds
                       after its activation (default 30, or more when the inventory's health
                       checks and settle window may take longer)
  --no-magic-rollback  do not arm the watchdog on the targets
  --no-rollback        leave a host whose activation or health checks failed as it is
  --force-unlock       remove the deploy lock of a dead run first
  --allow-unsigned     accept a cache narinfo that is unsigned or signed by an untrusted
                       key (warned about loudly, recorded in the report)
  --dry-run            print every stage with the exact commands; run nothing
  --diff               with --dry-run: also build, fetch onto each target and show what
                       it would change (nix store diff-closures); activates nothing
  --no-diff            skip the closure diff each host otherwise gets
  --interactive        show each host's closure diff and ask before activating it
                       (a terminal only; never under CI or --json)
  -y, --yes            do not ask before deploying more than one host (asked only on a
                       terminal, never under CI or --json)
  --json               machine-readable result on stdout
  --report-dir <dir>   where run reports go (default .deploy/runs)
  -h, --help           this help

Exit codes: 0 deployed (with --goal build: built and served), 1 a stage failed, 2 usage or
inventory error, 130 interrupted.`;
}
function rollbackUsage() {
  return `Switch hosts back to a generation they have: the previous one (as nixos-rebuild
--rollback), generation <n> (--to), or what a recorded run found on each host it changed
(--run). The deploy's own steps run around the switch: the deploy lock, preflight of the
targets, the magic-rollback watchdog, activation as root (sudo -n), health checks,
confirmation over a new connection, a rollback of the rollback when it fails, the report
and the history. Nothing is evaluated or built.

Usage: npx tsx scripts/rollback.ts <host|@tag|glob\u2026> [--to <n>] [options]   (just nix rollback opi03)
       npx tsx scripts/rollback.ts --run <id> [options]        (every host run <id> changed)

Options:
  --inventory <path>   inventory file (default ./hosts.json)
${SELECTION_HELP}
                       (with --run: only those of the run's hosts)
  --to <n>             go to system generation <n> (see: just nix generations)
  --run <id>           revert every host run <id> changed (a unique prefix of its id, or
                       "latest"; its report in --report-dir) to the system it ran before
  --goal <goal>        switch | boot | test (default switch)
  --reboot             with --goal boot: reboot each host into the chosen generation, wait
                       for it to come back, check it booted it, run the health checks
  --concurrency <n>    hosts switched at once (default ${DEFAULT_CONCURRENCY})
  --rolling            in waves (--batch-size, default 1) with health checks between them
  --batch-size <n>     hosts per wave with --rolling (default 1)
  --keep-going         with --rolling: go on after a failed wave, fail at the end
  --confirm-timeout <s>  magic rollback: a host reverts unless confirmed within this many
                       seconds after its activation (default as for deploy)
  --no-magic-rollback  do not arm the watchdog on the targets
  --no-rollback        leave a host whose switch or health checks failed as it is
  --force-unlock       remove the deploy lock of a dead run first
  --dry-run            print every step with the exact commands; run nothing
  --diff               with --dry-run: also show what each switch would change
  --no-diff            skip the closure diff each host otherwise gets
  --interactive        show each host's closure diff and ask before switching it
  -y, --yes            do not ask before switching more than one host back
  --json               machine-readable result on stdout
  --report-dir <dir>   where run reports go and --run looks (default .deploy/runs)
  -h, --help           this help

Exit codes: 0 rolled back, 1 a stage failed, 2 usage or inventory error, 130 interrupted.`;
}
function parseCliArgs(command, argv) {
  const { values, positionals } = parseStrict(argv, {
    inventory: { type: "string", default: "hosts.json" },
    flake: { type: "string" },
    goal: { type: "string", default: "switch" },
    seed: { type: "string" },
    concurrency: { type: "string" },
    canary: { type: "string", multiple: true, default: [] },
    tag: { type: "string", multiple: true, default: [] },
    ...SELECTION_OPTIONS,
    rolling: { type: "boolean", default: false },
    "batch-size": { type: "string" },
    "keep-going": { type: "boolean", default: false },
    "confirm-timeout": { type: "string" },
    "no-magic-rollback": { type: "boolean", default: false },
    "no-rollback": { type: "boolean", default: false },
    "force-unlock": { type: "boolean", default: false },
    "allow-unsigned": { type: "boolean", default: false },
    "dry-run": { type: "boolean", default: false },
    yes: { type: "boolean", short: "y", default: false },
    json: { type: "boolean", default: false },
    "report-dir": { type: "string", default: ".deploy/runs" },
    help: { type: "boolean", short: "h", default: false },
    to: { type: "string" },
    run: { type: "string" },
    diff: { type: "boolean", default: false },
    "no-diff": { type: "boolean", default: false },
    interactive: { type: "boolean", default: false },
    reboot: { type: "boolean", default: false }
  });
  if (values.diff && values["no-diff"]) throw new UsageError("--diff and --no-diff: give one");
  if (values.diff && !values["dry-run"]) throw new UsageError("--diff goes with --dry-run (a deploy shows each host's closure diff anyway; --no-diff skips it)");
  if (values.interactive && (values["dry-run"] || values["no-diff"] || values.json)) {
    throw new UsageError("--interactive shows each host's closure diff and asks on the terminal: not with --dry-run, --no-diff or --json");
  }
  const help = values.help ?? false;
  const rollbackTo = command === "rollback" && !help ? rollbackRequest(values, positionals) : void 0;
  if (command !== "rollback") {
    for (const flag of ["to", "run"]) if (values[flag] !== void 0) throw new UsageError(`--${flag} belongs to rollback`);
  } else {
    if ((values.canary ?? []).length) throw new UsageError("--canary belongs to deploy and deploy-all (a rollback goes in one wave, or --rolling)");
    for (const flag of ["flake", "seed", "allow-unsigned", "tag"]) {
      const value = values[flag];
      if (value !== void 0 && value !== false && !(Array.isArray(value) && value.length === 0)) throw new UsageError(`--${flag}: a rollback builds nothing (it switches to a generation the host has)`);
    }
  }
  if (!help) {
    if (command === "deploy" && positionals.length === 0 && (values.on ?? []).length === 0) {
      throw new UsageError("name at least one host, e.g. opi03, @k3s or --on 'opi0*' (or use deploy-all)");
    }
    if (command === "deploy-all" && positionals.length > 0) {
      throw new UsageError(`deploy-all takes no host names (got ${positionals.join(" ")}); use --on, or deploy.ts <host\u2026>`);
    }
    if (command === "deploy" && (values.tag ?? []).length > 0) throw new UsageError("--tag belongs to deploy-all");
  }
  const goal = values.goal ?? "switch";
  if (goal === "build") refuseWithBuild(command, values);
  if (goal === "build" && (values.canary ?? []).length) throw new UsageError("--goal build deploys nothing: --canary does not apply");
  const goals = command === "rollback" ? ROLLBACK_GOALS : DEPLOY_GOALS;
  if (!goals.includes(goal)) throw new UsageError(`--goal must be one of ${goals.join(", ")} (got '${goal}')`);
  if (values.reboot && goal !== "boot") {
    throw new UsageError(`--reboot goes with --goal boot (got ${goal}): boot sets the new generation as the boot default, which the reboot then starts; switch and test activate it without one`);
  }
  const concurrency = positiveInteger("--concurrency", values.concurrency);
  const batchSize = positiveInteger("--batch-size", values["batch-size"]);
  const confirmTimeoutSeconds = positiveInteger("--confirm-timeout", values["confirm-timeout"]);
  if (batchSize !== void 0 && !values.rolling) throw new UsageError("--batch-size goes with --rolling");
  if (values["keep-going"] && !values.rolling) throw new UsageError("--keep-going goes with --rolling");
  return {
    command,
    selector: selectorFrom(values, [...positionals, ...(values.tag ?? []).map((tag2) => tag2.startsWith("@") ? tag2 : `@${tag2}`)]),
    inventory: values.inventory ?? "hosts.json",
    flake: values.flake,
    goal,
    seed: values.seed,
    concurrency,
    rolling: values.rolling ?? false,
    batchSize,
    canaries: values.canary ?? [],
    keepGoing: values["keep-going"] ?? false,
    magicRollback: !(values["no-magic-rollback"] ?? false),
    rollback: !(values["no-rollback"] ?? false),
    confirmTimeoutSeconds,
    forceUnlock: values["force-unlock"] ?? false,
    allowUnsigned: values["allow-unsigned"] ?? false,
    dryRun: values["dry-run"] ?? false,
    yes: values.yes ?? false,
    diff: !(values["no-diff"] ?? false),
    dryRunDiff: values.diff ?? false,
    interactive: values.interactive ?? false,
    reboot: values.reboot ?? false,
    json: values.json ?? false,
    reportDir: values["report-dir"] ?? ".deploy/runs",
    help,
    rollbackTo
  };
}
function deployStageChoices(options) {
  const choices = {
    concurrency: options.concurrency,
    rolling: options.rolling,
    batchSize: options.batchSize,
    keepGoing: options.keepGoing,
    magicRollback: options.magicRollback,
    rollback: options.rollback,
    confirmTimeoutSeconds: options.confirmTimeoutSeconds,
    diff: options.diff,
    interactive: options.interactive,
    reboot: options.reboot,
    // --dry-run --diff: build and compare, activate nothing.
    diffOnly: options.dryRun && options.dryRunDiff
  };
  return choices;
}
var DEPLOY_ONLY_FLAGS = [
  "concurrency",
  "rolling",
  "batch-size",
  "keep-going",
  "confirm-timeout",
  "no-magic-rollback",
  "no-rollback",
  "force-unlock",
  "diff",
  "no-diff",
  "interactive"
];
function refuseWithBuild(command, values) {
  if (command === "rollback") throw new UsageError("--goal build: a rollback builds nothing (it switches to a generation the host has); use deploy --goal build");
  const given = DEPLOY_ONLY_FLAGS.filter((flag) => values[flag] !== void 0 && values[flag] !== false);
  if (given.length) throw new UsageError(`--goal build deploys nothing and takes no deploy lock: ${given.map((f) => `--${f}`).join(", ")} ${given.length > 1 ? "do" : "does"} not apply`);
}
var ROLLBACK_GOALS = ["switch", "boot", "test"];
function rollbackRequest(values, positionals) {
  if (values.to !== void 0 && values.run !== void 0) throw new UsageError("--to and --run: give one (--run goes back to what that run found on each host)");
  if (values.run !== void 0) {
    if (!/^[A-Za-z0-9:._-]+$/.test(values.run)) throw new UsageError(`--run '${values.run}': a run id (or a unique prefix of one, or "latest")`);
    return { kind: "run", id: values.run };
  }
  if (!values.help && positionals.length === 0 && (values.on ?? []).length === 0) {
    throw new UsageError("name the hosts to roll back, e.g. opi03, @k3s or --on 'opi0*' (or --run <id> for a whole run)");
  }
  if (values.to === void 0) return { kind: "previous" };
  const number = /^\d+$/.test(values.to) ? Number(values.to) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 1) throw new UsageError(`--to must be a generation number \u2265 1 (got '${values.to}')`);
  return { kind: "generation", number };
}
function positiveInteger(flag, value) {
  if (value === void 0) return void 0;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number \u2265 1 (got '${value}')`);
  return n;
}

// lib/cli/colour.ts
import { Chalk as Chalk2 } from "chalk";
function colourLevel(env, isTTY) {
  if (env.NO_COLOR !== void 0 && env.NO_COLOR !== "") return 0;
  const force = env.FORCE_COLOR;
  if (force !== void 0 && force !== "") {
    if (force === "0" || force === "false") return 0;
    if (force === "2" || force === "3") return Number(force);
    return 1;
  }
  if (!isTTY || env.TERM === "dumb") return 0;
  if (env.COLORTERM === "truecolor" || env.COLORTERM === "24bit") return 3;
  return /256/.test(env.TERM ?? "") ? 2 : 1;
}
var instances = /* @__PURE__ */ new Map();
function colours(output2) {
  const level = colourLevel(output2.env, output2.isTTY);
  let instance = instances.get(level);
  if (!instance) {
    instance = new Chalk2({ level });
    instances.set(level, instance);
  }
  return instance;
}

// lib/cli/io.ts
import { z as z10 } from "zod";
import { setMaxListeners } from "node:events";
import { createInterface } from "node:readline/promises";
var processIo = {
  stdout: (text) => process.stdout.write(`${text}
`),
  stderr: (text) => process.stderr.write(`${text}
`),
  isTTY: Boolean(process.stdout.isTTY),
  env: process.env,
  ask: process.stdin.isTTY && process.stderr.isTTY ? askOnTerminal : void 0
};
async function askOnTerminal(question) {
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await terminal.question(`${question} [y/N] `)).trim());
  } catch (error) {
    if (error.name === "AbortError") return false;
    throw error;
  } finally {
    terminal.close();
  }
}
var RELAYED_SIGNAL_MS = 1e3;
async function interruptible(io, options, work) {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const release = interruptOnSignals(controller, io, options);
  try {
    return await work(controller.signal);
  } finally {
    release();
  }
}
function interruptOnSignals(controller, io, options = {}) {
  const chalk = colours(io);
  const now = options.now ?? Date.now;
  const stopping = options.stopping ?? "stopping running commands, starting no new host";
  let firstAt;
  const onSignal = (signal) => {
    if (firstAt !== void 0) {
      if (signal !== "SIGHUP" && now() - firstAt >= RELAYED_SIGNAL_MS) process.exit(ExitCode.interrupted);
      return;
    }
    firstAt = now();
    io.stderr(chalk.yellow(`
${signal}: ${stopping} (Ctrl-C again to quit at once)`));
    controller.abort();
  };
  const keepOutputErrors = ignoreClosedOutput();
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
    keepOutputErrors();
  };
}
function ignoreClosedOutput() {
  const onStreamError = (error) => {
    if (!isTerminalGone(error)) throw error;
  };
  for (const stream of [process.stdout, process.stderr]) stream.on("error", onStreamError);
  process.on("uncaughtException", dropTerminalWriteError);
  return () => {
    for (const stream of [process.stdout, process.stderr]) stream.off("error", onStreamError);
    process.off("uncaughtException", dropTerminalWriteError);
  };
}
function isTerminalGone(error) {
  const { code, syscall } = error;
  return syscall === "write" && (code === "EIO" || code === "EPIPE");
}
function dropTerminalWriteError(error) {
  if (isTerminalGone(error)) return;
  process.stderr.write(`${error.stack ?? String(error)}
`);
  process.exit(ExitCode.stageFailed);
}
function wantsJson(argv) {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) => arg === "--json" || arg.startsWith("--json="));
}
function failure2(error, json, io, text = reportError) {
  if (json) io.stdout(JSON.stringify(errorOutputSchema.parse({ outcome: "error", exitCode: exitCodeOf(error), error: errorFields(error) }), null, 2));
  else text(error, io);
  return exitCodeOf(error);
}
var errorSchema = z10.object({ type: z10.string(), message: z10.string(), hints: z10.array(z10.string()).readonly() });
var errorOutputSchema = z10.object({ outcome: z10.literal("error"), exitCode: z10.number().int().min(0).max(255), error: errorSchema }).meta({ title: "avalanche-deploy --json: an error", description: "What deploy.ts, deploy-all.ts and doctor.ts print on stdout under --json when an error ends the command; exitCode is the exit status." });
function exitCodeOf(error) {
  return isKnownError(error) ? error.exitCode : ExitCode.stageFailed;
}
function errorJson(error) {
  return error ? { error: errorFields(error) } : {};
}
function errorFields(error) {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error), hints: [] };
  return { type: error.name, message: error.message, hints: error instanceof StageError ? error.hints : [] };
}
function reportError(error, io, shown) {
  const chalk = colours(io);
  if (error instanceof InterruptedError) {
    io.stderr(chalk.yellow("interrupted: hosts not yet started were left untouched (see the table above)"));
    return;
  }
  if (!isKnownError(error)) {
    io.stderr(chalk.red(`internal error (a bug in avalanche-deploy): ${error?.stack ?? String(error)}`));
    return;
  }
  io.stderr(chalk.red(`error: ${shown ?? error.message}`));
  if (error instanceof StageError) for (const hint of error.hints) io.stderr(chalk.yellow(`  hint: ${hint}`));
  if (error instanceof UsageError) io.stderr(chalk.dim("  (--help for usage)"));
}

// lib/plan/rollback.ts
import { userInfo as userInfo5 } from "node:os";
function planRollback(inventory, hosts, options) {
  const goal = options.goal ?? "switch";
  const shortMs = shortCommandTimeoutMs(inventory);
  const here = options.thisMachine !== void 0 && hosts.includes(options.thisMachine) ? options.thisMachine : void 0;
  const targets = planTargets(inventory, hosts, options.reuseConnections ?? true, here === void 0 ? void 0 : { name: here, user: options.localUser ?? userInfo5().username });
  const coordinator = coordinatorPlace(inventory, options.onCoordinator);
  const rolling = options.rolling ?? false;
  const batchSize = Math.max(1, options.batchSize ?? 1);
  const waves = planWaves(hosts, { last: [inventory.coordinator.name, ...here === void 0 ? [] : [here]], rolling, batchSize });
  return {
    operation: "rollback",
    goal,
    stages: [...OPERATION_STAGES.rollback],
    hosts: [...hosts],
    coordinator: { name: inventory.coordinator.name, place: coordinator },
    lock: planLock(inventory, coordinator),
    preflight: { targets: planTargetChecks(hosts, targets, shortMs) },
    resolve: {
      hosts: Object.fromEntries(
        hosts.map((host2) => [host2, { list: { argv: generationsArgv(targets[host2], inventory.paths), timeoutMs: shortMs }, to: options.to(host2) }])
      )
    },
    waves,
    deploy: planDeployStage(inventory, hosts, targets, {
      ...options,
      goal,
      concurrency: rolling ? batchSize : concurrencyFor(Math.max(...waves.map((w) => w.length)), options.concurrency),
      activate: (host2, target) => ({
        argv: remoteArgv(target, ["sh", "-c", SWITCH_TO_GENERATION, "avalanche-switch", inventory.paths.profile, PLACEHOLDER.generation(host2), PLACEHOLDER.toplevel(host2), goal], { asRoot: true }),
        timeoutMs: inventory.timeouts.deployMinutes * 6e4
      })
    })
  };
}

// lib/report/load.ts
import { readdir as readdir2, readFile as readFile4, stat as stat2 } from "node:fs/promises";
import { join as join4, resolve } from "node:path";
import { z as z11 } from "zod";
var ReportNotFoundError = class extends Error {
  name = "ReportNotFoundError";
};
var storedReportSchema = runReportSchema.extend({ verdict: z11.object({ baselineMinutes: z11.number() }).optional() });
async function listRunIds(reportDir) {
  let names;
  try {
    names = await readdir2(reportDir);
  } catch (error) {
    const code = error.code;
    if (code === "ENOENT") return [];
    throw new ReportNotFoundError(`cannot read ${reportDir}: ${code ?? String(error)}`);
  }
  return names.filter((name) => name.endsWith(".json")).map((name) => name.slice(0, -".json".length)).sort();
}
async function loadRun(reportDir, id) {
  const ids = await listRunIds(reportDir);
  if (ids.length === 0) {
    const missing = await stat2(reportDir).then(() => false, () => true);
    throw new ReportNotFoundError(missing ? `no run reports: ${resolve(reportDir)} does not exist` : `no run reports in ${reportDir} yet (a deploy writes one per run)`);
  }
  const resolved = id === void 0 ? ids.at(-1) : resolveId(ids, id, reportDir);
  const path = join4(reportDir, `${resolved}.json`);
  let json;
  try {
    json = JSON.parse(await readFile4(path, "utf8"));
  } catch (error) {
    throw new ReportNotFoundError(`cannot read ${path}: ${error.message}`);
  }
  const parsed = storedReportSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ReportNotFoundError(`${path} is not a run report: ${formatPath(issue.path)}: ${issue.message}`);
  }
  const report = parsed.data;
  const { verdict, ...rest } = report;
  return verdict ? { ...rest, verdict: compareWithBaseline(report.totalMs, verdict.baselineMinutes) } : rest;
}
function resolveId(ids, id, reportDir) {
  if (ids.includes(id)) return id;
  const matches = ids.filter((candidate) => candidate.startsWith(id));
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) throw new ReportNotFoundError(`run id '${id}' is ambiguous: ${matches.join(", ")}`);
  throw new ReportNotFoundError(`no run '${id}' in ${reportDir}; latest: ${ids.slice(-3).reverse().join(", ")}`);
}

// lib/cli/rollback.ts
async function makeRollbackPlan(options, inventory, onCoordinator) {
  const request = options.rollbackTo ?? { kind: "previous" };
  const paced = (hosts) => ({
    goal: options.goal === "dry-activate" || options.goal === "build" ? void 0 : options.goal,
    onCoordinator,
    thisMachine: thisMachine(inventory)?.name,
    ...deployStageChoices(options)
  });
  if (request.kind !== "run") {
    const hosts = resolveSelection(inventory, options.selector);
    const to = request.kind === "generation" ? { kind: "generation", number: request.number } : { kind: "previous" };
    return planRollback(inventory, hosts, { ...paced(hosts), to: () => to });
  }
  let run;
  try {
    run = request.id === "latest" ? await latestChangingRun(options.reportDir) : await loadRun(options.reportDir, request.id);
  } catch (error) {
    throw new UsageError(`--run ${request.id}: ${error.message}`);
  }
  const explicit = options.selector.on.length > 0 || options.selector.exclude.length > 0;
  const selected = explicit ? new Set(resolveSelection(inventory, options.selector)) : void 0;
  const previous = revertible(run, (host2) => selected?.has(host2) ?? true);
  const unknown = Object.keys(previous).filter((host2) => !Object.hasOwn(inventory.hosts, host2));
  if (unknown.length) throw new UsageError(`--run ${run.id} changed ${unknown.join(", ")}, which ${options.inventory} does not have; --on the hosts to revert`);
  return planRollback(inventory, Object.keys(previous), { ...paced(Object.keys(previous)), to: (host2) => ({ kind: "toplevel", toplevel: previous[host2], run: run.id }) });
}
async function latestChangingRun(reportDir) {
  const ids = await listRunIds(reportDir);
  for (const id of ids.reverse()) {
    const run = await loadRun(reportDir, id).catch(() => void 0);
    if (run?.hosts.some(changedByRun)) return run;
  }
  const latest = await loadRun(reportDir);
  throw new Error(`no run in ${reportDir} changed a host (the latest, ${latest.id}, changed none)`);
}
function revertible(run, selected = () => true) {
  const changed = run.hosts.filter(changedByRun);
  if (changed.length === 0) throw new UsageError(`run ${run.id} changed no host (${run.hosts.map((h) => `${h.name}: ${h.state}`).join(", ")}): nothing to revert`);
  const chosen = changed.filter((h) => selected(h.name));
  if (chosen.length === 0) throw new UsageError(`--run ${run.id}: none of the hosts it changed (${changed.map((h) => h.name).join(", ")}) is selected`);
  const unrecorded = chosen.filter((h) => !h.previousToplevel);
  if (unrecorded.length) {
    const why = unrecorded.map((h) => `${h.name} (${h.firstDeploy ? "a first deploy: it had no system before" : "the report does not record what it ran before"})`).join(", ");
    throw new UsageError(`run ${run.id}: no system to go back to for ${why}; --exclude them, or roll them back by generation (--to)`);
  }
  return Object.fromEntries(chosen.map((h) => [h.name, h.previousToplevel]));
}
function changedByRun(host2) {
  if (host2.state === "deployed") return host2.effect !== "unchanged" && host2.effect !== "checked" && host2.generation !== "previous";
  return (host2.state === "failed" || host2.state === "interrupted") && host2.generation !== "previous";
}

// lib/cli/schemas.ts
import { z as z19 } from "zod";

// lib/doctor/render.ts
import { z as z12 } from "zod";
var STATUSES = ["pass", "warn", "fail", "skip"];
var lines = z12.array(z12.string()).readonly();
var count = z12.number().int().min(0);
var checkResultSchema = z12.object({
  id: z12.string(),
  title: z12.string(),
  status: z12.enum(STATUSES),
  summary: z12.string(),
  tried: lines,
  details: lines.default([]),
  hints: lines.default([])
});
var doctorOutputSchema = z12.object({
  outcome: z12.enum(["healthy", "problems"]),
  exitCode: z12.number().int().min(0).max(255),
  counts: z12.object({ pass: count, warn: count, fail: count, skip: count }),
  checks: z12.array(checkResultSchema)
}).meta({ title: "avalanche-deploy doctor --json", description: 'Every check in a fixed order; outcome "problems" (exit 1) when one failed, warnings allowed.' });

// lib/cli/exec.ts
import { z as z15 } from "zod";

// lib/ops/exec.ts
import pLimit3 from "p-limit";
import { z as z14 } from "zod";

// lib/plan/exec.ts
import { z as z13 } from "zod";
var execHostPlanSchema = z13.object({
  name: z13.string(),
  target: remoteHostSchema,
  /** the ssh command line: the remote command is one string of quoted words, so each argv word arrives as one argument */
  command: plannedCommandSchema
});
var execPlanSchema = z13.object({
  /** what the operator asked to run, word for word */
  argv: z13.array(z13.string()).min(1),
  /** run it as root (`sudo -n --` for a non-root deploy user) */
  sudo: z13.boolean(),
  /** hosts that run it at once */
  concurrency: z13.number().int().positive(),
  /** the bound on each host, in seconds (coreutils `timeout` there) */
  timeoutSeconds: z13.number().int().positive(),
  /** in inventory order */
  hosts: z13.array(execHostPlanSchema)
});

// lib/ops/exec.ts
var EXEC_HOST_OUTCOMES = ["succeeded", "failed", "unreachable", "timed-out", "interrupted"];
var execHostResultSchema = z14.object({
  host: z14.string(),
  outcome: z14.enum(EXEC_HOST_OUTCOMES),
  /** the remote command's exit status as ssh returns it (255: see outcome); null when a signal ended ssh or it never started */
  exitCode: z14.number().int().nullable(),
  stdout: z14.string(),
  stderr: z14.string(),
  /** from starting ssh to its end, in ms (0 when it never started) */
  durationMs: z14.number(),
  /** false when Ctrl-C came before this host's turn */
  started: z14.boolean()
});

// lib/cli/exec.ts
var EXEC_OPTIONS = {
  ...SELECTION_OPTIONS,
  sudo: { type: "boolean", default: false },
  concurrency: { type: "string" },
  timeout: { type: "string" },
  "dry-run": { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  inventory: { type: "string", default: "hosts.json" },
  help: { type: "boolean", short: "h", default: false }
};
var execDryRunSchema = z15.object({ dryRun: z15.literal(true), plan: execPlanSchema });
var execResultSchema = z15.object({
  /** failed: a host did not succeed; interrupted: Ctrl-C */
  outcome: z15.enum(["succeeded", "failed", "interrupted"]),
  /** the command's exit status: 0, 1 or 130 */
  exitCode: z15.number().int().min(0).max(255),
  argv: z15.array(z15.string()),
  sudo: z15.boolean(),
  /** from the first ssh started to the last ended, in ms */
  durationMs: z15.number(),
  /** in inventory order */
  hosts: z15.array(execHostResultSchema)
});
var execOutputSchema = z15.union([execDryRunSchema, execResultSchema]).meta({
  title: "avalanche-deploy exec --json",
  description: "What exec.ts prints on stdout under --json: { dryRun: true, plan } with --dry-run, else each host's exit status and output; errors before a run are schemas/error.schema.json."
});

// lib/cli/generations.ts
import { z as z18 } from "zod";

// lib/ops/generations.ts
import pLimit4 from "p-limit";
import { z as z16 } from "zod";
var generationsFailureSchema = z16.object({
  /** the command, copy-pasteable (lib/exec/describe.ts commandLine) */
  command: z16.string(),
  /** ssh's exit status (255: it could not connect or log in); null when it timed out or a signal ended it */
  exitCode: z16.number().int().nullable(),
  /** how it ended, in words: `ssh exited with 255`, `ssh timed out after 30 s`, or why its output could not be read */
  status: z16.string(),
  /** the last lines of its output (stderr, then stdout) */
  outputTail: z16.array(z16.string())
});
var hostGenerationsResultSchema = z16.discriminatedUnion("ok", [
  z16.object({ host: z16.string(), ok: z16.literal(true) }).extend(hostGenerationsSchema.shape),
  z16.object({ host: z16.string(), ok: z16.literal(false), error: generationsFailureSchema })
]);

// lib/plan/generations.ts
import { z as z17 } from "zod";
var generationsPlanSchema = z17.object({
  /** the selected hosts, in inventory order */
  hosts: z17.array(
    z17.object({
      name: z17.string(),
      /** the host as its deploy user: listing needs no root */
      target: remoteHostSchema,
      /** prints the generation listing (lib/remote/generations.ts LIST_GENERATIONS) */
      command: plannedCommandSchema
    })
  ),
  /** at most this many hosts are asked at once */
  concurrency: z17.number().int().positive()
});

// lib/cli/generations.ts
var generationsOutputSchema = z18.object({ hosts: z18.array(hostGenerationsResultSchema) });
var generationsDryRunSchema = z18.object({ dryRun: z18.literal(true), plan: generationsPlanSchema });
var generationsJsonSchema = z18.union([generationsOutputSchema, generationsDryRunSchema]).meta({
  title: "avalanche-deploy generations --json",
  description: "What generations.ts prints on stdout under --json: each selected host's system generations (or why it did not answer); with --dry-run, the plan instead. Errors before anything runs are schemas/error.schema.json."
});

// lib/cli/schemas.ts
var deployResultSchema = z19.object({
  outcome: runOutcomeSchema,
  /** the command's exit status: 0 deployed, 1 a stage failed, 130 interrupted */
  exitCode: z19.number().int().min(0).max(255),
  /** the run report's file; absent when none was written */
  reportPath: z19.string().optional(),
  /** why the run did not succeed */
  error: errorSchema.optional(),
  /** the run report, as stored at reportPath */
  report: runReportSchema
}).meta({
  title: "avalanche-deploy --json: a run",
  description: "What deploy.ts and deploy-all.ts print on stdout under --json after a run; errors before a run are schemas/error.schema.json."
});
function deployResultJson(result, exitCode) {
  const answer = { outcome: result.outcome, exitCode, reportPath: result.reportPath, ...errorJson(result.error), report: result.report };
  return JSON.stringify(deployResultSchema.parse(answer), null, 2);
}
var output = (schema) => () => z19.toJSONSchema(schema, { io: "output" });
var JSON_SCHEMAS = [
  { path: "inventory.schema.json", schema: inventoryJsonSchema },
  { path: "schemas/dry-run.schema.json", schema: output(dryRunOutputSchema) },
  { path: "schemas/deploy-result.schema.json", schema: output(deployResultSchema) },
  { path: "schemas/error.schema.json", schema: output(errorOutputSchema) },
  { path: "schemas/doctor.schema.json", schema: output(doctorOutputSchema) },
  { path: "schemas/generations.schema.json", schema: output(generationsJsonSchema) },
  { path: "schemas/exec.schema.json", schema: output(execOutputSchema) }
];

// lib/cli/deploy.ts
var ALLOW_UNSIGNED_WARNING = "WARNING: --allow-unsigned: waiting for the cache accepts narinfos that are unsigned or signed by another key than cache.publicKey. Targets that check signatures will not substitute those paths and get them copied over SSH instead.";
async function runDeployCli(command, argv, io = processIo) {
  let json = wantsJson(argv);
  try {
    const options = parseCliArgs(command, argv);
    json = options.json;
    if (options.help) {
      io.stdout(usage(command));
      return ExitCode.ok;
    }
    const executor = new ZxExecutor();
    const plan = options.command === "rollback" ? await makeRollback(options) : await makePlan(options, executor);
    if (options.dryRun && !options.dryRunDiff) {
      io.stdout(json ? dryRunJson(plan) : renderPlan(plan));
      return ExitCode.ok;
    }
    if (options.dryRunDiff) return await dryRunWithDiff(plan, options, executor, io, `${command} ${argv.join(" ")}`);
    if (options.interactive && (!io.ask || io.env.CI)) {
      throw new UsageError("--interactive asks on the terminal: stdin and stderr must be one, and CI unset");
    }
    if (!await confirmed(command, plan, options, io)) {
      io.stderr("not deployed: not confirmed (--yes skips the question)");
      return ExitCode.stageFailed;
    }
    const history = await readyToRun(options, io);
    const result = await runWithSignals(plan, options, executor, history, io, `${command} ${argv.join(" ")}`);
    return printResult(result, json, recentMedians(history, plan), io);
  } catch (error) {
    return failure2(error, json, io);
  }
}
async function dryRunWithDiff(plan, options, executor, io, commandLine2) {
  if (!options.json) io.stdout(`${renderPlan(plan)}

--diff: building and comparing; nothing is activated`);
  const result = await runWithSignals(plan, { ...options, reportDir: void 0 }, executor, [], io, commandLine2);
  const exitCode = result.error ? exitCodeOf(result.error) : ExitCode.ok;
  if (options.json) {
    const diffs = Object.fromEntries(result.report.hosts.flatMap((h) => h.diff ? [[h.name, h.diff]] : []));
    if (result.error) return failure2(result.error, true, io);
    io.stdout(dryRunJson(plan, diffs));
    return exitCode;
  }
  const changes = closureDiffText(result.report);
  io.stdout(`
${changes.length ? changes.join("\n") : "no closure diff was made"}`);
  for (const host2 of result.report.hosts) if (!host2.diff && host2.note) io.stdout(`  ${host2.name}: ${host2.note}`);
  if (result.error) reportError(result.error, io, shownFailure(result.report));
  return exitCode;
}
function askBeforeActivating(io, goal) {
  let turn = Promise.resolve();
  return (host2, diff, why) => {
    const answer = turn.then(async () => {
      io.stderr(diff ? hostClosureDiffText(host2, diff).join("\n") : `  ${host2}: no closure diff (${why ?? "unknown"})`);
      return await io.ask?.(`Activate ${host2} (${goal})?`) ?? false;
    });
    turn = answer.catch(() => void 0);
    return answer;
  };
}
async function makeRollback(options) {
  const inventory = await loadInventory(options.inventory);
  return makeRollbackPlan(options, inventory, isOnCoordinator(inventory, hostname3()));
}
async function makePlan(options, executor) {
  if (options.flake !== void 0 && !flakeRef.safeParse(options.flake).success) {
    throw new UsageError(`--flake '${options.flake}': must be a flake reference without "#", spaces or shell characters`);
  }
  const inventory = await loadInventory(options.inventory);
  const hosts = resolveSelection(inventory, options.selector);
  const probeMs = inventory.timeouts.connectSeconds * 1e3;
  const [rebuildTool, localNix] = await Promise.all([
    // A build runs no nixos-rebuild: nothing to probe.
    options.goal === "build" ? void 0 : probeRebuildTool(executor, inventory.nixosRebuild.command, probeMs),
    // The seed build's installables are spelt for this Nix.
    probeNixVersion(executor, probeMs)
  ]);
  const onCoordinator = isOnCoordinator(inventory, hostname3());
  return planDeploy(inventory, hosts, {
    goal: options.goal,
    flake: options.flake,
    seed: options.seed,
    canaries: options.canaries,
    ...deployStageChoices(options),
    onCoordinator,
    thisMachine: thisMachine(inventory)?.name,
    allowUnsigned: options.allowUnsigned,
    rebuildTool,
    localNix,
    localSystem: localNixSystem()
  });
}
async function confirmed(command, plan, options, io) {
  if (options.yes || options.json || io.env.CI || !io.ask || plan.hosts.length <= 1 || plan.goal === "build") return true;
  const { goal, hosts, deploy } = plan;
  if (plan.operation === "rollback") {
    const how2 = deploy.rolling ? `rolling in waves of ${deploy.concurrency}` : `at most ${deploy.concurrency} at a time`;
    return io.ask(`${command}: switch ${hosts.length} hosts back (${goal}: ${hosts.join(", ")}), ${how2}. Roll back?`);
  }
  const canaries = deploy.canaries.length ? `${deploy.canaries.join(", ")} first, ` : "";
  const how = `${canaries}${deploy.rolling ? `rolling in waves of ${deploy.concurrency}` : `at most ${deploy.concurrency} at a time`}`;
  const reboot = Object.values(deploy.hosts).some((h) => h.reboot) ? " and reboot" : "";
  return io.ask(`${command}: ${goal}${reboot} ${hosts.length} hosts (${hosts.join(", ")}), seed${plan.builds.length > 1 ? "s" : ""} ${plan.builds.map((b) => preferredSeed(b, plan.coordinator.name)).join(", ")}, ${how}. Deploy?`);
}
async function readyToRun(options, io) {
  for (const dir of [options.reportDir, dirname2(historyPathFor(options.reportDir))]) {
    const why = await whyNotWritable(dir);
    if (why) throw new UsageError(`--report-dir ${options.reportDir}: cannot write run reports and history there (${why})`);
  }
  const chalk = colours(io);
  const history = await readHistory(historyPathFor(options.reportDir), (warning) => io.stderr(chalk.yellow(`warning: ${warning}`)));
  if (options.allowUnsigned) io.stderr(chalk.yellow.bold(ALLOW_UNSIGNED_WARNING));
  return history;
}
async function runWithSignals(plan, options, executor, history, io, commandLine2) {
  return interruptible(
    io,
    {},
    (signal) => runPlan(plan, {
      executor,
      signal,
      // The live view would redraw over the --interactive question: plain lines then.
      renderer: options.interactive && !options.json ? "simple" : chooseRenderer(options.json, io),
      confirmActivation: options.interactive ? askBeforeActivating(io, plan.goal) : void 0,
      colours: colours(io),
      reportDir: options.reportDir,
      history,
      lock: { command: commandLine2, forceUnlock: options.forceUnlock },
      notice: (text) => io.stderr(colours(io).yellow(text))
    })
  );
}
function chooseRenderer(json, io) {
  if (json) return "silent";
  return io.isTTY && !io.env.CI ? "default" : "simple";
}
function printResult(result, json, comparison, io) {
  const exitCode = result.error ? exitCodeOf(result.error) : ExitCode.ok;
  if (json) {
    io.stdout(deployResultJson(result, exitCode));
    return exitCode;
  }
  const chalk = colours(io);
  io.stdout(`
${renderReport(result.report, { comparison })}`);
  for (const warning of result.report.warnings ?? []) io.stderr(chalk.yellow.bold(`warning: ${warning}`));
  if (result.error) reportError(result.error, io, shownFailure(result.report));
  if (result.reportPath) io.stdout(chalk.dim(`report: ${result.reportPath}`));
  return exitCode;
}
function shownFailure(report) {
  const stage = report.stages.find((s) => s.outcome === "failed");
  if (!stage) return void 0;
  const named = (states) => report.hosts.filter((h) => states.includes(h.state)).map((h) => h.name);
  const failed = named(["failed", "rolled-back"]);
  const notStarted = stage.name === "deploy" ? named(["not-started"]) : [];
  return [
    `${stage.name.replace(/-/g, " ")} failed${failed.length ? ` on ${failed.join(", ")}` : ""} (shown above)`,
    ...notStarted.length ? [`not started: ${notStarted.join(", ")}`] : []
  ].join("; ");
}
export {
  printResult,
  runDeployCli
};
