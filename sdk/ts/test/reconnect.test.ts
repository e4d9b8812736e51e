// Connection loss and server restarts: nothing lost, nothing duplicated.
//
// Both clients reach the server through a TCP proxy the test can cut. In the
// middle of a burst of sends from both sides the proxy drops every
// connection: sends in flight are resent with their cmid after the
// reconnect, pushes missed while away are pulled, and each side ends with
// the conversation's seqs 1..n exactly once, in order, every text once.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import type { Client, Message, SendAck } from "../src/index.js";
import { Proxy, Server, befriend, connect, makeClient, person, until, type Person } from "./server.js";

const PER_SIDE = 150;

function texts(messages: Message[], cid: string): string[] {
  return messages.filter((m) => m.cid === cid).map((m) => (m.body as { text: string }).text);
}

function assertExactlyOnceInOrder(messages: Message[], cid: string, n: number): void {
  const seqs = messages.filter((m) => m.cid === cid).map((m) => m.seq);
  const first = seqs[0] ?? 1;
  assert.deepEqual(
    seqs,
    Array.from({ length: n }, (_, i) => first + i),
  );
}

describe("reconnect in the middle of a burst", () => {
  let server: Server;
  let proxy: Proxy;
  let alice: Person;
  let bob: Person;
  let cid: string;

  before(async () => {
    server = await Server.start();
    proxy = await Proxy.start(server.wsPort);
    alice = await person(server, "alice");
    bob = await person(server, "bob");
    cid = await befriend(alice, bob);
  });

  after(async () => {
    await proxy?.close();
    await server?.dispose();
  });

  test("a cut connection loses nothing and duplicates nothing", async () => {
    const a = await connect(server, alice, "alice-web", { url: proxy.wsUrl });
    const b = await connect(server, bob, "bob-web", { url: proxy.wsUrl });
    const gotA: Message[] = [];
    const gotB: Message[] = [];
    a.on("message", (m) => gotA.push(m));
    b.on("message", (m) => gotB.push(m));
    try {
      const acks: Promise<SendAck>[] = [];
      let acked = 0;
      let cut = 0;
      for (let i = 0; i < PER_SIDE; i++) {
        for (const [client, name] of [
          [a, "a"],
          [b, "b"],
        ] as [Client, string][]) {
          const ack = client.sendText(cid, `${name}-${i}`);
          acks.push(
            ack.then((x) => {
              acked += 1;
              if (acked === PER_SIDE / 2) cut = proxy.cut(); // the middle of the burst
              return x;
            }),
          );
        }
        if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 5)); // let acks and pushes flow
      }
      const all = await Promise.all(acks);
      assert.ok(cut >= 2, "the proxy had connections to cut");
      const total = 2 * PER_SIDE;
      assert.equal(new Set(all.map((x) => x.seq)).size, total, "every send got its own seq");
      assert.equal(Math.max(...all.map((x) => x.seq)), total, "and no seq went to a duplicate");
      await until(() => texts(gotA, cid).length >= total && texts(gotB, cid).length >= total, "every message on both sides", 30_000);
      const expected = [...Array(PER_SIDE).keys()].flatMap((i) => [`a-${i}`, `b-${i}`]).sort();
      for (const got of [gotA, gotB]) {
        assertExactlyOnceInOrder(got, cid, total);
        assert.deepEqual([...texts(got, cid)].sort(), expected);
      }
      // The seq each side saw for a text is the one its sender was acked with.
      const bySeq = new Map(gotB.map((m) => [m.seq, m]));
      for (const ack of all) assert.equal(bySeq.get(ack.seq)?.mid, ack.mid);
      for (const client of [a, b]) {
        const stats = client.statistics();
        assert.ok(stats.connects >= 2, `reconnected (${JSON.stringify(stats)})`);
      }
      assert.ok(a.statistics().resends + b.statistics().resends > 0, "something was in flight at the cut");
      // Nothing more arrives afterwards (no late duplicates).
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(texts(gotA, cid).length, total);
      assert.equal(texts(gotB, cid).length, total);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("messages sent while a device is away arrive after it reconnects (PULL backfill)", async () => {
    const a = await connect(server, alice, "alice-web");
    const b = await connect(server, bob, "bob-web", { url: proxy.wsUrl, backoffMinMs: 50, backoffMaxMs: 200, maxAttempts: Infinity });
    const gotB: Message[] = [];
    b.on("message", (m) => gotB.push(m));
    try {
      const down = b.next("state", (s) => s === "reconnecting");
      proxy.blocked = true;
      proxy.cut();
      await down;
      const acks: SendAck[] = [];
      for (let i = 0; i < 5; i++) acks.push(await a.sendText(cid, `while away ${i}`));
      assert.equal(gotB.length, 0);
      proxy.blocked = false;
      await until(() => gotB.length >= 5, "the backfilled messages", 20_000);
      assert.deepEqual(
        gotB.map((m) => m.seq),
        acks.map((x) => x.seq),
      );
      assert.ok(b.statistics().pulls >= 1, "they came by PULL");
    } finally {
      proxy.blocked = false;
      await a.close();
      await b.close();
    }
  });

  test("a new client resumes from the positions of the last one: exactly what it missed", async () => {
    const a = await connect(server, alice, "alice-web");
    const before = await connect(server, bob, "bob-web");
    const seen: Message[] = [];
    before.on("message", (m) => seen.push(m));
    try {
      const ack = await a.sendText(cid, "seen before closing");
      await until(() => seen.some((m) => m.seq === ack.seq), "the message before closing");
      const positions = before.positions();
      assert.equal(positions[cid], ack.seq);
      await before.close();
      const missed: SendAck[] = [];
      for (let i = 0; i < 3; i++) missed.push(await a.sendText(cid, `missed ${i}`));
      const after = makeClient(server, bob, "bob-web", { positions });
      const got: Message[] = [];
      after.on("message", (m) => got.push(m));
      await after.connect();
      try {
        await until(() => got.length >= 3, "the missed messages");
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.deepEqual(
          got.map((m) => m.seq),
          missed.map((x) => x.seq),
        );
      } finally {
        await after.close();
      }
    } finally {
      await a.close();
      await before.close();
    }
  });

  test("a line that goes silent (half-open) is dropped after a request times out, and the request is retried", async () => {
    const b = await connect(server, bob, "bob-web", { url: proxy.wsUrl, requestTimeoutMs: 1500 });
    try {
      proxy.freeze();
      const started = Date.now();
      const time = await b.ping();
      assert.ok(time > 0);
      // Well before the keep-alive PING (heartbeat_ms, 25 s) would have noticed.
      assert.ok(Date.now() - started < 12_000, `took ${Date.now() - started} ms`);
      assert.ok(b.statistics().connects >= 2, "it reconnected");
    } finally {
      await b.close();
    }
  });

  test("GOAWAY: the client waits reconnect_after_ms, reconnects to the restarted server, and a send made meanwhile goes through", async () => {
    const a = await connect(server, alice, "alice-web", { maxAttempts: Infinity, backoffMaxMs: 1000 });
    const b = await connect(server, bob, "bob-web", { maxAttempts: Infinity, backoffMaxMs: 1000 });
    const gotB: Message[] = [];
    b.on("message", (m) => gotB.push(m));
    try {
      const goaway = a.next("goaway");
      const stopping = server.stop("SIGTERM");
      const notice = await goaway;
      assert.ok(notice.reconnect_after_ms > 0);
      await stopping;
      const pending = a.sendText(cid, "after the restart");
      server = await server.restart();
      const ack = await pending;
      await until(() => gotB.some((m) => m.seq === ack.seq), "the message on the other side", 30_000);
      assert.ok(a.statistics().connects >= 2);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
