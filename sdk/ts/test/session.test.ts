// The session's lifecycle against a real server: AUTH with a refreshed token
// before expiry, a refused token, the device slot taken over (4001), logout
// (4007), and the HTTP client's coverage of the OpenAPI document.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ClientClosedError, Credentials, HttpClient, HttpError, OPERATIONS } from "../src/index.js";
import { Server, befriend, connect, person, until, type Person } from "./server.js";

describe("sessions", () => {
  let server: Server;
  let alice: Person;
  let bob: Person;
  let cid: string;

  before(async () => {
    server = await Server.start();
    alice = await person(server, "alice");
    bob = await person(server, "bob");
    cid = await befriend(alice, bob);
  });

  after(async () => {
    await server?.dispose();
  });

  test("AUTH: a token about to expire is refreshed over HTTP and presented before it does", async () => {
    const http = new HttpClient({ baseUrl: server.httpUrl });
    await http.login({ login: "alice", password: "correct horse battery staple", device: "auth-test" });
    const initial = (http.credentials as Credentials).tokens;
    // Pretend the token expires in 3 s: Credentials renews it a third of that early.
    const credentials = new Credentials(http, { ...initial, expires_at: Date.now() + 3000 });
    const client = await connect(server, { ...alice, http }, "auth-test", { credentials });
    try {
      assert.equal((await client.connect()).user, alice.id, "connect() again: the live session");
      await until(() => client.statistics().auths >= 1, "an AUTH", 10_000);
      assert.notEqual(credentials.tokens.access_token, initial.access_token);
      assert.notEqual(credentials.tokens.refresh_token, initial.refresh_token);
      const ack = await client.sendText(cid, "still here");
      assert.ok(ack.seq > 0);
      assert.deepEqual(client.statistics().closeCodes, []);
    } finally {
      await client.close();
    }
  });

  test("concurrent renewals share one refresh (a reused refresh token would end the session)", async () => {
    const http = new HttpClient({ baseUrl: server.httpUrl });
    await http.login({ login: "alice", password: "correct horse battery staple", device: "renewals" });
    const credentials = http.credentials as Credentials;
    const tokens = await Promise.all([credentials.accessToken(true), credentials.accessToken(true), credentials.accessToken(true)]);
    assert.equal(new Set(tokens).size, 1);
    assert.equal((await http.me()).user.id, alice.id);
    assert.equal(await credentials.accessToken(true).then(() => http.me()).then((r) => r.user.id), alice.id);
  });

  test("a refused token: connect() rejects with 4002", async () => {
    const client = connect(server, alice, "bad-token", { credentials: "not-a-token" });
    await assert.rejects(client, (e: unknown) => e instanceof ClientClosedError && e.closeCode === 4002);
  });

  test("another connection of the same device: the first one ends with 4001 and does not fight back", async () => {
    const first = await connect(server, alice, "one-slot");
    const ended = first.next("closed");
    const second = await connect(server, alice, "one-slot");
    try {
      const error = await ended;
      assert.equal(error.closeCode, 4001);
      assert.equal(first.state, "closed");
      await assert.rejects(first.sendText(cid, "x"), ClientClosedError);
      assert.ok((await second.sendText(cid, "the slot is mine")).seq > 0);
    } finally {
      await second.close();
    }
  });

  test("logout: the session ends (4007) and the client stops for good", async () => {
    const http = new HttpClient({ baseUrl: server.httpUrl });
    await http.login({ login: "bob", password: "correct horse battery staple", device: "bob-logout" });
    const client = await connect(server, { ...bob, http }, "bob-logout");
    const ended = client.next("closed");
    await http.logout();
    const error = await ended;
    assert.ok(error.closeCode === 4007 || error.closeCode === 4002, `closed with ${error.closeCode}`);
    await assert.rejects(http.me(), (e: unknown) => e instanceof HttpError && e.status === 401);
  });

  test("every operation of the server's OpenAPI document is an HttpClient method, at the same method and path", async () => {
    const http = new HttpClient({ baseUrl: server.httpUrl });
    const document = (await http.openapi()) as { paths: Record<string, Record<string, { operationId: string }>> };
    // The same listing as sandcat.api.openapi.sdk_operation_ids (the Python SDK's check):
    // the server admin routes (/api/v1/admin/) are operators' tools, left out on purpose.
    const documented = new Map<string, [string, string]>();
    const admin: string[] = [];
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        if (path.startsWith("/api/v1/admin/")) admin.push(operation.operationId);
        else documented.set(operation.operationId, [method.toUpperCase(), path]);
      }
    }
    assert.ok(admin.length > 0 && admin.every((id) => id.startsWith("admin") && !(id in OPERATIONS)));
    const missing = [...documented].filter(([id]) => !(id in OPERATIONS)).map(([id, [m, p]]) => `${id} (${m} ${p})`);
    assert.deepEqual(missing, [], "operations without an HttpClient method (add them to OPERATIONS in src/http.ts)");
    const stale = Object.keys(OPERATIONS).filter((id) => !documented.has(id));
    assert.deepEqual(stale, [], "OPERATIONS names operations the document does not have");
    for (const [id, [method, path]] of Object.entries(OPERATIONS)) {
      assert.deepEqual(documented.get(id), [method, path], id);
      assert.equal(typeof (http as unknown as Record<string, unknown>)[id], "function", `HttpClient.${id}`);
    }
    assert.ok(documented.size >= 70);
  });

  test("HTTP errors carry the status, code and field", async () => {
    const http = new HttpClient({ baseUrl: server.httpUrl });
    await assert.rejects(
      http.register({ username: "x", password: "correct horse battery staple" }),
      (e: unknown) => e instanceof HttpError && e.status === 422 && e.code === "bad_request" && e.field === "username",
    );
    await assert.rejects(http.listFriends(), (e: unknown) => e instanceof HttpError && e.status === 401);
  });
});
