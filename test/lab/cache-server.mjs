#!/usr/bin/env node
// cache-server.mjs — the lab's stand-in for Harmonia on hawk.
//
// Serves a `file://` binary cache directory (written by `nix copy --to
// file://…?secret-key=…`, so narinfos are already signed) over HTTP with the
// endpoints Nix substituters use and Harmonia answers, for GET and HEAD:
//   /nix-cache-info, /<32-char hash>.narinfo (404 "missed hash"), /nar/<file>
// plus Harmonia's /version and /health. One line per request goes to the
// access log: "<ISO time> <client ip> <method> <path> <status>", so tests can
// see which host fetched what.
//
// Usage: node cache-server.mjs [--root DIR] [--listen ADDR] [--port N] [--access-log FILE]
// Defaults come from LAB_DIR (default /var/lib/avalanche-lab). Plain Node 20,
// no dependencies.
import { createServer } from "node:http";
import { appendFileSync, createReadStream, promises as fsp } from "node:fs";
import { join } from "node:path";

const labDir = process.env.LAB_DIR || "/var/lib/avalanche-lab";
const opts = {
  root: `${labDir}/cache`,
  listen: "10.213.77.1",
  port: 5000,
  "access-log": `${labDir}/cache-access.log`,
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
const NARINFO = /^\/([0-9a-df-np-sv-z]{32})\.narinfo$/;
// What `nix copy --to file://` writes under nar/: <hash>.nar[.<compression>].
const NAR = /^\/nar\/([0-9a-z]+\.nar(?:\.(?:xz|bz2|zst|br|gz|lz4))?)$/;
const TYPES = {
  narinfo: "text/x-nix-narinfo",
  cacheInfo: "text/x-nix-cache-info",
  nar: "application/x-nix-nar",
  text: "text/plain",
};

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

async function sendFile(req, res, file, type, missBody) {
  let st;
  try {
    st = await fsp.stat(file);
  } catch {
    st = null;
  }
  if (!st || !st.isFile()) return sendText(req, res, 404, "text/plain", missBody);
  res.writeHead(200, { "Content-Type": type, "Content-Length": st.size });
  if (req.method === "HEAD") return res.end();
  const stream = createReadStream(file);
  stream.on("error", () => res.destroy());
  stream.pipe(res);
}

const server = createServer(async (req, res) => {
  res.on("finish", () => logRequest(req, res.statusCode));
  res.on("close", () => { if (!res.writableFinished) logRequest(req, `${res.statusCode}-aborted`); });
  try {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return sendText(req, res, 405, TYPES.text, "method not allowed\n");
    }
    // Match on the raw path (query dropped). The patterns admit no '.', '/',
    // '%' or '\' beyond their fixed parts, so no path can leave the root.
    const path = (req.url || "/").split("?")[0];
    let m;
    if (path === "/nix-cache-info") {
      return await sendFile(req, res, join(opts.root, "nix-cache-info"), TYPES.cacheInfo, "not found\n");
    }
    if ((m = NARINFO.exec(path))) {
      return await sendFile(req, res, join(opts.root, `${m[1]}.narinfo`), TYPES.narinfo, "missed hash");
    }
    if ((m = NAR.exec(path))) {
      return await sendFile(req, res, join(opts.root, "nar", m[1]), TYPES.nar, "missed nar");
    }
    if (path === "/version") return sendText(req, res, 200, TYPES.text, "avalanche-lab-cache 1\n");
    if (path === "/health") return sendText(req, res, 200, TYPES.text, "OK\n");
    if (/\.\.|%2e|%2f|%5c|\\/i.test(path)) return sendText(req, res, 400, TYPES.text, "bad path\n");
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
  console.error(`cache-server: serving ${opts.root} on http://${opts.listen}:${opts.port}`);
});
