// Client behaviour a real server does not produce on demand, against a
// scripted peer (a WebSocket server from the `ws` package speaking the
// protocol with the SDK's own codec): GOAWAY's delay, pushes with unknown ops
// or bad fields, a gap in pushed seqs, ERR unavailable on a SEND.

import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import { WebSocket, WebSocketServer, type WebSocket as Socket } from "ws";

import { Client, ClientClosedError, Op, decodeFrame, encodeFrame, type Body, type Frame, type Message, type WebSocketConstructor } from "../src/index.js";
import { until } from "./server.js";

const CID = "d:alice:bob";

type Handler = (frame: Frame, reply: (body: Body) => void, socket: Socket) => void;

/** A peer that answers HELLO and SYNC, and hands every other request to `handler`. */
class Peer {
  connections: number[] = [];
  handler: Handler = (_frame, reply) => reply({});
  /** Close every connection right after its HELLO reply, with this code. */
  dropAfterHello: number | null = null;
  private sockets = new Set<Socket>();

  constructor(readonly server: WebSocketServer) {
    server.on("connection", (socket) => {
      this.connections.push(Date.now());
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("message", (data) => {
        const frame = decodeFrame(new Uint8Array(data as Buffer), "client");
        const reply = (body: Body): void => socket.send(encodeFrame({ op: Op.OK, rid: frame.rid, body }));
        if (frame.op === Op.HELLO) {
          const hello = { user: "alice", device: "d1", session: "s1", server_time: Date.now(), heartbeat_ms: 25_000, max_frame_bytes: 65_536 };
          reply(hello);
          if (this.dropAfterHello !== null) socket.close(this.dropAfterHello, "scripted");
        } else if (frame.op === Op.SYNC) {
          reply({ convs: [], version: 1, inbox_max: 0 });
        } else {
          this.handler(frame, reply, socket);
        }
      });
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/ws`;
  }

  push(op: number, body: Body): void {
    for (const socket of this.sockets) socket.send(encodeFrame({ op, rid: 0, body }));
  }

  close(code: number): void {
    for (const socket of this.sockets) socket.close(code, "scripted");
  }
}

let peer: Peer;
before(async () => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => server.once("listening", resolve));
  peer = new Peer(server);
});
after(async () => {
  await new Promise((resolve) => peer.server.close(resolve));
});

async function client(): Promise<Client> {
  peer.connections = [];
  peer.handler = (_frame, reply) => reply({});
  const c = new Client({ url: peer.url, credentials: "token", device: "d1", WebSocket: WebSocket as unknown as WebSocketConstructor });
  await c.connect();
  return c;
}

function msg(seq: number, text = `m${seq}`): Body {
  return { cid: CID, seq, mid: `m${seq}`, from: "bob", kind: 1, body: { text }, ts: 1_700_000_000_000 + seq };
}

test("after GOAWAY the client waits reconnect_after_ms before reconnecting", async () => {
  const c = await client();
  try {
    const goaway = Date.now();
    peer.push(Op.GOAWAY, { reason: "shutdown", reconnect_after_ms: 800 });
    peer.close(1001);
    await until(() => peer.connections.length >= 2, "the reconnect", 10_000);
    const waited = (peer.connections[1] as number) - goaway;
    assert.ok(waited >= 800, `reconnected after ${waited} ms`);
    assert.deepEqual(c.statistics().closeCodes, [1001]);
  } finally {
    await c.close();
  }
});

test("a push with an unknown op is ignored, one with a bad field is reported, and the session goes on", async () => {
  const c = await client();
  const got: Message[] = [];
  const errors: Error[] = [];
  c.on("message", (m) => got.push(m));
  c.on("error", (e) => errors.push(e));
  try {
    peer.push(99, { anything: true });
    peer.push(Op.MSG, { ...msg(1), seq: "1" });
    peer.push(Op.MSG, msg(1));
    await until(() => got.length === 1, "the valid message");
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.message ?? "", /seq: must be an unsigned int/);
    assert.equal(c.state, "connected");
    assert.equal(peer.connections.length, 1);
  } finally {
    await c.close();
  }
});

test("a gap in pushed seqs is pulled: 1, 2, 3 once each, in order", async () => {
  const c = await client();
  const got: number[] = [];
  const pulls: Body[] = [];
  c.on("message", (m) => got.push(m.seq));
  peer.handler = (frame, reply) => {
    if (frame.op === Op.PULL) {
      pulls.push(frame.body);
      reply({ msgs: [msg(2), msg(3)], more: false, min_seq: 1, max_seq: 3 });
    } else reply({});
  };
  try {
    peer.push(Op.MSG, msg(1));
    peer.push(Op.MSG, msg(3));
    await until(() => got.length === 3, "three messages");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(got, [1, 2, 3]);
    assert.deepEqual(pulls, [{ cid: CID, after: 1, limit: 200 }]);
  } finally {
    await c.close();
  }
});

test("ERR unavailable on a SEND: resent with the same cmid after retry_after_ms", async () => {
  const c = await client();
  const sends: { cmid: string; at: number }[] = [];
  peer.handler = (frame, reply, socket) => {
    if (frame.op !== Op.SEND) return reply({});
    sends.push({ cmid: frame.body.cmid as string, at: Date.now() });
    if (sends.length === 1) {
      const err = { code: "unavailable", message: "draining", retry_after_ms: 300 };
      socket.send(encodeFrame({ op: Op.ERR, rid: frame.rid, body: err }));
    } else {
      reply({ cid: CID, seq: 7, mid: "m7", ts: 1 });
    }
  };
  try {
    const ack = await c.sendText(CID, "hello");
    assert.equal(ack.seq, 7);
    assert.equal(sends.length, 2);
    assert.equal(sends[0]?.cmid, sends[1]?.cmid);
    assert.equal(ack.cmid, sends[0]?.cmid);
    assert.ok((sends[1]?.at ?? 0) - (sends[0]?.at ?? 0) >= 290);
  } finally {
    await c.close();
  }
});

test("messages() iterates the delivered messages and ends when the client closes", async () => {
  const c = await client();
  const iterator = c.messages();
  peer.push(Op.MSG, msg(1));
  peer.push(Op.MSG, msg(2));
  const seqs: number[] = [];
  for await (const m of iterator) {
    seqs.push(m.seq);
    if (seqs.length === 2) void c.close();
  }
  assert.deepEqual(seqs, [1, 2]);
});

test("nothing listening: connect() gives up after maxAttempts with ClientClosedError", async () => {
  const closed = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => closed.once("listening", resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const c = new Client({
    url: `ws://127.0.0.1:${port}/ws`,
    credentials: "token",
    device: "d1",
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    maxAttempts: 3,
    backoffMinMs: 10,
    backoffMaxMs: 20,
  });
  const states: string[] = [];
  c.on("state", (s) => states.push(s));
  await assert.rejects(c.connect(), (e: unknown) => e instanceof ClientClosedError && /gave up after 3/.test(e.message));
  assert.deepEqual(states, ["connecting", "closed"]); // "reconnecting" only once it has been connected
});

test("sessions that end right after HELLO back off more and more (no reconnect storm)", async () => {
  const c = await client();
  try {
    peer.dropAfterHello = 1011;
    peer.close(1011);
    await until(() => peer.connections.length >= 5, "five connections", 15_000);
    const gaps = peer.connections.slice(1).map((at, i) => at - (peer.connections[i] as number));
    // backoffMinMs 250: the fourth reconnect waits at least half of 250 * 2^3 ms.
    assert.ok((gaps[3] ?? 0) >= 900, `gaps ${JSON.stringify(gaps)}`);
  } finally {
    peer.dropAfterHello = null;
    await c.close();
  }
});

test("reconnectNow() skips the wait; the state is reconnecting during it", async () => {
  const c = await client();
  try {
    peer.push(Op.GOAWAY, { reason: "shutdown", reconnect_after_ms: 60_000 });
    peer.close(1001);
    await until(() => c.state === "reconnecting", "the drop");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(peer.connections.length, 1);
    c.reconnectNow();
    await until(() => peer.connections.length >= 2 && c.state === "connected", "the reconnect", 3000);
  } finally {
    await c.close();
  }
});
