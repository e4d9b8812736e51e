// The web client's adapter over the TypeScript SDK (sdk/ts, "@sandcat/sdk"): the only
// code that talks to the server. It maps the SDK's Client (WebSocket) and HttpClient
// (HTTP API) onto the small Backend interface the views use, and keeps the session
// (refresh token, gateway URL, device id) in sessionStorage: a reload stays signed in,
// and each tab is its own device (two tabs never share, and so never reuse, a refresh token).
import { Client, Credentials, HttpClient, HttpError, type Tokens } from "@sandcat/sdk";
import type { Backend, Conv, Friend, FriendRequest, Group, Handlers, History, Member, Msg, Notice, PresenceEntry, SendOptions, TurnCredentials, User } from "./backend.ts";

const STORE = "sandcat.session";

interface Saved {
  refresh_token: string;
  ws_url: string;
  user: User;
}

function deviceId(): string {
  let id = sessionStorage.getItem("sandcat.device");
  if (!id) {
    id = `web-${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
    sessionStorage.setItem("sandcat.device", id);
  }
  return id;
}

function save(saved: Saved): void {
  sessionStorage.setItem(STORE, JSON.stringify(saved));
}

export async function register(username: string, password: string): Promise<void> {
  await new HttpClient({ baseUrl: "" }).register({ username, password });
}

export async function signIn(login: string, password: string): Promise<Backend> {
  const http = new HttpClient({ baseUrl: "" });
  const reply = await http.login({ login, password, device: deviceId(), platform: "web" });
  const credentials = http.credentials as Credentials;
  const saved: Saved = { refresh_token: credentials.tokens.refresh_token, ws_url: reply.ws_url, user: reply.user };
  save(saved);
  return new Session(http, credentials, saved);
}

/** The session of an earlier visit (a reload), if its refresh token still works. */
export async function resume(): Promise<Backend | null> {
  const raw = sessionStorage.getItem(STORE);
  if (!raw) return null;
  const saved = JSON.parse(raw) as Saved;
  const http = new HttpClient({ baseUrl: "" });
  // An expired access token: the first call refreshes it with the saved refresh token.
  const tokens: Tokens = { access_token: "", refresh_token: saved.refresh_token, expires_at: 0 };
  const credentials = new Credentials(http, tokens);
  http.credentials = credentials;
  try {
    await credentials.accessToken(true);
  } catch (err) {
    if (err instanceof HttpError && err.status < 500) {
      sessionStorage.removeItem(STORE);
      return null;
    }
    throw err;
  }
  save({ ...saved, refresh_token: credentials.tokens.refresh_token });
  return new Session(http, credentials, saved);
}

class Session implements Backend {
  readonly me: User;
  private client: Client;

  constructor(private http: HttpClient, credentials: Credentials, private saved: Saved) {
    this.me = saved.user;
    credentials.onChange = (tokens) => save({ ...this.saved, refresh_token: tokens.refresh_token });
    this.client = new Client({
      url: saved.ws_url,
      credentials,
      device: deviceId(),
      platform: "web",
      clientName: "sandcat-web/0.1.0",
      http,
      maxAttempts: Infinity,
    });
  }

  connect(h: Handlers): void {
    const c = this.client;
    c.on("message", (msg) => h.message(msg));
    c.on("readState", (r) => h.readState(r.cid, r.user, r.seq));
    c.on("convState", (s) => h.convState(s));
    c.on("notice", (n) => h.notice(n));
    c.on("typing", (t) => h.typing(t.cid, t.user, t.active));
    c.on("presence", (p) => h.presence(p.users));
    c.on("call", (e) => h.call(e));
    c.on("state", (state) => h.connection(state === "connected" ? "online" : state === "closed" ? "offline" : "connecting"));
    c.on("closed", (error) => {
      if (/unauthori|4001|4002|4007|credential/i.test(`${error.message} ${(error as { code?: unknown }).code ?? ""}`)) {
        sessionStorage.removeItem(STORE);
        h.signedOut();
      }
    });
    void c.connect().catch(() => undefined);
  }

  async sync(): Promise<Conv[]> {
    return (await this.client.sync()).convs;
  }

  async send(cid: string, kind: number, body: unknown, options: SendOptions = {}): Promise<Msg> {
    const ack = await this.client.send(cid, kind, body, { replyTo: options.replyTo, mentions: options.mentions });
    const msg: Msg = { cid: ack.cid, seq: ack.seq, mid: ack.mid, ts: ack.ts, from: this.me.id, kind, body, cmid: ack.cmid };
    if (options.replyTo !== undefined) msg.reply_to = options.replyTo;
    if (options.mentions !== undefined) msg.mentions = options.mentions;
    return msg;
  }

  async sendUpload(cid: string, kind: "image" | "file" | "voice", file: Blob, options: { name?: string; durationMs?: number } = {}): Promise<void> {
    await this.client.sendUpload(cid, file, { kind, name: options.name, durationMs: options.durationMs });
  }

  async recall(cid: string, seq: number): Promise<void> {
    await this.client.recall(cid, seq);
  }

  async edit(cid: string, seq: number, body: unknown): Promise<void> {
    await this.client.edit(cid, seq, (body as { text: string }).text);
  }

  async history(cid: string, before?: number, limit = 30): Promise<History> {
    const page = await this.client.history(cid, before ? { before, limit } : { limit });
    return { messages: page.msgs, more: page.more, min_seq: page.min_seq, max_seq: page.max_seq };
  }

  async read(cid: string, seq: number): Promise<void> {
    await this.client.read(cid, seq);
  }

  async readers(cid: string, seq: number): Promise<{ read: string[]; unread: string[] }> {
    const reply = await this.client.readers(cid, seq);
    return { read: reply.read, unread: reply.unread };
  }

  async setConversation(cid: string, settings: { pinned?: boolean; muted?: boolean }): Promise<void> {
    await this.client.setConversation(cid, settings);
  }

  async typing(cid: string, active: boolean): Promise<void> {
    await this.client.typing(cid, active);
  }

  async presence(state?: "online" | "away" | "busy" | "invisible"): Promise<PresenceEntry[]> {
    return (await this.client.setPresence(state)).users;
  }

  async callInvite(peer: string, media: "audio" | "video"): Promise<{ call: string; state: string }> {
    return this.client.invite(peer, media);
  }

  async callAction(call: string, action: "accept" | "reject" | "cancel" | "hangup"): Promise<void> {
    if (action === "accept") await this.client.acceptCall(call);
    else if (action === "reject") await this.client.rejectCall(call);
    else if (action === "cancel") await this.client.cancelCall(call);
    else await this.client.hangup(call);
  }

  async callSdp(call: string, action: "offer" | "answer", sdp: string): Promise<void> {
    if (action === "offer") await this.client.offer(call, sdp);
    else await this.client.answer(call, sdp);
  }

  async callCandidate(call: string, c: RTCIceCandidateInit | null): Promise<void> {
    const candidate: { candidate: string; sdp_mid?: string; sdp_m_line_index?: number } = { candidate: c?.candidate ?? "" };
    if (c?.sdpMid != null) candidate.sdp_mid = c.sdpMid;
    if (c?.sdpMLineIndex != null) candidate.sdp_m_line_index = c.sdpMLineIndex;
    await this.client.candidate(call, candidate);
  }

  async user(id: string): Promise<User> {
    return (await this.http.getUser(id)).user;
  }

  async searchUsers(q: string): Promise<User[]> {
    return (await this.http.searchUsers({ q })).users;
  }

  async friends(): Promise<Friend[]> {
    return (await this.http.listFriends()).friends;
  }

  async friendRequests(): Promise<{ incoming: FriendRequest[]; outgoing: FriendRequest[] }> {
    const reply = await this.http.listFriendRequests();
    return { incoming: reply.incoming, outgoing: reply.outgoing };
  }

  async requestFriend(to: string, message?: string): Promise<void> {
    await this.http.sendFriendRequest(message ? { to, message } : { to });
  }

  async answerRequest(id: string, accept: boolean): Promise<void> {
    if (accept) await this.http.acceptFriendRequest(id);
    else await this.http.rejectFriendRequest(id);
  }

  async groups(): Promise<Group[]> {
    return (await this.http.listGroups()).groups;
  }

  async group(id: string): Promise<Group> {
    return (await this.http.getGroup(id)).group;
  }

  async members(id: string): Promise<Member[]> {
    return (await this.http.listGroupMembers(id, { limit: 200 })).members;
  }

  async createGroup(name: string, members: string[]): Promise<Group> {
    return (await this.http.createGroup({ name, members })).group;
  }

  async invite(id: string, users: string[]): Promise<void> {
    await this.http.inviteGroupMembers(id, { users });
  }

  async setRole(id: string, user: string, role: "admin" | "member"): Promise<void> {
    await this.http.setGroupRole(id, { user, role });
  }

  async updateGroup(id: string, fields: { name?: string; announcement?: string }): Promise<void> {
    await this.http.updateGroup(id, fields);
  }

  async inbox(after: number): Promise<Notice[]> {
    return (await this.client.inbox({ after })).notices;
  }

  async ackInbox(nseq: number): Promise<void> {
    await this.client.inboxAck(nseq);
  }

  async download(id: string, thumbnail = false): Promise<Blob> {
    return thumbnail ? this.http.downloadThumbnail(id) : this.http.downloadFile(id);
  }

  async turn(): Promise<TurnCredentials | null> {
    try {
      return await this.http.turnCredentials();
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) return null;
      throw err;
    }
  }

  async logout(): Promise<void> {
    sessionStorage.removeItem(STORE);
    await this.http.logout();
  }

  close(): void {
    void this.client.close();
  }
}
