// End to end against a real `sandcat serve`: two users become friends and
// chat; text, image and file; a group; recall and edit; receipts; the
// conversation settings, history, hiding, typing, presence and the inbox.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Kind, SandcatError, fromJsonValue, isKind, type Client, type Message, type Notice, type TypingEventBody } from "../src/index.js";
import { Server, befriend, connect, makeClient, person, until, type Person } from "./server.js";

// A 4x3 PNG: the server checks an image's bytes against its type.
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d49484452000000040000000308020000003b963991000000144944415478" +
    "9c633c2127c700034c0c480085030026da010a40003b0f0000000049454e44ae426082",
  "hex",
);

describe("two users on a real server", () => {
  let server: Server;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let cid: string;
  let a: Client;
  let b: Client;
  const gotA: Message[] = [];
  const gotB: Message[] = [];

  before(async () => {
    server = await Server.start();
    alice = await person(server, "alice");
    bob = await person(server, "bob");
    carol = await person(server, "carol");
    cid = await befriend(alice, bob);
    await befriend(alice, carol);
    a = await connect(server, alice, "alice-web");
    b = await connect(server, bob, "bob-web");
    a.on("message", (m) => gotA.push(m));
    b.on("message", (m) => gotB.push(m));
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await server?.dispose();
  });

  test("HELLO names the user", () => {
    assert.equal(a.user, alice.id);
    assert.equal(b.user, bob.id);
    assert.equal(a.state, "connected");
  });

  test("text both ways, in order, with the sender's own copy", async () => {
    const ack1 = await a.sendText(cid, "hello, bob");
    const ack2 = await b.sendText(cid, "hi alice", { replyTo: ack1.seq });
    assert.equal(ack2.seq, ack1.seq + 1);
    await until(() => gotA.length >= 2 && gotB.length >= 2, "both messages on both sides");
    for (const got of [gotA, gotB]) {
      assert.deepEqual(
        got.map((m) => [m.seq, m.from, (m.body as { text: string }).text]),
        [
          [ack1.seq, alice.id, "hello, bob"],
          [ack2.seq, bob.id, "hi alice"],
        ],
      );
    }
    assert.equal(gotA[0]?.cmid, ack1.cmid);
    assert.equal(gotB[1]?.reply_to, ack1.seq);
  });

  test("an image and a file: upload, then send", async () => {
    const image = await a.sendUpload(cid, new Blob([PNG], { type: "image/png" }), { kind: "image", name: "dot.png" });
    const file = await a.sendUpload(cid, new TextEncoder().encode("some notes\n"), {
      kind: "file",
      name: "notes.txt",
      contentType: "text/plain",
    });
    await until(() => gotB.some((m) => m.seq === file.seq), "the file message");
    const img = gotB.find((m) => m.seq === image.seq) as Message;
    assert.equal(img.kind, Kind.IMAGE);
    assert.deepEqual(img.body, { file: image.file, mime: "image/png", size: PNG.length, width: 4, height: 3, name: "dot.png" });
    const doc = gotB.find((m) => m.seq === file.seq) as Message;
    assert.equal(doc.kind, Kind.FILE);
    assert.equal((doc.body as { name: string }).name, "notes.txt");
    // Bob may download what was sent to him.
    const bytes = new Uint8Array(await (await bob.http.downloadFile(file.file)).arrayBuffer());
    assert.equal(new TextDecoder().decode(bytes), "some notes\n");
    const thumb = await bob.http.downloadThumbnail(image.file);
    assert.equal(thumb.type, "image/jpeg");
  });

  test("a voice note: the length the server cannot read comes from the caller", async () => {
    const ogg = new Uint8Array([...new TextEncoder().encode("OggS"), ...new Uint8Array(60)]);
    const blob = new Blob([ogg], { type: "audio/ogg" });
    await assert.rejects(a.sendUpload(cid, blob, { kind: "voice" }), /duration_ms: required for kind 4/);
    const voice = await a.sendUpload(cid, blob, { kind: "voice", durationMs: 1200 });
    await until(() => gotB.some((m) => m.seq === voice.seq), "the voice message");
    const msg = gotB.find((m) => m.seq === voice.seq) as Message;
    assert.equal(msg.kind, Kind.VOICE);
    assert.deepEqual(msg.body, { file: voice.file, mime: "audio/ogg", size: ogg.length, duration_ms: 1200 });
    assert.equal(voice.upload.kind, "voice");
  });

  test("every kind a client may send: emoji, location, contact card, custom with bin, a forward, mentions", async () => {
    const emoji = await a.sendEmoji(cid, "🐱");
    const location = await a.sendLocation(cid, { lat: 48.8566, lon: 2.3522, name: "Paris" });
    const contact = await a.sendContact(cid, { user: carol.id, display_name: "Carol" });
    const custom = await a.send(cid, 1000, { ct: new Uint8Array([0, 1, 254, 255]), alg: "x25519" });
    const { group } = await alice.http.createGroup({ name: "kinds", members: [bob.id] });
    await until(() => gotB.some((m) => m.seq === custom.seq), "the custom message");
    const original = gotB.find((m) => m.seq === emoji.seq) as Message;
    const forwarded = await b.forward(group.cid, original);
    const mention = await a.sendText(group.cid, "@all lunch", { mentions: ["@all"] });
    const arrived = (got: Message[]): boolean => got.some((m) => m.cid === group.cid && m.seq === mention.seq);
    await until(() => arrived(gotA) && arrived(gotB), "the group messages");
    const seen = (seq: number, c = cid): Message => gotB.find((m) => m.cid === c && m.seq === seq) as Message;
    assert.deepEqual(seen(emoji.seq).body, { emoji: "🐱" });
    assert.deepEqual(seen(location.seq).body, { lat: 48.8566, lon: 2.3522, name: "Paris" });
    assert.deepEqual(seen(contact.seq).body, { user: carol.id, display_name: "Carol" });
    const ct = (seen(custom.seq).body as { ct: Uint8Array }).ct;
    assert.ok(ct instanceof Uint8Array);
    assert.deepEqual([...ct], [0, 1, 254, 255]);
    // The same message over HTTP, once its JSON is mapped back, is what the WebSocket delivered.
    const overHttp = await bob.http.listMessages(cid, { after: custom.seq - 1, limit: 1 });
    assert.deepEqual(fromJsonValue(overHttp.messages[0]), seen(custom.seq));
    const loc = seen(location.seq);
    assert.ok(isKind(loc, Kind.LOCATION) && loc.body.lat === 48.8566);
    const copy = gotA.find((m) => m.cid === group.cid && m.seq === forwarded.seq) as Message;
    assert.deepEqual(copy.forward, { cid, seq: emoji.seq, from: alice.id });
    assert.deepEqual(copy.body, { emoji: "🐱" });
    assert.deepEqual(seen(mention.seq, group.cid).mentions, ["@all"]);
    // The server checks bodies: a location off the globe is refused, and nothing is stored.
    await assert.rejects(a.sendLocation(cid, { lat: 91, lon: 0 }), (e: unknown) => e instanceof SandcatError && e.code === "bad_request");
  });

  test("recall and edit arrive as events; history shows the result", async () => {
    const first = await a.sendText(cid, "tpyo");
    const second = await a.sendText(cid, "oops");
    const edit = await a.edit(cid, first.seq, "typo");
    const recall = await a.recall(cid, second.seq);
    await until(() => gotB.some((m) => m.seq === recall.seq), "the recall event");
    const editEvent = gotB.find((m) => m.seq === edit.seq) as Message;
    assert.equal(editEvent.kind, Kind.EDIT);
    assert.deepEqual(editEvent.body, { seq: first.seq, body: { text: "typo" } });
    const recallEvent = gotB.find((m) => m.seq === recall.seq) as Message;
    assert.equal(recallEvent.kind, Kind.RECALL);
    assert.deepEqual(recallEvent.body, { seq: second.seq });
    const page = await b.history(cid, { after: first.seq - 1, limit: 2 });
    assert.deepEqual(page.msgs[0]?.body, { text: "typo" });
    assert.ok(page.msgs[0]?.edited_at);
    assert.equal(page.msgs[1]?.recalled, true);
    assert.equal(page.msgs[1]?.body, null);
    // Only the sender may edit.
    await assert.rejects(b.edit(cid, first.seq, "mine now"), (e: unknown) => e instanceof SandcatError && e.code === "forbidden");
  });

  test("read receipts: READ_STATE to the peer", async () => {
    const last = gotB[gotB.length - 1] as Message;
    const receipt = a.next("readState", (r) => r.user === bob.id && r.seq === last.seq);
    await b.read(cid, last.seq);
    assert.deepEqual(await receipt, { cid, user: bob.id, seq: last.seq });
  });

  test("a group: create over HTTP, chat, readers", async () => {
    const { group } = await alice.http.createGroup({ name: "team", members: [bob.id, carol.id] });
    const gcid = group.cid;
    const ack = await a.sendText(gcid, "welcome");
    await until(() => gotB.some((m) => m.cid === gcid && m.seq === ack.seq), "the group message");
    const inGroup = gotB.filter((m) => m.cid === gcid);
    assert.deepEqual(
      inGroup.map((m) => m.seq),
      Array.from({ length: ack.seq }, (_, i) => i + 1),
    );
    await b.read(gcid, ack.seq);
    const readers = await a.readers(gcid, ack.seq);
    assert.deepEqual(readers.read.sort(), [alice.id, bob.id].sort());
    assert.deepEqual(readers.unread, [carol.id]);
  });

  test("conversation settings, SYNC (paged on connect), hide", async () => {
    const state = a.next("convState");
    const c = makeClient(server, alice, "alice-phone", { syncPageSize: 1 });
    const synced = c.next("sync");
    try {
      await c.connect();
      const everything = await a.sync();
      const paged = await synced;
      assert.ok(everything.convs.length >= 3, `alice has ${everything.convs.length} conversations`);
      assert.deepEqual(paged.convs.map((x) => x.cid).sort(), everything.convs.map((x) => x.cid).sort());
      const settings = await c.setConversation(cid, { pinned: true });
      assert.equal(settings.pinned, true);
      assert.deepEqual(await state, settings);
      const sync = await a.sync();
      const conv = sync.convs.find((x) => x.cid === cid);
      assert.equal(conv?.pinned, true);
      assert.equal(conv?.peer, bob.id);
      const seq = (gotA[0] as Message).seq;
      await a.hide(cid, [seq]);
      const page = await a.history(cid, { limit: 200 });
      assert.ok(!page.msgs.some((m) => m.seq === seq));
    } finally {
      await c.close();
    }
  });

  test("typing and presence", async () => {
    const snapshot = await a.setPresence("online");
    assert.equal(snapshot.state, "online");
    const typings: TypingEventBody[] = [];
    const stop = b.on("typing", (t) => typings.push(t));
    const stopped = b.next("typing", (t) => !t.active);
    for (let i = 0; i < 5; i++) await a.typing(cid); // keystrokes: one start goes out
    await a.typing(cid, false);
    await a.typing(cid, false); // no start since: nothing to stop
    await stopped;
    await new Promise((resolve) => setTimeout(resolve, 100));
    stop();
    assert.deepEqual(typings, [
      { cid, user: alice.id, active: true },
      { cid, user: alice.id, active: false },
    ]);
  });

  test("a call: ring, accept, offer/answer/candidate relayed, hangup, and the call log", async () => {
    const ring = b.next("call", (e) => e.action === "ring");
    const placed = await a.invite(bob.id, "video");
    assert.equal(placed.state, "ringing");
    assert.deepEqual(await ring, { call: placed.call, action: "ring", from: alice.id, media: "video" });
    const accepted = a.next("call", (e) => e.action === "accepted");
    await b.acceptCall(placed.call);
    assert.equal((await accepted).device, "bob-web");
    const offer = b.next("call", (e) => e.action === "offer");
    await a.offer(placed.call, "v=0\r\n");
    assert.equal((await offer).sdp, "v=0\r\n");
    const answer = a.next("call", (e) => e.action === "answer");
    await b.answer(placed.call, "v=0\r\n");
    assert.equal((await answer).sdp, "v=0\r\n");
    const candidate = b.next("call", (e) => e.action === "candidate");
    const init = { candidate: "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host", sdp_mid: "0", sdp_m_line_index: 0 };
    await a.candidate(placed.call, init);
    assert.deepEqual((await candidate).candidate, init);
    const endedA = a.next("call", (e) => e.action === "ended");
    const endedB = b.next("call", (e) => e.action === "ended");
    const log = b.next("message", (m) => m.kind === Kind.CALL_LOG);
    await b.hangup(placed.call);
    for (const ended of [await endedA, await endedB]) {
      assert.equal(ended.outcome, "completed");
      assert.equal(ended.reason, "hangup");
    }
    const entry = await log;
    assert.equal(entry.from, alice.id);
    assert.deepEqual({ ...(entry.body as object), duration_ms: 0 }, { call: placed.call, media: "video", outcome: "completed", duration_ms: 0 });
    // Calls are not retried: a refused one fails at once.
    await assert.rejects(b.acceptCall(placed.call), (e: unknown) => e instanceof SandcatError && e.code === "not_found");
  });

  test("the inbox: a friend request is a notice", async () => {
    const dave = await person(server, "dave");
    const notice = a.next("notice", (n) => n.type === "friend.requested");
    await dave.http.sendFriendRequest({ to: alice.id });
    const n = await notice;
    assert.equal(n.data.from, dave.id);
    const page = await a.inbox({ after: n.nseq - 1 });
    assert.equal(page.notices[0]?.nseq, n.nseq);
    await a.inboxAck(n.nseq);
  });

  test("notices that came while no device was connected are emitted after connecting, once", async () => {
    const erin = await person(server, "erin");
    const { request } = await erin.http.sendFriendRequest({ to: carol.id, message: "hello carol" });
    const c = makeClient(server, carol, "carol-web");
    const notices: Notice[] = [];
    c.on("notice", (n) => notices.push(n));
    try {
      await c.connect();
      await until(() => notices.some((n) => n.data.request === request.id), "the friend request notice");
      const mine = notices.filter((n) => n.data.request === request.id);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]?.type, "friend.requested");
      assert.equal(new Set(notices.map((n) => n.nseq)).size, notices.length);
    } finally {
      await c.close();
    }
  });

  test("bad arguments fail in the caller, before the wire", async () => {
    await assert.rejects(a.sendText("d:bob:alice", "x"), /cid: must be a conversation id/);
    await assert.rejects(a.pull(cid, 0, 201), /limit: must be an int from 1 to 200/);
    // A frame over max_frame_bytes would cost the connection (1009): refused here, not resent.
    await assert.rejects(a.send(cid, 1000, new Uint8Array(70_000)), (e: unknown) => e instanceof SandcatError && e.code === "too_large");
    // A Date would go out as an ext type, which the server answers by closing (1007): refused here.
    await assert.rejects(a.send(cid, 1000, { when: new Date() }), /body\.body\.when: a Date cannot be sent/);
    assert.deepEqual(a.statistics().closeCodes, []);
  });
});
