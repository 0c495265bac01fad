// write-inventory.mjs — print the lab's hosts.json (the orchestrator's
// inventory) on stdout. Called by up.sh with everything in the environment;
// JSON.stringify does the quoting. The shape is exact: the orchestrator
// validates it strictly, so add no keys here.
const e = process.env;
const lab = e.LAB_DIR;
for (const k of ["LAB_DIR", "REPO", "SEED", "HAWK_ADDR", "CACHE_URL", "CACHE_PUBLIC_KEY", "GCROOT_DIR", "HOST_RECORDS"]) {
  if (!e[k]) {
    console.error(`write-inventory: ${k} is not set`);
    process.exit(2);
  }
}

const hosts = {};
// One "name address hostKeyBase64" line per host, in LAB_HOSTS order.
for (const line of e.HOST_RECORDS.split("\n").filter(Boolean)) {
  const [name, address, hostKey] = line.split(" ");
  hosts[name] = {
    address,
    system: "aarch64-linux",
    deployUser: "root",
    sshKey: `${lab}/ssh/deploy_key`,
    builder: {
      user: "root",
      sshKey: `${lab}/ssh/builder_key`,
      maxJobs: 6,
      speedFactor: 2,
      supportedFeatures: ["big-parallel"],
      hostKey,
    },
    tags: ["opi", "lab"],
  };
}

const inventory = {
  coordinator: { name: "hawk", system: "x86_64-linux", address: e.HAWK_ADDR, user: "root", local: true },
  cache: { url: e.CACHE_URL, publicKey: e.CACHE_PUBLIC_KEY, gcRootDir: e.GCROOT_DIR },
  flake: `path:${lab}/flake`,
  attribute: "nixosConfigurations.<host>.config.system.build.toplevel",
  baselineMinutes: 120,
  seed: e.SEED,
  ssh: {
    options: [
      "-o", "ConnectTimeout=5",
      "-o", "ServerAliveInterval=5",
      "-o", "ServerAliveCountMax=2",
      "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=yes",
      "-o", `UserKnownHostsFile=${lab}/ssh/known_hosts`,
    ],
  },
  nixosRebuild: { command: [`${e.REPO}/test/lab/bin/nixos-rebuild`], extraArgs: [], sudoFlag: "--sudo" },
  // No systemd in the lab: the system state check is skipped, and the running
  // system is the lab's stand-in for /run/current-system.
  health: { systemState: "skip", commands: [["test", "-e", "/nix/var/lab/current-system"]], timeoutSeconds: 5, retries: 1, intervalSeconds: 1 },
  paths: {
    currentSystem: "/nix/var/lab/current-system",
    targetState: "/nix/var/lab/avalanche",
    lock: `${lab}/hawk/deploy.lock`,
  },
  hosts,
};

process.stdout.write(JSON.stringify(inventory, null, 2) + "\n");
