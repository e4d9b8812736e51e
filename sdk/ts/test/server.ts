// A real `sandcat serve` for the end-to-end tests: a child process on free
// ports with a fresh data directory, run by the repository's Python.
//
// The interpreter is $SANDCAT_PYTHON, else the repository's .venv, else
// python3; the repository's src/ goes first on PYTHONPATH, so the server is
// the code of this checkout.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { WebSocket } from "ws";

import { Client, HttpClient, type ClientOptions, type WebSocketConstructor } from "../src/index.js";
import { REPO } from "./paths.js";

const LISTENING = /listening on ws:\/\/[^:]+:(\d+)\/ws and http:\/\/[^:]+:(\d+)/;
const START_TIMEOUT_MS = 60_000;

export function python(): string {
  if (process.env.SANDCAT_PYTHON) return process.env.SANDCAT_PYTHON;
  const venv = join(REPO, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

export class Server {
  output = "";
  private constructor(
    readonly process: ChildProcess,
    readonly dataDir: string,
    readonly wsPort: number,
    readonly httpPort: number,
  ) {}

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.wsPort}/ws`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** Starts a server; `env` adds settings (SANDCAT_* variables). */
  static async start(env: Record<string, string> = {}, dataDir?: string): Promise<Server> {
    const dir = dataDir ?? mkdtempSync(join(tmpdir(), "sandcat-ts-"));
    const pythonPath = [join(REPO, "src"), process.env.PYTHONPATH].filter(Boolean).join(":");
    const child = spawn(
      python(),
      ["-m", "sandcat", "serve", "--data-dir", dir, "--ws-port", "0", "--http-port", "0", "--log-level", "WARNING"],
      { env: { ...process.env, PYTHONUNBUFFERED: "1", PYTHONPATH: pythonPath, ...env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    const ports = await new Promise<[number, number]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sandcat did not start within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        const found = LISTENING.exec(output);
        if (found) {
          clearTimeout(timer);
          resolve([Number(found[1]), Number(found[2])]);
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`sandcat exited (${code}) before listening:\n${output}`));
      });
    });
    const server = new Server(child, dir, ports[0], ports[1]);
    server.output = output;
    const keep = (chunk: Buffer): void => {
      server.output += chunk.toString();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    return server;
  }

  /** SIGTERM (a graceful shutdown: GOAWAY, drain) and wait for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.process.once("exit", () => resolve()));
    this.process.kill(signal);
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the server and removes its data. */
  async dispose(): Promise<void> {
    await this.stop("SIGKILL");
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export const PASSWORD = "correct horse battery staple";

export interface Person {
  name: string;
  id: string;
  http: HttpClient;
}

/** Registers `name` and logs in on a fresh HttpClient. */
export async function person(server: Server, name: string, device = `${name}-web`): Promise<Person> {
  const http = new HttpClient({ baseUrl: server.httpUrl });
  await http.register({ username: name, password: PASSWORD });
  const login = await http.login({ login: name, password: PASSWORD, device, platform: "web" });
  return { name, id: login.user.id, http };
}

/** `a` asks `b` to be friends and `b` accepts; returns their direct cid. */
export async function befriend(a: Person, b: Person): Promise<string> {
  const { request } = await a.http.sendFriendRequest({ to: b.id, message: "hi" });
  await b.http.acceptFriendRequest(request.id);
  return a.id < b.id ? `d:${a.id}:${b.id}` : `d:${b.id}:${a.id}`;
}

/** A connected Client for `who` on `device`. */
export async function connect(server: Server, who: Person, device: string, options: Partial<ClientOptions> = {}): Promise<Client> {
  const client = new Client({
    url: server.wsUrl,
    credentials: who.http.credentials as NonNullable<HttpClient["credentials"]>,
    device,
    platform: "web",
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    http: who.http,
    ...options,
  });
  await client.connect();
  return client;
}

/** Resolves when `predicate` holds, checking every 20 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
