// The repository README's TypeScript example runs as written against a real
// server and prints what the README says it prints.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { after, before, test } from "node:test";

import { REPO } from "./paths.js";
import { Server } from "./server.js";

const here = dirname(fileURLToPath(import.meta.url));

function block(readme: string, marker: string): string {
  const found = new RegExp(`<!-- ${marker} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(found, `no block after <!-- ${marker} --> in README.md`);
  return found[1] as string;
}

let server: Server;
before(async () => {
  server = await Server.start();
});
after(async () => {
  await server?.dispose();
});

test("the README's TypeScript SDK example prints what the README says", async () => {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const sdk = pathToFileURL(join(here, "..", "src", "index.js")).href;
  const code = block(readme, "ts-sdk-example").replace('from "@sandcat/sdk"', `from ${JSON.stringify(sdk)}`);
  // Outside build/test/ (node --test would run it as a test file), inside
  // sdk/ts (so `ws` resolves from its node_modules).
  const dir = join(here, "..", "readme");
  mkdirSync(dir, { recursive: true });
  const script = join(dir, "example.mjs");
  writeFileSync(script, code);
  const { stdout } = await promisify(execFile)(process.execPath, [script], {
    env: { ...process.env, SANDCAT_HTTP: server.httpUrl },
    timeout: 60_000,
  });
  assert.equal(stdout, block(readme, "ts-sdk-example-output"));
});
