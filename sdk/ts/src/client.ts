// The WebSocket client: one device of one user, kept connected.
//
// - HELLO on every connection, AUTH with a fresh token before the current one
//   expires, a PING when the line has been quiet for `heartbeat_ms`.
// - Reconnects with exponential back-off and jitter, or after the delay a
//   GOAWAY names; after 4002/4007 with a renewed token; never after 4001.
// - After each (re)connect: SYNC (from the last version), then PULL every
//   hole, so `message` events are each conversation's log in seq order,
//   exactly once, the device's own sends included (from their acks).
// - Every request is retried on the next connection when the line drops
//   before its reply; a SEND (RECALL, EDIT) keeps its cmid, so a resend
//   never duplicates (SPEC.md §5.4).
//
// SPEC.md (protocol/SPEC.md in the repository) is the contract this follows.

import { MAX_FRAME_BYTES, decodeFrame, encodeFrame, unencodable } from "./codec.js";
import { ClientClosedError, FrameError, HttpError, RequestError, SandcatError, TimeoutError } from "./errors.js";
import { Emitter } from "./events.js";
import {
  Kind,
  Op,
  SUBPROTOCOL,
  type Ack,
  type Body,
  type CallBody,
  type CallEventBody,
  type CallMedia,
  type CallPlaced,
  type ConvStateBody,
  type ErrBody,
  type Frame,
  type ForwardRef,
  type GoAwayBody,
  type HelloReply,
  type IceCandidate,
  type InboxPage,
  type Message,
  type Notice,
  type Page,
  type PresenceBody,
  type PresenceReply,
  type PresenceState,
  type ReadStateBody,
  type ReadersReply,
  type SyncReply,
  type TypingEventBody,
} from "./frames.js";
import { StaticToken, type FileInfo, type HttpClient, type TokenSource, type Upload, type UploadKind } from "./http.js";
import { Timeline } from "./timeline.js";
import { checkBody } from "./validate.js";

/** The parts of the browser's WebSocket the SDK uses (the `ws` package has them too). */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
/** A WebSocket constructor: the browser's, or `WebSocket` from the `ws` package in Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

/** The typed events of a `Client` (`client.on("message", (msg) => ...)`). */
export interface ClientEvents {
  /** A message of any conversation; per conversation in seq order, exactly once. */
  message: Message;
  /** Someone (or another device of yours) read a conversation up to a seq (READ_STATE). */
  readState: ReadStateBody;
  /**
   * A notice in your inbox (NOTIFY), once per nseq; after connecting, also
   * the ones this device has not acknowledged yet (`inboxBackfill`).
   */
  notice: Notice;
  /** Your settings of a conversation changed on another device (CONV_STATE). */
  convState: ConvStateBody;
  /** Someone is typing, or stopped (TYPING push). */
  typing: TypingEventBody;
  /** Friends' presence: the snapshot after `setPresence`, then changes (PRESENCE). */
  presence: PresenceBody;
  /** Call signalling (CALL_EVENT). */
  call: CallEventBody;
  /** The server is shutting down; the client reconnects after `reconnect_after_ms`. */
  goaway: GoAwayBody;
  /** After each (re)connect: the conversations changed since the last sync (all, the first time). */
  sync: SyncReply;
  /** The connection's state changed. */
  state: ConnectionState;
  /** Connected (HELLO accepted and the first SYNC done). */
  connected: HelloReply;
  /** The client ended for good (`close()`, or a final close such as 4001). */
  closed: ClientClosedError;
  /** Something went wrong that the client handled (a bad frame, a failed backfill, a listener that threw). */
  error: Error;
}

export interface ClientOptions {
  /** The gateway URL, `ws://host:port/ws` (login returns it as `ws_url`). */
  url: string;
  /** An access token, or a `TokenSource` that renews it (`http.credentials` after `http.login`). */
  credentials: TokenSource | string;
  /** This device's id (1-64 chars of [A-Za-z0-9_-]): one connection per device. */
  device: string;
  /** HELLO's `platform` (default `web`). */
  platform?: string;
  /** HELLO's `client` label (default `sandcat-ts/<version>`). */
  clientName?: string;
  /** The WebSocket constructor (default: the global `WebSocket`; in Node 20 pass `ws`'s). */
  WebSocket?: WebSocketConstructor;
  /** The HTTP client, for `sendUpload` (upload, then send). */
  http?: HttpClient;
  /**
   * The last seq the application already has per cid, to resume from.
   * Without it, the first connection starts every existing conversation at
   * its newest message (only new ones are delivered); conversations created
   * later are delivered from their first message.
   */
  positions?: Record<string, number>;
  /** Deadline of one round trip (connect, HELLO, one request), ms. Default 10 000. */
  requestTimeoutMs?: number;
  /** Deadline of one API call, reconnects and resends included, ms. Default 30 000. */
  operationTimeoutMs?: number;
  /** Reconnect delay: doubles from `backoffMinMs` (default 250) to at most `backoffMaxMs` (default 30 000), with jitter. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Consecutive failed connection attempts before the client gives up (default 10; Infinity: never). */
  maxAttempts?: number;
  /** Page size of backfill PULLs (1-200, default 200). */
  pullLimit?: number;
  /** Messages buffered per conversation behind a hole (default 400). */
  maxAhead?: number;
  /** Conversations per SYNC page while recovering (1-1000, default 500). */
  syncPageSize?: number;
  /**
   * Pull the inbox notices this device has not acknowledged after each
   * (re)connect, and when a NOTIFY skips an nseq, and emit them as `notice`
   * events (default true). Acknowledge handled ones with `inboxAck`.
   */
  inboxBackfill?: boolean;
}

/** Counters, for tests and diagnostics. */
export interface ClientStatistics {
  connects: number;
  auths: number;
  pushes: number;
  duplicates: number;
  pulls: number;
  resends: number;
  skipped: number;
  closeCodes: number[];
}

export interface SendOptions {
  /** The idempotency key; default a fresh random one. Pass the same one to resend. */
  cmid?: string;
  replyTo?: number;
  mentions?: string[];
  forward?: ForwardRef;
}

/** What `send` resolves to: where the message was committed, and its cmid. */
export interface SendAck extends Ack {
  cmid: string;
}

export const VERSION = "0.1.0";
/** Close codes after which the client does not reconnect (SPEC.md §6, §8). */
export const FINAL_CLOSES: ReadonlySet<number> = new Set([4001]);
const AUTH_CLOSES = new Set([4002, 4007]);
const ABUSE_BACKOFF_MS = 60_000;
/** A session that lasted this long resets the reconnect back-off. */
const STABLE_SESSION_MS = 10_000;
const DEFAULT_RETRY_MS = 200;
/** A typing start is repeated at most this often per conversation. */
export const TYPING_REFRESH_MS = 3000;
/** Our own close codes (browsers allow 1000 and 3000-4999 only). */
const CLOSE_NORMAL = 1000;
const CLOSE_DEAD = 4000;

interface Pending {
  resolve: (body: Body) => void;
  reject: (error: Error) => void;
  onOk: ((body: Body) => void) | undefined;
  timer: ReturnType<typeof setTimeout>;
}

/** The line dropped before a request's reply came. */
class Disconnected extends Error {
  readonly code = "disconnected";
}

/** One WebSocket connection. */
class Link {
  readonly pending = new Map<number, Pending>();
  hello: HelloReply | undefined;
  /** HELLO accepted and the recovery SYNC done: requests may go out. */
  ready = false;
  draining = false;
  dead = false;
  lastHeard = Date.now();
  maxFrameBytes = MAX_FRAME_BYTES;
  /** Pushes that arrived before the recovery SYNC's reply, offered after it. */
  early: Message[] | null = [];
  timers: ReturnType<typeof setTimeout>[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private finish!: (info: { code: number; reason: string }) => void;
  private rid = 0;

  constructor(readonly ws: WebSocketLike) {
    this.closed = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  nextRid(): number {
    this.rid = this.rid >= 2 ** 32 - 1 ? 1 : this.rid + 1;
    return this.rid;
  }

  /** Sends a request and resolves with the OK body (rejects with the ERR as a SandcatError). */
  call(op: number, body: Body, timeoutMs: number, onOk?: (body: Body) => void): Promise<Body> {
    if (this.dead) return Promise.reject(new Disconnected("not connected"));
    const rid = this.nextRid();
    const bytes = encodeFrame({ op, rid, body });
    if (bytes.length > this.maxFrameBytes) {
      // The server would close the connection (1009), and a resend would do it again.
      const error = new SandcatError("too_large", `the frame is ${bytes.length} bytes, over the server's max_frame_bytes (${this.maxFrameBytes})`);
      return Promise.reject(error);
    }
    return new Promise<Body>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new TimeoutError(`no reply to op ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(rid, { resolve, reject, onOk, timer });
      try {
        this.ws.send(bytes);
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(rid);
        reject(new Disconnected(`send failed: ${String(error)}`));
      }
    });
  }

  /** Marks the link dead (once): fails what is in flight and stops its timers. */
  end(code: number, reason: string, closeSocket: boolean): void {
    if (this.dead) return;
    this.dead = true;
    this.ready = false;
    for (const timer of this.timers) clearTimeout(timer);
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new Disconnected(`connection closed (${code})`));
    }
    this.pending.clear();
    if (closeSocket) {
      try {
        this.ws.close(code === CLOSE_NORMAL ? CLOSE_NORMAL : CLOSE_DEAD, reason.slice(0, 100));
      } catch {
        // Already closing: nothing more to do.
      }
    }
    this.finish({ code, reason });
  }
}

/** A connected device: `new Client(options)`, then `await client.connect()`. */
export class Client extends Emitter<ClientEvents> {
  readonly device: string;
  private readonly options: Required<
    Pick<ClientOptions, "requestTimeoutMs" | "operationTimeoutMs" | "backoffMinMs" | "backoffMaxMs" | "maxAttempts" | "pullLimit">
  >;
  private readonly credentials: TokenSource;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly timeline: Timeline;
  private readonly resume: boolean;
  private link: Link | null = null;
  private waiters: { sending: boolean; resolve: (link: Link) => void; reject: (error: Error) => void }[] = [];
  private stopped: ClientClosedError | null = null;
  private running: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private version: number | undefined;
  private synced = false;
  private pulling = false;
  private presenceSubscribed = false;
  /** When this client last sent a typing start, per cid. */
  private readonly typingSince = new Map<string, number>();
  private readonly syncPageSize: number;
  private goaway: GoAwayBody | null = null;
  private connectionState: ConnectionState = "closed";
  private seenNotices = new Set<number>();
  /** The highest nseq handed to the application (0: none yet). */
  private inboxSeen = 0;
  private inboxPulling = false;
  private userId = "";
  private readonly stats: ClientStatistics = {
    connects: 0,
    auths: 0,
    pushes: 0,
    duplicates: 0,
    pulls: 0,
    resends: 0,
    skipped: 0,
    closeCodes: [],
  };

  constructor(private readonly config: ClientOptions) {
    super();
    this.device = config.device;
    this.credentials = typeof config.credentials === "string" ? new StaticToken(config.credentials) : config.credentials;
    const ws = config.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (ws === undefined) throw new TypeError("no WebSocket: pass options.WebSocket (in Node 20: `import { WebSocket } from \"ws\"`)");
    this.WebSocketImpl = ws;
    this.options = {
      requestTimeoutMs: config.requestTimeoutMs ?? 10_000,
      operationTimeoutMs: config.operationTimeoutMs ?? 30_000,
      backoffMinMs: config.backoffMinMs ?? 250,
      backoffMaxMs: config.backoffMaxMs ?? 30_000,
      maxAttempts: config.maxAttempts ?? 10,
      pullLimit: config.pullLimit ?? 200,
    };
    this.resume = config.positions !== undefined;
    this.syncPageSize = config.syncPageSize ?? 500;
    this.timeline = new Timeline(config.positions ?? {}, config.maxAhead ?? 400);
    checkBody(Op.HELLO, { device: config.device, platform: config.platform ?? "web" }, "client", 1);
  }

  /** The user id the server authenticated (after `connect`). */
  get user(): string {
    return this.userId;
  }

  get state(): ConnectionState {
    return this.connectionState;
  }

  /** The last SYNC version seen (pass nothing: the client keeps it across reconnects). */
  get syncVersion(): number | undefined {
    return this.version;
  }

  /** The last seq delivered per conversation; pass as `positions` to resume later. */
  positions(): Record<string, number> {
    return this.timeline.positions();
  }

  statistics(): ClientStatistics {
    return { ...this.stats, duplicates: this.timeline.duplicates, closeCodes: [...this.stats.closeCodes] };
  }

  /**
   * Connects and resolves once the first connection is ready (HELLO
   * accepted, first SYNC done). From then on the client stays connected
   * until `close()` or a final close.
   *
   * @throws ClientClosedError the client gave up (credentials refused, too many failed attempts).
   */
  async connect(): Promise<HelloReply> {
    if (this.stopped !== null) throw this.stopped;
    const live = this.link;
    if (live !== null && live.ready && live.hello !== undefined) return live.hello;
    const first = this.next("connected");
    const ended = this.next("closed").then((error) => Promise.reject(error));
    if (this.running === null) this.running = this.run();
    return Promise.race([first, ended]);
  }

  /**
   * Skips the wait before the next reconnect attempt (a browser's `online`
   * event, an app coming to the foreground). Does nothing while connected.
   */
  reconnectNow(): void {
    this.wake?.();
  }

  /** Closes the connection (1000) and stops the client. Pending requests fail with ClientClosedError. */
  async close(): Promise<void> {
    this.stop(new ClientClosedError("the client was closed"));
    await this.running;
  }

  // -- messages -------------------------------------------------------------------------

  /**
   * The `message` events as an async iterator (`for await (const msg of
   * client.messages())`), for bots and scripts. Messages are queued from the
   * call on; the iteration ends when the client closes.
   */
  messages(): AsyncIterableIterator<Message> {
    const queue: Message[] = [];
    let wake: (() => void) | null = null;
    let ended = this.stopped !== null;
    const stopMessages = this.on("message", (msg) => {
      queue.push(msg);
      wake?.();
    });
    const stopClosed = this.on("closed", () => {
      ended = true;
      wake?.();
    });
    const finish = (): IteratorReturnResult<undefined> => {
      stopMessages();
      stopClosed();
      return { done: true, value: undefined };
    };
    const iterator: AsyncIterableIterator<Message> = {
      next: async () => {
        while (queue.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        const msg = queue.shift();
        return msg === undefined ? finish() : { done: false, value: msg };
      },
      return: async () => finish(),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * Sends a message of any kind (SPEC.md §4.6, §9). Resent with the same
   * cmid across reconnects until acked; the message is also delivered as a
   * `message` event, in its conversation's order.
   */
  async send(cid: string, kind: number, body: unknown, options: SendOptions = {}): Promise<SendAck> {
    const cmid = options.cmid ?? newCmid();
    const frame: Body = { cid, cmid, kind, body };
    if (options.replyTo !== undefined) frame.reply_to = options.replyTo;
    if (options.mentions !== undefined) frame.mentions = options.mentions;
    if (options.forward !== undefined) frame.forward = options.forward;
    const own = (ack: Body): Message => {
      const msg: Message = { ...(ack as unknown as Ack), from: this.userId, kind, body, cmid, device: this.device };
      if (options.replyTo !== undefined) msg.reply_to = options.replyTo;
      if (options.mentions !== undefined) msg.mentions = options.mentions;
      return msg;
    };
    return this.committing(Op.SEND, frame, own);
  }

  /** Sends a text message (kind 1). */
  sendText(cid: string, text: string, options: SendOptions = {}): Promise<SendAck> {
    return this.send(cid, Kind.TEXT, { text }, options);
  }

  /** Sends an emoji, or a sticker as `:sticker_code:` (kind 6). */
  sendEmoji(cid: string, emoji: string, options: SendOptions = {}): Promise<SendAck> {
    return this.send(cid, Kind.EMOJI, { emoji }, options);
  }

  /** Sends a location (kind 7): latitude, longitude, and optionally a place name and address. */
  sendLocation(cid: string, location: { lat: number; lon: number; name?: string; address?: string }, options: SendOptions = {}): Promise<SendAck> {
    return this.send(cid, Kind.LOCATION, { ...location }, options);
  }

  /** Shares a user as a contact card (kind 10); the display fields are hints (SPEC.md §9). */
  sendContact(
    cid: string,
    card: { user: string; username?: string; display_name?: string; avatar?: string },
    options: SendOptions = {},
  ): Promise<SendAck> {
    return this.send(cid, Kind.CONTACT, { ...card }, options);
  }

  /** Forwards `message` (as received, or from history) into `cid`: same kind and body (SPEC.md §5.14). */
  forward(cid: string, message: Message, options: Omit<SendOptions, "forward"> = {}): Promise<SendAck> {
    return this.send(cid, message.kind, message.body, { ...options, forward: { cid: message.cid, seq: message.seq } });
  }

  /**
   * Uploads a file over HTTP, then sends it as an image, file, voice or
   * video message (kinds 2-5) built from the upload's reply (`attachment`).
   * Needs `options.http` of the client.
   */
  async sendUpload(
    cid: string,
    data: Upload,
    options: SendOptions & AttachmentOptions & { kind: UploadKind; name?: string; contentType?: string },
  ): Promise<SendAck & { file: string; upload: FileInfo }> {
    const http = this.config.http;
    if (http === undefined) throw new TypeError("sendUpload needs options.http (an HttpClient)");
    const { file } = await http.uploadFile(data, { kind: options.kind, name: options.name, contentType: options.contentType });
    const ack = await this.sendAttachment(cid, file, options);
    return { ...ack, file: file.id, upload: file };
  }

  /** Sends an uploaded file (the `file` of an upload reply) as a message of kind 2-5. */
  sendAttachment(cid: string, file: FileInfo, options: SendOptions & AttachmentOptions = {}): Promise<SendAck> {
    const [kind, body] = attachment(file, options);
    return this.send(cid, kind, body, options);
  }

  /** Recalls (unsends) message `seq` of `cid`: the ack of the recall event (kind 11). */
  recall(cid: string, seq: number, options: { cmid?: string } = {}): Promise<SendAck> {
    const cmid = options.cmid ?? newCmid();
    const own = (ack: Body): Message => ({ ...(ack as unknown as Ack), from: this.userId, kind: Kind.RECALL, body: { seq }, cmid, device: this.device });
    return this.committing(Op.RECALL, { cid, cmid, seq }, own);
  }

  /** Replaces the text of message `seq` of `cid`: the ack of the edit event (kind 12). */
  edit(cid: string, seq: number, text: string, options: { cmid?: string } = {}): Promise<SendAck> {
    const cmid = options.cmid ?? newCmid();
    const body = { text };
    const own = (ack: Body): Message => ({
      ...(ack as unknown as Ack),
      from: this.userId,
      kind: Kind.EDIT,
      body: { seq, body },
      cmid,
      device: this.device,
    });
    return this.committing(Op.EDIT, { cid, cmid, seq, body }, own);
  }

  /** Hides messages of `cid` from you (every device), not from others. */
  async hide(cid: string, seqs: number[]): Promise<void> {
    await this.request(Op.HIDE, { cid, seqs });
  }

  /** A page of `cid` in ascending order: after `after`, before `before`, or the latest. */
  async history(cid: string, options: { before?: number; after?: number; limit?: number } = {}): Promise<Page> {
    return (await this.request(Op.HISTORY, { cid, ...options })) as unknown as Page;
  }

  /** One message by its mid (SandcatError `not_found` if you may not see it). */
  async message(mid: string): Promise<Message> {
    const page = (await this.request(Op.HISTORY, { mid })) as unknown as Page;
    return page.msgs[0] as Message;
  }

  /** Messages of `cid` with seq > `after`, ascending (PULL). */
  async pull(cid: string, after = 0, limit?: number): Promise<Page> {
    const body: Body = { cid, after };
    if (limit !== undefined) body.limit = limit;
    return (await this.request(Op.PULL, body)) as unknown as Page;
  }

  /** The conversation list: every conversation, or those changed after `since` (SYNC). */
  async sync(options: { since?: number; limit?: number } = {}): Promise<SyncReply> {
    return (await this.request(Op.SYNC, { ...options })) as unknown as SyncReply;
  }

  /** Marks `cid` read up to `seq` (your other devices, and a direct peer with receipts on, are told). */
  async read(cid: string, seq: number): Promise<void> {
    await this.request(Op.READ, { cid, seq });
  }

  /** Which members of a group have read up to `seq` (one page). */
  async readers(cid: string, seq: number, options: { after?: string; limit?: number } = {}): Promise<ReadersReply> {
    return (await this.request(Op.READERS, { cid, seq, ...options })) as unknown as ReadersReply;
  }

  /** Changes your own settings of `cid` (CONV_SET): pin, mute, hide, clear history for you. */
  async setConversation(
    cid: string,
    settings: { pinned?: boolean; muted?: boolean; hidden?: boolean; clear?: boolean },
  ): Promise<ConvStateBody> {
    return (await this.request(Op.CONV_SET, { cid, ...settings })) as unknown as ConvStateBody;
  }

  // -- inbox ------------------------------------------------------------------------------

  /** Inbox notices with nseq > `after` (default: after this device's ack). */
  async inbox(options: { after?: number; limit?: number } = {}): Promise<InboxPage> {
    return (await this.request(Op.INBOX_PULL, { ...options })) as unknown as InboxPage;
  }

  /** This device has handled every notice up to `upto`. */
  async inboxAck(upto: number): Promise<void> {
    await this.request(Op.INBOX_ACK, { upto });
  }

  // -- typing, presence, calls ------------------------------------------------------------

  /**
   * You are typing in `cid` (or stopped). Call it on every keystroke: a
   * start goes out at most once per `TYPING_REFRESH_MS` per conversation
   * (SPEC.md §5.9: refresh every 3-5 s, within the server's rate limit), a
   * stop only after a start. Best effort: not retried.
   */
  async typing(cid: string, active = true): Promise<void> {
    const last = this.typingSince.get(cid);
    if (active && last !== undefined && Date.now() - last < TYPING_REFRESH_MS) return;
    if (!active && last === undefined) return;
    if (active) this.typingSince.set(cid, Date.now());
    else this.typingSince.delete(cid);
    try {
      await this.request(Op.TYPING, { cid, active }, { retry: false });
    } catch (error) {
      if (active) this.typingSince.delete(cid); // not shown: let the next keystroke try again
      throw error;
    }
  }

  /**
   * Subscribes this connection to friends' presence (kept across
   * reconnects) and optionally sets how you appear. The snapshot is also
   * emitted as a `presence` event.
   */
  async setPresence(state?: PresenceState): Promise<PresenceReply> {
    const body: Body = state === undefined ? {} : { state };
    const reply = (await this.request(Op.PRESENCE_SET, body)) as unknown as PresenceReply;
    this.presenceSubscribed = true;
    this.emit("presence", { users: reply.users });
    return reply;
  }

  /** One step of call signalling (SPEC.md §5.11). Not retried. */
  async call(body: CallBody): Promise<Body> {
    return this.request(Op.CALL, { ...body }, { retry: false });
  }

  /** Rings `peer`: `{call, state}` (`ringing`, or `busy`). */
  async invite(peer: string, media: CallMedia = "audio"): Promise<CallPlaced> {
    return (await this.call({ action: "invite", peer, media })) as unknown as CallPlaced;
  }

  async acceptCall(call: string): Promise<void> {
    await this.call({ action: "accept", call });
  }

  async rejectCall(call: string): Promise<void> {
    await this.call({ action: "reject", call });
  }

  async cancelCall(call: string): Promise<void> {
    await this.call({ action: "cancel", call });
  }

  async hangup(call: string): Promise<void> {
    await this.call({ action: "hangup", call });
  }

  async offer(call: string, sdp: string): Promise<void> {
    await this.call({ action: "offer", call, sdp });
  }

  async answer(call: string, sdp: string): Promise<void> {
    await this.call({ action: "answer", call, sdp });
  }

  /** Relays an ICE candidate (`candidate: ""` ends the candidates). */
  async candidate(call: string, candidate: IceCandidate): Promise<void> {
    await this.call({ action: "candidate", call, candidate });
  }

  /** Round trip to the server: its clock (ms since the epoch). */
  async ping(): Promise<number> {
    const reply = await this.request(Op.PING, {});
    return reply.server_time as number;
  }

  // -- requests ---------------------------------------------------------------------------

  /**
   * Sends any request frame and resolves with its OK body. Checks the fields
   * first (RequestError `bad_request`); retries on the next connection if
   * the line drops (unless `retry: false`) and after `unavailable`.
   */
  async request(op: number, body: Body, options: { retry?: boolean; onOk?: (body: Body) => void; sending?: boolean } = {}): Promise<Body> {
    checkBody(op, body, "client", 1);
    const problem = unencodable(body);
    if (problem !== null) throw new RequestError("bad_request", problem, 1);
    const retry = options.retry ?? true;
    const deadline = Date.now() + this.options.operationTimeoutMs;
    let attempt = 0;
    let internalRetried = false;
    for (;;) {
      if (attempt++ > 0 && options.sending) this.stats.resends += 1;
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`op ${op}: no reply within ${this.options.operationTimeoutMs} ms`);
      const link = await this.nextLink(options.sending ?? false, left);
      try {
        return await link.call(op, body, Math.min(this.options.requestTimeoutMs, left), options.onOk);
      } catch (error) {
        if (error instanceof Disconnected || error instanceof TimeoutError) {
          if (error instanceof TimeoutError && Date.now() - link.lastHeard >= this.options.requestTimeoutMs) {
            // Nothing at all from the server for a whole round trip: the line is dead.
            link.end(CLOSE_DEAD, "no reply from the server", true);
          }
          if (!retry) throw error instanceof Disconnected ? new SandcatError("unavailable", error.message) : error;
          if (this.stopped !== null) throw this.stopped;
          continue;
        }
        if (error instanceof SandcatError && error.code === "internal" && retry && !internalRetried) {
          // The server closes with 1011 after ERR internal: resend once on the next connection (SPEC.md §8).
          internalRetried = true;
          continue;
        }
        if (error instanceof SandcatError && error.code === "unavailable" && retry) {
          await sleep(Math.min(error.retryAfterMs ?? DEFAULT_RETRY_MS, Math.max(0, deadline - Date.now())));
          continue;
        }
        throw error;
      }
    }
  }

  /** SEND, RECALL, EDIT: the device's own copy joins the timeline when the ack arrives. */
  private async committing(op: number, body: Body, own: (ack: Body) => Message): Promise<SendAck> {
    const ack = await this.request(op, body, { sending: true, onOk: (ok) => this.deliver(own(ok)) });
    return { ...(ack as unknown as Ack), cmid: body.cmid as string };
  }

  private nextLink(sending: boolean, timeoutMs: number): Promise<Link> {
    if (this.stopped !== null) return Promise.reject(this.stopped);
    const link = this.link;
    if (link !== null && link.ready && !(sending && link.draining)) return Promise.resolve(link);
    return new Promise<Link>((resolve, reject) => {
      const waiter = {
        sending,
        resolve: (l: Link) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new TimeoutError(`not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  // -- the connection loop ----------------------------------------------------------------

  private setState(state: ConnectionState): void {
    if (state !== this.connectionState) {
      this.connectionState = state;
      this.emit("state", state);
    }
  }

  private stop(error: ClientClosedError): void {
    if (this.stopped !== null) return;
    this.stopped = error;
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters = [];
    this.link?.end(CLOSE_NORMAL, "client closed", true);
    this.wake?.();
    this.setState("closed");
    this.emit("closed", error);
  }

  private async run(): Promise<void> {
    let failures = 0; // consecutive attempts that never got a HELLO reply
    let level = 0; // back-off level: only a session that lasted resets it
    let renew = false;
    let first = true;
    while (this.stopped === null) {
      this.setState(first ? "connecting" : "reconnecting");
      let info: { code: number; reason: string };
      let helloed = false;
      try {
        const link = await this.open(renew);
        const since = Date.now();
        helloed = true;
        renew = false;
        failures = 0;
        first = false;
        info = await link.closed;
        if (Date.now() - since >= STABLE_SESSION_MS) level = 0;
      } catch (error) {
        if (this.stopped !== null) break;
        if (error instanceof HttpError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429) {
          // The credentials cannot be renewed (refresh token refused): the end.
          this.stop(new ClientClosedError(`cannot renew the access token: ${error.message}`, 4002));
          break;
        }
        info = error instanceof CloseInfo ? error.info : { code: 0, reason: String(error) };
      }
      this.link = null;
      if (this.stopped !== null) break;
      if (!first) this.setState("reconnecting");
      this.stats.closeCodes.push(info.code);
      if (FINAL_CLOSES.has(info.code)) {
        this.stop(new ClientClosedError(`closed by the server: ${info.code} ${info.reason}`, info.code));
        break;
      }
      let delay: number;
      if (AUTH_CLOSES.has(info.code)) {
        if (renew && !helloed) {
          // A renewed token was refused too.
          this.stop(new ClientClosedError(`the server refused the credentials: ${info.code} ${info.reason}`, info.code));
          break;
        }
        if (!this.credentials.renewable) {
          this.stop(new ClientClosedError(`the session ended (${info.code} ${info.reason}) and the token cannot be renewed`, info.code));
          break;
        }
        renew = true;
        delay = Math.random() * this.options.backoffMinMs;
      } else if (this.goaway !== null) {
        const after = this.goaway.reconnect_after_ms;
        delay = after + Math.random() * Math.max(250, after / 4);
        this.goaway = null;
      } else if (info.code === 4004) {
        delay = ABUSE_BACKOFF_MS;
      } else {
        failures += helloed ? 0 : 1;
        if (failures >= this.options.maxAttempts) {
          this.stop(new ClientClosedError(`gave up after ${failures} failed connection attempts (last: ${info.code} ${info.reason})`, info.code || null));
          break;
        }
        // The first reconnect after a session that lasted is quick (jitter only);
        // then the delay doubles, also when sessions keep ending at once.
        const base = Math.min(this.options.backoffMaxMs, this.options.backoffMinMs * 2 ** level);
        delay = level === 0 ? Math.random() * this.options.backoffMinMs : base / 2 + (Math.random() * base) / 2;
        level += 1;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Opens a connection and says HELLO; resolves with the live link (recovery runs on). */
  private async open(renew: boolean): Promise<Link> {
    const token = await this.credentials.accessToken(renew);
    const ws = new this.WebSocketImpl(this.config.url, [SUBPROTOCOL]) as WebSocketLike;
    ws.binaryType = "arraybuffer";
    const link = new Link(ws);
    this.link = link;
    const opened = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CloseInfo(0, "connect timeout")), this.options.requestTimeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.onerror = () => undefined; // the close event follows and says more
      ws.onclose = (event) => {
        clearTimeout(timer);
        link.end(event.code, event.reason, false);
        reject(new CloseInfo(event.code, event.reason || "connection failed"));
      };
    });
    ws.onmessage = (event) => this.receive(link, event.data);
    try {
      await opened;
    } catch (error) {
      link.end(0, "connect failed", true);
      throw error;
    }
    ws.onclose = (event) => link.end(event.code, event.reason, false);
    if (this.stopped !== null) {
      link.end(CLOSE_NORMAL, "client closed", true);
      throw this.stopped;
    }
    const hello: Body = { token, device: this.device, platform: this.config.platform ?? "web", client: this.config.clientName ?? `sandcat-ts/${VERSION}` };
    let reply: Body;
    try {
      reply = await link.call(Op.HELLO, hello, this.options.requestTimeoutMs);
    } catch (error) {
      // A refused HELLO is followed by close 4002: report that close.
      const refused = error instanceof SandcatError && error.code === "unauthorized";
      link.end(refused ? 4002 : 0, refused ? error.message : String(error), true);
      throw new CloseInfo(refused ? 4002 : 0, String((error as Error).message));
    }
    link.hello = reply as unknown as HelloReply;
    link.maxFrameBytes = link.hello.max_frame_bytes || MAX_FRAME_BYTES;
    this.userId = link.hello.user;
    this.stats.connects += 1;
    this.keepAlive(link);
    this.scheduleAuth(link);
    void this.recover(link);
    return link;
  }

  /** After HELLO: SYNC from the last version, then let requests through and pull the holes. */
  private async recover(link: Link): Promise<void> {
    const first = !this.synced;
    try {
      const sync = await this.syncPages(link);
      for (const conv of sync.convs) {
        if (first && !this.resume) this.timeline.start(conv.cid, conv.max_seq);
        this.timeline.skipTo(conv.cid, conv.min_seq);
        this.timeline.noteMax(conv.cid, conv.max_seq);
      }
      this.version = sync.version;
      this.synced = true;
      this.emit("sync", sync);
      if (this.config.inboxBackfill !== false && sync.inbox_max > this.inboxSeen) void this.backfillInbox(link);
      if (this.presenceSubscribed) {
        const presence = (await link.call(Op.PRESENCE_SET, {}, this.options.requestTimeoutMs)) as unknown as PresenceReply;
        this.emit("presence", { users: presence.users });
      }
    } catch (error) {
      if (link.dead) return;
      this.report(error);
      this.synced = true;
    }
    if (link.dead) return;
    const early = link.early ?? [];
    link.early = null;
    for (const msg of early) this.deliver(msg);
    link.ready = true;
    this.setState("connected");
    this.emit("connected", link.hello as HelloReply);
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) {
      if (waiter.sending && link.draining) this.waiters.push(waiter);
      else waiter.resolve(link);
    }
    this.pump();
  }

  /**
   * SYNC from the last version in pages of `syncPageSize` (SPEC.md §5.6),
   * merged into one reply: every conversation changed, and the final version.
   */
  private async syncPages(link: Link): Promise<SyncReply> {
    const convs = new Map<string, SyncReply["convs"][number]>();
    let since = this.version;
    for (;;) {
      const body: Body = { limit: this.syncPageSize };
      if (since !== undefined) body.since = since;
      const page = (await link.call(Op.SYNC, body, this.options.requestTimeoutMs)) as unknown as SyncReply;
      for (const conv of page.convs) convs.set(conv.cid, conv);
      since = page.version;
      if (!page.more) return { convs: [...convs.values()], version: page.version, inbox_max: page.inbox_max };
    }
  }

  private keepAlive(link: Link): void {
    const interval = Math.max(1000, link.hello?.heartbeat_ms ?? 25_000);
    const tick = (): void => {
      if (link.dead) return;
      if (Date.now() - link.lastHeard >= interval) {
        link.call(Op.PING, {}, this.options.requestTimeoutMs).catch((error: unknown) => {
          if (error instanceof TimeoutError) link.end(CLOSE_DEAD, "no answer to PING", true);
        });
      }
      link.timers.push(setTimeout(tick, interval));
    };
    link.timers.push(setTimeout(tick, interval));
  }

  /** Presents a fresh token with AUTH before the current one expires (SPEC.md §4.5, §6). */
  private scheduleAuth(link: Link): void {
    const at = this.credentials.renewAt;
    if (at === undefined || link.dead) return;
    const delay = Math.max(1000, at - Date.now());
    link.timers.push(
      setTimeout(() => {
        void (async () => {
          try {
            const token = await this.credentials.accessToken();
            await link.call(Op.AUTH, { token }, this.options.requestTimeoutMs);
            this.stats.auths += 1;
          } catch (error) {
            if (link.dead) return;
            this.report(error);
            // Try again a little later (the token is still valid until expiry plus the server's grace).
            link.timers.push(setTimeout(() => this.scheduleAuth(link), 5000));
            return;
          }
          this.scheduleAuth(link);
        })();
      }, delay),
    );
  }

  private receive(link: Link, data: unknown): void {
    if (link.dead) return;
    link.lastHeard = Date.now();
    let frame: Frame;
    try {
      if (!(data instanceof ArrayBuffer || data instanceof Uint8Array)) throw new FrameError("a text message: frames are binary");
      frame = decodeFrame(data, "server", Number.MAX_SAFE_INTEGER);
    } catch (error) {
      if (error instanceof RequestError) {
        // A valid frame we cannot use (an op from a newer server, a bad field): skip it.
        const pending = error.rid === 0 ? undefined : link.pending.get(error.rid);
        if (pending !== undefined) {
          link.pending.delete(error.rid);
          clearTimeout(pending.timer);
          pending.reject(error);
        } else if (error.code !== "unknown_op") {
          this.report(error);
        }
        return;
      }
      this.report(error);
      link.end(CLOSE_DEAD, "bad frame from the server", true);
      return;
    }
    if (frame.rid !== 0) {
      const pending = link.pending.get(frame.rid);
      if (pending === undefined) return; // a reply after its request timed out
      link.pending.delete(frame.rid);
      clearTimeout(pending.timer);
      if (frame.op === Op.OK) {
        try {
          pending.onOk?.(frame.body);
        } finally {
          pending.resolve(frame.body);
        }
      } else {
        const err = frame.body as unknown as ErrBody;
        pending.reject(new SandcatError(err.code, err.message, err.retry_after_ms));
      }
      return;
    }
    this.stats.pushes += 1;
    const body = frame.body;
    switch (frame.op) {
      case Op.MSG:
        if (link.early !== null) link.early.push(body as unknown as Message);
        else this.deliver(body as unknown as Message);
        break;
      case Op.READ_STATE:
        this.emit("readState", body as unknown as ReadStateBody);
        break;
      case Op.NOTIFY: {
        const notice = body as unknown as Notice;
        const gap = this.inboxSeen > 0 && notice.nseq > this.inboxSeen + 1;
        this.notify(notice);
        if (gap && link.ready) void this.backfillInbox(link);
        break;
      }
      case Op.CONV_STATE:
        this.emit("convState", body as unknown as ConvStateBody);
        break;
      case Op.TYPING:
        this.emit("typing", body as unknown as TypingEventBody);
        break;
      case Op.PRESENCE:
        this.emit("presence", body as unknown as PresenceBody);
        break;
      case Op.CALL_EVENT:
        this.emit("call", body as unknown as CallEventBody);
        break;
      case Op.GOAWAY:
        link.draining = true;
        this.goaway = body as unknown as GoAwayBody;
        this.emit("goaway", this.goaway);
        break;
    }
  }

  // -- delivery ---------------------------------------------------------------------------

  private deliver(msg: Message): void {
    if (this.timeline.offer(msg)) this.pump();
  }

  /** Hands out every message that is next in its conversation; pulls the first hole. */
  private pump(): void {
    for (let msg = this.timeline.popReady(); msg !== null; msg = this.timeline.popReady()) {
      this.emit("message", msg);
    }
    const link = this.link;
    if (this.pulling || link === null || !link.ready) return;
    const hole = this.timeline.missing();
    if (hole === null) return;
    this.pulling = true;
    void this.backfill(link, hole[0], hole[1]).finally(() => {
      this.pulling = false;
      if (!link.dead) this.pump();
    });
  }

  private async backfill(link: Link, cid: string, after: number): Promise<void> {
    let page: Page;
    try {
      page = (await link.call(Op.PULL, { cid, after, limit: this.options.pullLimit }, this.options.requestTimeoutMs)) as unknown as Page;
    } catch (error) {
      if (error instanceof SandcatError) {
        // Not a member any more (or no such conversation): nothing to fill.
        this.report(error);
        this.stats.skipped += this.timeline.settle(cid, after);
      }
      return;
    }
    this.stats.pulls += 1;
    this.timeline.skipTo(cid, page.min_seq);
    for (const msg of page.msgs) this.timeline.offer(msg);
    this.stats.skipped += this.timeline.pulled(
      cid,
      after,
      page.msgs.map((m) => m.seq),
    );
    if (!page.msgs.some((m) => m.seq > after)) this.stats.skipped += this.timeline.settle(cid, page.max_seq);
  }

  private notify(notice: Notice): void {
    if (this.seenNotices.has(notice.nseq)) return;
    this.seenNotices.add(notice.nseq);
    if (this.seenNotices.size > 1000) this.seenNotices.delete(this.seenNotices.values().next().value as number);
    this.inboxSeen = Math.max(this.inboxSeen, notice.nseq);
    this.emit("notice", notice);
  }

  /**
   * Pulls the notices this device has not seen (SPEC.md §5.8: a gap in nseq,
   * or SYNC's inbox_max above what it holds): from this device's ack the
   * first time, then after the highest nseq seen.
   */
  private async backfillInbox(link: Link): Promise<void> {
    if (this.inboxPulling) return;
    this.inboxPulling = true;
    try {
      for (;;) {
        const body: Body = this.inboxSeen > 0 ? { after: this.inboxSeen, limit: 200 } : { limit: 200 };
        const page = (await link.call(Op.INBOX_PULL, body, this.options.requestTimeoutMs)) as unknown as InboxPage;
        for (const notice of page.notices) this.notify(notice);
        if (!page.more || page.notices.length === 0) break;
      }
    } catch (error) {
      if (!link.dead) this.report(error);
    } finally {
      this.inboxPulling = false;
    }
  }

  private report(error: unknown): void {
    this.emit("error", error instanceof Error ? error : new Error(String(error)));
  }

  protected override onListenerError(error: unknown, event: string): void {
    if (event === "error") return; // an error listener that throws: nowhere left to report it
    this.report(error);
  }
}

export interface AttachmentOptions {
  /** The message kind (2-5); default the upload's kind's (image 2, file 3, voice 4, video 5). */
  messageKind?: number;
  /** The file name shown (default the upload's). */
  name?: string;
  /** Image and video: the id of a separate image upload to show as the preview. */
  thumb?: string;
  /** What the server could not read from the bytes: a video's size, a voice note's length. */
  width?: number;
  height?: number;
  durationMs?: number;
}

const MESSAGE_KINDS: Record<string, number> = { image: Kind.IMAGE, file: Kind.FILE, voice: Kind.VOICE, video: Kind.VIDEO };
const NEEDED: Record<number, readonly string[]> = {
  [Kind.IMAGE]: ["width", "height"],
  [Kind.FILE]: ["name"],
  [Kind.VOICE]: ["duration_ms"],
  [Kind.VIDEO]: ["duration_ms", "width", "height"],
};
const OPTIONAL: Record<number, readonly string[]> = { [Kind.IMAGE]: ["thumb", "name"], [Kind.VIDEO]: ["thumb"] };

/**
 * The `[kind, body]` of the message that sends upload `file` (SPEC.md §13,
 * "From upload to message"): `file`, `mime` and `size` from the upload,
 * plus what the kind needs.
 *
 * @throws TypeError the kind needs a field neither the upload nor `options` give.
 */
export function attachment(file: FileInfo, options: AttachmentOptions = {}): [number, Record<string, unknown>] {
  const kind = options.messageKind ?? MESSAGE_KINDS[file.kind] ?? Kind.FILE;
  const needed = NEEDED[kind];
  if (needed === undefined) throw new TypeError(`kind ${kind}: not a file message kind (2-5)`);
  const given: Record<string, unknown> = {
    width: options.width ?? file.width ?? undefined,
    height: options.height ?? file.height ?? undefined,
    duration_ms: options.durationMs ?? file.duration_ms ?? undefined,
    name: options.name || file.name || undefined,
    thumb: options.thumb,
  };
  const body: Record<string, unknown> = { file: file.id, mime: file.content_type, size: file.size };
  for (const key of needed) {
    if (given[key] === undefined) throw new TypeError(`${key}: required for kind ${kind}, not known from the upload`);
    body[key] = given[key];
  }
  for (const key of OPTIONAL[kind] ?? []) if (given[key] !== undefined) body[key] = given[key];
  return [kind, body];
}

/** A connection attempt that ended with a close code. */
class CloseInfo extends Error {
  readonly info: { code: number; reason: string };
  constructor(code: number, reason: string) {
    super(`${code} ${reason}`);
    this.info = { code, reason };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh client message id: 32 hex digits from the platform's CSPRNG. */
export function newCmid(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
