// Builds the web client into src/sandcat/web/static/ (shipped inside the Python package).
//
//   npm run build            write the assets
//   npm run check            build into a temporary folder and fail if the shipped ones differ
//   node build.mjs --outdir DIR
//
// The output depends only on the sources and the locked esbuild version: no hashes, no dates.
import * as esbuild from "esbuild";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const shipped = resolve(here, "../src/sandcat/web/static");
const args = process.argv.slice(2);
const check = args.includes("--check");
const at = args.indexOf("--outdir");
const outdir = check ? mkdtempSync(join(tmpdir(), "sandcat-web-")) : at >= 0 ? resolve(args[at + 1]) : shipped;

await esbuild.build({
  entryPoints: { app: join(here, "src/main.ts"), "app.css": join(here, "src/app.css") },
  outdir,
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  // The SDK is used from its TypeScript sources (sdk/ts/src); its one dependency
  // always comes from web/node_modules (web's lock), whether or not sdk/ts has its own.
  alias: {
    "@sandcat/sdk": resolve(here, "../sdk/ts/src/index.ts"),
    "@msgpack/msgpack": join(here, "node_modules/@msgpack/msgpack"),
  },
});
for (const name of ["index.html", "icon.svg", "manifest.webmanifest"]) {
  copyFileSync(join(here, "public", name), join(outdir, name));
}
// esbuild names the CSS entry app.css.css; keep one plain name.
writeFileSync(join(outdir, "app.css"), readFileSync(join(outdir, "app.css.css")));
rmSync(join(outdir, "app.css.css"));

if (check) {
  const names = (dir) => readdirSync(dir).filter((n) => n !== "__init__.py").sort();
  const built = names(outdir);
  const mismatched = [];
  for (const name of new Set([...built, ...names(shipped)])) {
    let a = null, b = null;
    try { a = readFileSync(join(outdir, name)); } catch {}
    try { b = readFileSync(join(shipped, name)); } catch {}
    if (!a || !b || !a.equals(b)) mismatched.push(name);
  }
  rmSync(outdir, { recursive: true, force: true });
  if (mismatched.length) {
    console.error(`shipped web assets differ from a fresh build: ${mismatched.join(", ")}\nrun: npm run build (in web/)`);
    process.exit(1);
  }
  console.log(`web assets match a fresh build (${built.length} files)`);
}
