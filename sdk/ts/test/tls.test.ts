// wss:// and https:// with a private CA, as the README's TLS section says:
// Node started with NODE_EXTRA_CA_CERTS trusts it for both fetch and ws.

import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { after, before, test } from "node:test";

import { Server } from "./server.js";

const here = dirname(fileURLToPath(import.meta.url));
const SDK = pathToFileURL(join(here, "..", "src", "index.js")).href;

// Run in a child process: the CA must be known when Node starts.
const SCRIPT = `
import { Client, HttpClient, directCid } from ${JSON.stringify(SDK)};
import { WebSocket } from "ws";
const base = process.env.SANDCAT_HTTP;
const people = [];
for (const name of ["tess", "theo"]) {
  const http = new HttpClient({ baseUrl: base });
  await http.register({ username: name, password: "correct horse battery staple" });
  const login = await http.login({ login: name, password: "correct horse battery staple", device: name + "-d" });
  const client = new Client({ url: login.ws_url, credentials: http.credentials, device: name + "-d", WebSocket });
  await client.connect();
  people.push({ http, client, id: login.user.id, url: login.ws_url });
}
const [a, b] = people;
const { request } = await a.http.sendFriendRequest({ to: b.id });
await b.http.acceptFriendRequest(request.id);
const got = b.client.next("message");
await a.client.sendText(directCid(a.id, b.id), "over tls");
console.log(a.url.split(":")[0], (await got).body.text);
for (const p of people) await p.client.close();
`;

let server: Server;
let ca: string;
let dir: string;

function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const OPENSSL = hasOpenssl();

before(async () => {
  if (!OPENSSL) return;
  dir = mkdtempSync(join(tmpdir(), "sandcat-ts-tls-"));
  ca = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", ca,
  ], { stdio: "ignore" });
  const config = join(dir, "sandcat.toml");
  writeFileSync(config, `[server]\ntls_cert_file = ${JSON.stringify(ca)}\ntls_key_file = ${JSON.stringify(key)}\n`);
  server = await Server.start({}, join(dir, "data"), [0, 0], ["--config", config]);
});

after(async () => {
  await server?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("https and wss with a private CA (NODE_EXTRA_CA_CERTS)", { skip: OPENSSL ? false : "needs the openssl command" }, async () => {
  const dir = join(here, "..", "tls");
  mkdirSync(dir, { recursive: true });
  const script = join(dir, "chat.mjs");
  writeFileSync(script, SCRIPT);
  const https = `https://127.0.0.1:${server.httpPort}`;
  const { stdout } = await promisify(execFile)(process.execPath, [script], {
    env: { ...process.env, SANDCAT_HTTP: https, NODE_EXTRA_CA_CERTS: ca },
    timeout: 60_000,
  });
  assert.equal(stdout, "wss over tls\n");
  // Without the CA the certificate is refused.
  await assert.rejects(
    promisify(execFile)(process.execPath, [script], { env: { ...process.env, SANDCAT_HTTP: https }, timeout: 60_000 }),
    /fetch failed|certificate/,
  );
});
