#!/usr/bin/env node
// cache-server.mjs — the lab's stand-in for Harmonia on hawk.
//
// Serves hawk's own Nix store, as Harmonia does: no cache directory, nothing
// pushed. For GET and HEAD:
//   /nix-cache-info
//   /<32-char hash>.narinfo  the store path with that hash, looked up in the
//                            store and checked valid through the Nix daemon
//                            (`nix path-info --json`, once while the path stays
//                            in the store); the narinfo is signed on the fly
//                            with the secret key (404 "missed hash")
//   /nar/<32-char hash>.nar  `nix-store --dump` of that path (Compression: none)
//   /version, /health        as Harmonia
// The secret key file is read for every narinfo, so replacing it (the doctor's
// "another key" test) takes effect at once. One line per request goes to the
// access log: "<ISO time> <client ip> <method> <path> <status>", so tests see
// which host fetched what.
//
// Usage: node cache-server.mjs [--listen ADDR] [--port N] [--secret-key FILE]
//          [--access-log FILE] [--store DIR]
// Defaults come from LAB_DIR (default /var/lib/avalanche-lab). Run it with
// NIX_REMOTE=daemon (and the lab's NIX_CONF_DIR). Plain Node 20, no dependencies.
import { createServer } from "node:http";
import { appendFileSync, promises as fsp } from "node:fs";
import { execFile, spawn } from "node:child_process";
import { createPrivateKey, sign } from "node:crypto";

const labDir = process.env.LAB_DIR || "/var/lib/avalanche-lab";
const opts = {
  listen: "10.213.77.1",
  port: 5000,
  "secret-key": `${labDir}/hawk/cache-priv-key.pem`,
  "access-log": `${labDir}/cache-access.log`,
  store: "/nix/store",
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i]?.replace(/^--/, "");
  if (!(key in opts) || argv[i + 1] === undefined) {
    console.error(`cache-server: bad argument ${argv[i]}`);
    process.exit(2);
  }
  opts[key] = key === "port" ? Number(argv[i + 1]) : argv[i + 1];
}

// Nix's base-32 alphabet (no e, o, u, t).
const BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";
const HASH = "[0-9a-df-np-sv-z]{32}";
const NARINFO = new RegExp(`^/(${HASH})\\.narinfo$`);
const NAR = new RegExp(`^/nar/(${HASH})\\.nar$`);
const TYPES = {
  narinfo: "text/x-nix-narinfo",
  cacheInfo: "text/x-nix-cache-info",
  nar: "application/x-nix-nar",
  text: "text/plain",
};
const CACHE_INFO = `StoreDir: ${opts.store}\nWantMassQuery: 1\nPriority: 30\n`;

/** Nix's base-32 encoding (as in `nix hash to-base32`). */
function toNixBase32(bytes) {
  const len = Math.ceil((bytes.length * 8) / 5);
  let out = "";
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    const c = (bytes[i] >> j) | (i + 1 < bytes.length ? bytes[i + 1] << (8 - j) : 0);
    out += BASE32[c & 0x1f];
  }
  return out;
}

/** "sha256:<nix-base32>" from what `nix path-info --json` prints (SRI on Nix 2.8, or already base-32). */
function narHashForNarinfo(hash) {
  const sri = /^sha256-([A-Za-z0-9+/]+=*)$/.exec(hash);
  if (sri) return `sha256:${toNixBase32(Buffer.from(sri[1], "base64"))}`;
  if (/^sha256:[0-9a-df-np-sv-z]{52}$/.test(hash)) return hash;
  throw new Error(`unexpected narHash ${hash}`);
}

/** The secret key (`nix-store --generate-binary-cache-key` format), read fresh every time. */
async function secretKey() {
  const text = (await fsp.readFile(opts["secret-key"], "utf8")).trim();
  const colon = text.indexOf(":");
  const raw = Buffer.from(text.slice(colon + 1), "base64");
  if (colon < 1 || raw.length !== 64) throw new Error(`${opts["secret-key"]} is not a Nix secret key`);
  // The first 32 bytes are the ed25519 seed: wrap it as PKCS#8 for Node.
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), raw.subarray(0, 32)]);
  return { name: text.slice(0, colon), key: createPrivateKey({ key: der, format: "der", type: "pkcs8" }) };
}

// Harmonia answers from the daemon's database in its own process; this stand-in asks `nix path-info` (a
// process) once per store path, then keeps the answer while the path stays in the store: a valid path's
// metadata never changes; one collected (or collected and built again: another inode) is asked about again. Without
// it, a 30-host deploy forked ~130 nix here, ~3 s of the 2 CPUs the whole lab shares.
const known = new Map();

/** The valid store path with this hash in hawk's store, with its metadata; undefined when there is none. */
async function lookup(hash) {
  const remembered = known.get(hash);
  if (remembered) {
    // The same inode as when it was asked: not collected and built again since (maybe with another NAR hash).
    const now = await fsp.lstat(remembered.info.path).catch(() => undefined);
    if (now && now.ino === remembered.ino && now.ctimeMs === remembered.ctimeMs) return remembered.info;
    known.delete(hash);
  }
  let names;
  try {
    names = await fsp.readdir(opts.store);
  } catch {
    return undefined;
  }
  const candidates = names.filter((n) => n.startsWith(`${hash}-`) && !/\.(lock|chroot|check)$/.test(n));
  for (const name of candidates) {
    const path = `${opts.store}/${name}`;
    const before = await fsp.lstat(path).catch(() => undefined);
    const info = await pathInfo(path);
    if (info) {
      if (before) known.set(hash, { info, ino: before.ino, ctimeMs: before.ctimeMs });
      return info;
    }
  }
  return undefined;
}

// The paths asked about within a few ms go to one `nix path-info` (the deploy's wait for the cache asks for
// every toplevel at once): one process, not one each.
let asked;

/** `nix path-info --json` of a store path: its metadata when valid, else undefined. */
function pathInfo(path) {
  return new Promise((resolve) => {
    if (!asked) {
      asked = new Map();
      setTimeout(askNix, 2);
    }
    if (!asked.has(path)) asked.set(path, []);
    asked.get(path).push(resolve);
  });
}

function askNix() {
  const batch = asked;
  asked = undefined;
  const paths = [...batch.keys()];
  // Nix exits non-zero when any path is invalid, and still prints them all.
  execFile("nix", ["--extra-experimental-features", "nix-command", "path-info", "--json", ...paths], { timeout: 20_000, maxBuffer: 64 << 20 }, (_error, stdout) => {
    let byPath = {};
    try {
      const parsed = JSON.parse(stdout);
      // Nix 2.8 prints a list (an invalid path: "valid": false); newer ones an object keyed by path (an invalid one: null).
      byPath = Array.isArray(parsed) ? Object.fromEntries(parsed.filter(Boolean).map((info) => [info.path, info])) : (parsed ?? {});
    } catch {
      // nothing printed (nix failed): every path unknown
    }
    for (const [path, resolvers] of batch) {
      const info = byPath?.[path];
      const valid = info && info.narHash && info.valid !== false ? { ...info, path } : undefined;
      for (const resolve of resolvers) resolve(valid);
    }
  });
}

async function narinfo(info) {
  const storeHash = info.path.slice(opts.store.length + 1, opts.store.length + 33);
  const narHash = narHashForNarinfo(info.narHash);
  const references = [...(info.references ?? [])].sort();
  const base = (p) => p.slice(opts.store.length + 1);
  const { name, key } = await secretKey();
  const fingerprint = `1;${info.path};${narHash};${info.narSize};${references.join(",")}`;
  const sig = sign(null, Buffer.from(fingerprint), key).toString("base64");
  const lines = [
    `StorePath: ${info.path}`,
    `URL: nar/${storeHash}.nar`,
    "Compression: none",
    `NarHash: ${narHash}`,
    `NarSize: ${info.narSize}`,
    `References: ${references.map(base).join(" ")}`,
  ];
  if (info.deriver) lines.push(`Deriver: ${base(info.deriver)}`);
  lines.push(`Sig: ${name}:${sig}`);
  if (info.ca) lines.push(`CA: ${info.ca}`);
  return lines.join("\n") + "\n";
}

function logRequest(req, status) {
  const ip = (req.socket.remoteAddress || "-").replace(/^::ffff:/, "");
  // Paths can carry anything a client sent: keep the log one line per request.
  const path = (req.url || "").replace(/[\s\x00-\x1f]/g, (c) => encodeURIComponent(c));
  try {
    appendFileSync(opts["access-log"], `${new Date().toISOString()} ${ip} ${req.method} ${path} ${status}\n`);
  } catch (err) {
    console.error(`cache-server: cannot write access log: ${err.message}`);
  }
}

function sendText(req, res, status, type, body) {
  const buf = Buffer.from(body);
  res.writeHead(status, { "Content-Type": type, "Content-Length": buf.length });
  res.end(req.method === "HEAD" ? undefined : buf);
}

function sendNar(req, res, info) {
  res.writeHead(200, { "Content-Type": TYPES.nar, "Content-Length": info.narSize });
  if (req.method === "HEAD") return res.end();
  const dump = spawn("nix-store", ["--dump", info.path], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  dump.stderr.on("data", (c) => (stderr += c));
  dump.stdout.pipe(res);
  dump.on("close", (code) => {
    if (code !== 0) {
      console.error(`cache-server: nix-store --dump ${info.path} exited with ${code}: ${stderr.trim()}`);
      res.destroy();
    }
  });
  res.on("close", () => dump.kill());
}

const server = createServer(async (req, res) => {
  res.on("finish", () => logRequest(req, res.statusCode));
  res.on("close", () => { if (!res.writableFinished) logRequest(req, `${res.statusCode}-aborted`); });
  try {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return sendText(req, res, 405, TYPES.text, "method not allowed\n");
    }
    // Match on the raw path (query dropped). The patterns admit nothing but a
    // store hash, so no request can name a path of its own.
    const path = (req.url || "/").split("?")[0];
    let m;
    if (path === "/nix-cache-info") return sendText(req, res, 200, TYPES.cacheInfo, CACHE_INFO);
    if ((m = NARINFO.exec(path))) {
      const info = await lookup(m[1]);
      if (!info) return sendText(req, res, 404, TYPES.text, "missed hash");
      return sendText(req, res, 200, TYPES.narinfo, await narinfo(info));
    }
    if ((m = NAR.exec(path))) {
      const info = await lookup(m[1]);
      if (!info) return sendText(req, res, 404, TYPES.text, "missed nar");
      return sendNar(req, res, info);
    }
    if (path === "/version") return sendText(req, res, 200, TYPES.text, "avalanche-lab-cache 2\n");
    if (path === "/health") return sendText(req, res, 200, TYPES.text, "OK\n");
    return sendText(req, res, 404, TYPES.text, "not found\n");
  } catch (err) {
    console.error(`cache-server: ${req.method} ${req.url}: ${err.stack || err}`);
    if (!res.headersSent) sendText(req, res, 500, TYPES.text, "internal error\n");
    else res.destroy();
  }
});

server.on("error", (err) => {
  console.error(`cache-server: ${err.message}`);
  process.exit(1);
});
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
server.listen(opts.port, opts.listen, () => {
  console.error(`cache-server: serving ${opts.store} on http://${opts.listen}:${opts.port}`);
});
