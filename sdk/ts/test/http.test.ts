// HttpClient against a real server: a call of (nearly) every operation, so a
// wrong path parameter, query or body placement shows up here.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { HttpClient, HttpError } from "../src/index.js";
import { PASSWORD, Server, befriend, person, type Person } from "./server.js";

const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d49484452000000040000000308020000003b963991000000144944415478" +
    "9c633c2127c700034c0c480085030026da010a40003b0f0000000049454e44ae426082",
  "hex",
);

let server: Server;
let alice: Person;
let bob: Person;
let carol: Person;

before(async () => {
  server = await Server.start();
  alice = await person(server, "alice");
  bob = await person(server, "bob");
  carol = await person(server, "carol");
});

after(async () => {
  await server?.dispose();
});

test("service routes", async () => {
  const anonymous = new HttpClient({ baseUrl: server.httpUrl });
  assert.deepEqual(await anonymous.health(), { status: "ok" });
  assert.match(await anonymous.metrics(), /^# (HELP|TYPE) /m);
  assert.equal((await anonymous.openapi()).openapi, "3.1.0");
  assert.match(anonymous.githubLogin({ device: "d1" }), /\/api\/v1\/auth\/oauth\/github\?device=d1$/);
});

test("accounts and sessions", async () => {
  const me = await alice.http.me();
  assert.equal(me.user.id, alice.id);
  const updated = await alice.http.updateMe({ display_name: "Alice A." });
  assert.equal(updated.user.display_name, "Alice A.");
  assert.equal((await bob.http.getUser(alice.id)).user.display_name, "Alice A.");
  const found = await bob.http.searchUsers({ q: "alice" });
  assert.ok(found.users.some((u) => u.id === alice.id));
  const sessions = await alice.http.listSessions();
  assert.ok(sessions.sessions.length >= 1);
  // A second login, then revoke it from the first.
  const other = new HttpClient({ baseUrl: server.httpUrl });
  const second = await other.login({ login: "alice", password: PASSWORD, device: "second" });
  await alice.http.revokeSession(second.session);
  await assert.rejects(other.me(), (e: unknown) => e instanceof HttpError && e.status === 401);
});

test("contacts", async () => {
  const dave = await person(server, "dave");
  const erin = await person(server, "erin");
  const { request } = await alice.http.sendFriendRequest({ to: dave.id, message: "hi dave" });
  const pending = await dave.http.listFriendRequests();
  assert.ok(pending.incoming.some((r) => r.id === request.id));
  await dave.http.rejectFriendRequest(request.id);
  const withdrawn = await alice.http.sendFriendRequest({ to: erin.id });
  await alice.http.cancelFriendRequest(withdrawn.request.id);
  assert.deepEqual((await erin.http.listFriendRequests()).incoming, []);
  const cid = await befriend(alice, bob);
  const friends = await alice.http.listFriends();
  assert.deepEqual(
    friends.friends.map((f) => [f.id, f.cid]),
    [[bob.id, cid]],
  );
  await alice.http.setRemark(bob.id, { remark: "Bobby" });
  const contacts = await alice.http.syncContacts();
  assert.ok(contacts.version > 0);
  await alice.http.block(carol.id);
  assert.deepEqual(
    (await alice.http.listBlocks()).blocks.map((b) => b.id),
    [carol.id],
  );
  await alice.http.unblock(carol.id);
  assert.deepEqual((await alice.http.listBlocks()).blocks, []);
});

test("files, links and avatars", async () => {
  const { file } = await alice.http.uploadFile(new Blob([PNG], { type: "image/png" }), { kind: "image", name: "dot.png" });
  assert.equal((await alice.http.getFile(file.id)).file.size, PNG.length);
  assert.ok((await alice.http.listFiles()).files.some((f) => f.id === file.id));
  const links = await alice.http.linkFile(file.id);
  const url = new URL(links.url, server.httpUrl);
  // A signed link needs no token.
  const anonymous = new HttpClient({ baseUrl: server.httpUrl });
  const blob = await anonymous.downloadFile(file.id, {
    expires: url.searchParams.get("expires") ?? "",
    sig: url.searchParams.get("sig") ?? "",
  });
  assert.deepEqual(Buffer.from(await blob.arrayBuffer()), PNG);
  const range = await alice.http.downloadFile(file.id, { range: "bytes=0-7" });
  assert.equal(range.size, 8);
  const avatar = await alice.http.setMyAvatar(new Blob([PNG], { type: "image/png" }));
  assert.ok((await anonymous.getAvatar(avatar.avatar)).size > 0);
  await alice.http.deleteFile(file.id);
  await assert.rejects(alice.http.getFile(file.id), (e: unknown) => e instanceof HttpError && e.status === 404);
});

test("groups", async () => {
  await befriend(alice, carol);
  const { group } = await alice.http.createGroup({ name: "team", members: [bob.id] });
  assert.ok((await bob.http.listGroups()).groups.some((g) => g.id === group.id));
  const invited = await alice.http.inviteGroupMembers(group.id, { users: [carol.id] });
  assert.deepEqual(invited.added, [carol.id]);
  const members = await alice.http.listGroupMembers(group.id, { limit: 10 });
  assert.equal(members.total, 3);
  await alice.http.setGroupRole(group.id, { user: bob.id, role: "admin" });
  const changed = await bob.http.updateGroup(group.id, { announcement: "lunch at noon" });
  assert.equal(changed.group.announcement, "lunch at noon");
  const configured = await alice.http.configureGroup(group.id, { mute_all: true });
  assert.equal(configured.group.mute_all, true);
  await carol.http.setGroupAlias(group.id, { alias: "C" });
  await alice.http.muteGroupMember(group.id, { user: carol.id, until: Date.now() + 60_000 });
  await alice.http.removeGroupMembers(group.id, { users: [carol.id] });
  assert.equal((await alice.http.getGroup(group.id)).group.members.length, 2);
  await alice.http.transferGroup(group.id, { to: bob.id });
  await alice.http.leaveGroup(group.id);
  await assert.rejects(alice.http.getGroup(group.id), (e: unknown) => e instanceof HttpError && e.status === 404);
  const dismissed = await bob.http.dismissGroup(group.id);
  assert.ok((dismissed.seq ?? 0) > 0);
});

test("conversations, messages, readers, inbox, TURN", async () => {
  const { group } = await alice.http.createGroup({ name: "chat", members: [bob.id] });
  const conversations = await alice.http.listConversations();
  const conv = conversations.conversations.find((c) => c.cid === group.cid);
  assert.ok(conv);
  const settings = await alice.http.updateConversation(group.cid, { pinned: true });
  assert.equal(settings.conversation.pinned, true);
  const page = await alice.http.listMessages(group.cid, { limit: 5 });
  assert.equal(page.more, false);
  const readers = await alice.http.conversationReaders(group.cid, { seq: 1 });
  assert.ok(Array.isArray(readers.read));
  if (page.messages.length > 0) {
    const first = page.messages[0] as { mid: string; seq: number };
    assert.equal((await alice.http.getMessage(first.mid)).message.seq, first.seq);
    await alice.http.hideMessages(group.cid, { seqs: [first.seq] });
  }
  const inbox = await bob.http.pullInbox({ limit: 10 });
  assert.ok(inbox.notices.length >= 1);
  await bob.http.ackInbox({ upto: inbox.max_nseq });
  await assert.rejects(alice.http.turnCredentials(), (e: unknown) => e instanceof HttpError && e.status === 404);
});

test("logout everywhere ends every session", async () => {
  await carol.http.logoutEverywhere();
  await assert.rejects(carol.http.me(), (e: unknown) => e instanceof HttpError && e.status === 401);
});
