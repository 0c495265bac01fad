// write-inventory.mjs — print one of the lab's inventories (the orchestrator's
// hosts.json) on stdout. Called by up.sh with everything in the environment;
// JSON.stringify does the quoting. The shape is exact: the orchestrator
// validates it strictly, so add no keys here.
//
// COORDINATOR=hawk    $LAB_DIR/hosts.json: the orchestrator runs on hawk (as avl)
// COORDINATOR=calypso $LAB_DIR/hosts-calypso.json: it runs on calypso (as avl
//                     there), reaching hawk over SSH; key paths are calypso's.
// FLEET=1 (with CALYPSO_ADDR): the fleet variants, hosts-fleet.json and
//                     hosts-fleet-calypso.json: the opis plus calypso as an
//                     x86_64-linux deploy target (no builder entry: it builds
//                     nothing for others); on hawk also hawk itself, deployed
//                     here by a run on hawk (in its namespaces, test/lab/hawk-ns.sh;
//                     over ssh from calypso it would be this machine itself,
//                     so hosts-fleet-calypso.json leaves it out). The lab's
//                     unit check is then per host: hawk has no systemd.
// LAB_KERNEL_SECONDS, LAB_HOST_SECONDS, LAB_ACTIVATION_SECONDS (exported by
// up.sh) make the lab's own baseline: see baselineMinutes below.
const e = process.env;
const lab = e.LAB_DIR;
for (const k of ["LAB_DIR", "COORDINATOR", "SEED", "HAWK_ADDR", "CACHE_URL", "CACHE_PUBLIC_KEY", "GCROOT_DIR", "HOST_RECORDS",
  "LAB_KERNEL_SECONDS", "LAB_HOST_SECONDS", "LAB_ACTIVATION_SECONDS"]) {
  if (!e[k]) {
    console.error(`write-inventory: ${k} is not set`);
    process.exit(2);
  }
}
const fleet = e.FLEET === "1";
if (fleet && !e.CALYPSO_ADDR) {
  console.error("write-inventory: FLEET=1 needs CALYPSO_ADDR");
  process.exit(2);
}
if (!["hawk", "calypso"].includes(e.COORDINATOR)) {
  console.error(`write-inventory: COORDINATOR must be hawk or calypso, got ${e.COORDINATOR}`);
  process.exit(2);
}
const onHawk = e.COORDINATOR === "hawk";
// Where the orchestrator's user keeps the lab keys on its coordinator.
const keys = onHawk
  ? { deploy: `${lab}/ssh/deploy_key`, builder: `${lab}/ssh/builder_key`, knownHosts: `${lab}/ssh/known_hosts` }
  : { deploy: "/home/avl/.ssh/deploy_key", builder: "/home/avl/.ssh/builder_key", knownHosts: "/home/avl/.ssh/known_hosts" };

const hosts = {};
// One "name address hostKeyBase64" line per host, in LAB_HOSTS order.
for (const line of e.HOST_RECORDS.split("\n").filter(Boolean)) {
  const [name, address, hostKey] = line.split(" ");
  hosts[name] = {
    address,
    system: "aarch64-linux",
    deployUser: "deploy",
    sshKey: keys.deploy,
    builder: {
      user: "nix-builder",
      sshKey: keys.builder,
      maxJobs: 6,
      speedFactor: 2,
      supportedFeatures: ["big-parallel"],
      hostKey,
    },
    tags: ["opi", "lab"],
  };
}
if (fleet) {
  // calypso's deploy user, key and health checks are the opis' (up.sh gives it
  // the same deploy user, sudo, substituter and lab-app unit).
  hosts.calypso = {
    address: e.CALYPSO_ADDR,
    system: "x86_64-linux",
    deployUser: "deploy",
    sshKey: keys.deploy,
    tags: ["x86", "coordinator", "lab"],
  };
  for (const name of Object.keys(hosts)) hosts[name].health = { units: ["lab-app.service"] };
  if (onHawk) {
    // hawk's namespaces have no systemd: no system state, no units (health then
    // has only the settle window). Its deploy user is the orchestrator's own.
    hosts.hawk = { address: e.HAWK_ADDR, system: "x86_64-linux", deployUser: "avl", tags: ["x86", "coordinator", "lab"], health: { systemState: "skip" } };
  }
}

// The report compares a run with the one-by-one deploy of `baselineMinutes`.
// The fleet's 120 min is three opis each building the ~40-minute kernel, its
// own system and activating; the lab stands in for those minutes with seconds
// (LAB_KERNEL_SECONDS for the kernel: 40 s for the 40 min at the benchmark's
// 1 min = 1 s), so its baseline is the same deploy in its own seconds:
// hosts × (kernel + toplevel + activation), what the benchmark's sequential
// run measures (README "Benchmark": 3 × (40 + 1 + 1) = 126 s, measured 128 s).
// Compared with the fleet's 120 min, a lab run of seconds would claim a
// speed-up hundreds of times over that no deploy ever had. At least a second
// per host: a lab whose simulated work takes no time still connects, copies
// and activates each host.
const seconds = (name) => {
  const value = Number(e[name]);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`write-inventory: ${name} must be a whole number of seconds, got '${e[name]}'`);
    process.exit(2);
  }
  return value;
};
const perHostSeconds = Math.max(1, seconds("LAB_KERNEL_SECONDS") + seconds("LAB_HOST_SECONDS") + seconds("LAB_ACTIVATION_SECONDS"));
const baselineMinutes = (Object.keys(hosts).length * perHostSeconds) / 60;

const inventory = {
  coordinator: { name: "hawk", system: "x86_64-linux", address: e.HAWK_ADDR, user: "avl", local: onHawk },
  cache: { url: e.CACHE_URL, publicKey: e.CACHE_PUBLIC_KEY, gcRootDir: e.GCROOT_DIR },
  flake: `path:${lab}/flake`,
  attribute: "nixosConfigurations.<host>.config.system.build.toplevel",
  baselineMinutes,
  seed: e.SEED,
  ssh: {
    options: [
      "-o", "ConnectTimeout=5",
      "-o", "ServerAliveInterval=5",
      "-o", "ServerAliveCountMax=2",
      "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=yes",
      "-o", `UserKnownHostsFile=${keys.knownHosts}`,
    ],
  },
  // nixos-rebuild from PATH: the lab puts test/lab/bin/bash-era first on hawk's
  // PATH and test/lab/bin/ng on calypso's (env.sh, as-coordinator.sh).
  nixosRebuild: { command: ["nixos-rebuild"], extraArgs: [] },
  // No deploy.method: the lab runs what users get, the method the preflight probe chooses (direct from
  // hawk, whose bash-era nixos-rebuild has no --store-path; nixos-rebuild --store-path from calypso's ng).
  // test/e2e/faults.test.ts "deploy method" asks for each method explicitly.
  // settleSeconds 1: the lab's units fail at once or after ~3 s (flake.sh); tests of the settle window set their own.
  health: { systemState: "running", units: fleet ? [] : ["lab-app.service"], timeoutSeconds: 5, retries: 1, intervalSeconds: 1, settleSeconds: 1 },
  paths: { lock: `${lab}/hawk/deploy.lock` },
  // --reboot waits for a host as long as up.sh waits for a container's first boot.
  timeouts: { rebootSeconds: Number(e.LAB_BOOT_SECONDS || 90) },
  hosts,
};

process.stdout.write(JSON.stringify(inventory, null, 2) + "\n");
