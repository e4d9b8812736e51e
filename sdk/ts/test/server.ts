// A real `sandcat serve` for the end-to-end tests: a child process on free
// ports with a fresh data directory, run by the repository's Python.
//
// The interpreter is $SANDCAT_PYTHON, else the repository's .venv, else
// python3; the repository's src/ goes first on PYTHONPATH, so the server is
// the code of this checkout. It runs as `python -m tests.serve`: the sandcat
// command with the test suite's cheap password hasher (tests/passwords.py).

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, connect as tcpConnect, type Server as TcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { WebSocket } from "ws";

import { Client, HttpClient, type ClientOptions, type WebSocketConstructor } from "../src/index.js";
import { REPO } from "./paths.js";

const LISTENING = /listening on wss?:\/\/[^:]+:(\d+)\/ws and https?:\/\/[^:]+:(\d+)/;
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
  static async start(
    env: Record<string, string> = {},
    dataDir?: string,
    listen: [number, number] = [0, 0],
    extra: string[] = [],
  ): Promise<Server> {
    const dir = dataDir ?? mkdtempSync(join(tmpdir(), "sandcat-ts-"));
    const pythonPath = [join(REPO, "src"), REPO, process.env.PYTHONPATH].filter(Boolean).join(":");
    const args = ["--data-dir", dir, "--ws-port", String(listen[0]), "--http-port", String(listen[1]), "--log-level", "WARNING", ...extra];
    const child = spawn(python(), ["-m", "tests.serve", "serve", ...args], {
      cwd: REPO,
      env: { ...process.env, PYTHONUNBUFFERED: "1", PYTHONPATH: pythonPath, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
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

  /** The same server again (same data, same ports) after `stop`. */
  restart(env: Record<string, string> = {}): Promise<Server> {
    return Server.start(env, this.dataDir, [this.wsPort, this.httpPort]);
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
  const client = makeClient(server, who, device, options);
  await client.connect();
  return client;
}

/** A Client for `who` on `device`, not connected yet. */
export function makeClient(server: Server, who: Person, device: string, options: Partial<ClientOptions> = {}): Client {
  return new Client({
    url: server.wsUrl,
    credentials: who.http.credentials as NonNullable<HttpClient["credentials"]>,
    device,
    platform: "web",
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    http: who.http,
    ...options,
  });
}

/** Resolves when `predicate` holds, checking every 20 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A TCP proxy in front of a port whose connections a test can cut. */
export class Proxy {
  /** While true, new connections are dropped at once (the server is "unreachable"). */
  blocked = false;

  private constructor(
    private readonly server: TcpServer,
    readonly port: number,
    private readonly sockets: Set<Socket>,
    private readonly frozen: Set<Socket>,
  ) {}

  /** The connections open now stop passing data, but stay open (a half-open line). */
  freeze(): void {
    for (const socket of this.sockets) this.frozen.add(socket);
  }

  static async start(target: number): Promise<Proxy> {
    const sockets = new Set<Socket>();
    const frozen = new Set<Socket>();
    let proxy: Proxy | null = null;
    const server = createServer((client) => {
      if (proxy?.blocked) {
        client.destroy();
        return;
      }
      const upstream = tcpConnect(target, "127.0.0.1");
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        sockets.add(a);
        a.on("data", (chunk) => {
          if (!frozen.has(a)) b.write(chunk);
        });
        a.on("close", () => {
          sockets.delete(a);
          b.destroy();
        });
        a.on("error", () => b.destroy());
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    proxy = new Proxy(server, typeof address === "object" && address ? address.port : 0, sockets, frozen);
    return proxy;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Drops every connection at once, without a close frame (like a network failure). */
  cut(): number {
    const n = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
