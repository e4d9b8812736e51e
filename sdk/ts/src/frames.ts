// The frames of the Sandcat wire protocol, version 1: op numbers, body types
// and the order in which each body's fields are written. protocol/SPEC.md is
// the single source of all of this; section numbers below refer to it.

/** Frame types (SPEC.md §4). */
export const Op = {
  HELLO: 1,
  OK: 2,
  ERR: 3,
  PING: 4,
  AUTH: 5,
  SEND: 10,
  PULL: 11,
  SYNC: 12,
  READ: 13,
  INBOX_PULL: 14,
  INBOX_ACK: 15,
  RECALL: 16,
  EDIT: 17,
  HISTORY: 18,
  HIDE: 19,
  MSG: 20,
  READ_STATE: 21,
  NOTIFY: 22,
  CONV_STATE: 24,
  CONV_SET: 30,
  READERS: 31,
  TYPING: 40,
  PRESENCE_SET: 41,
  PRESENCE: 42,
  CALL: 43,
  CALL_EVENT: 44,
  GOAWAY: 126,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** Ops a client sends (requests, rid != 0). TYPING is both. */
export const CLIENT_OPS: ReadonlySet<number> = new Set([1, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 30, 31, 40, 41, 43]);
/** Ops a server sends: replies (OK, ERR) and pushes (rid 0). */
export const SERVER_OPS: ReadonlySet<number> = new Set([2, 3, 20, 21, 22, 24, 40, 42, 44, 126]);
/** Server pushes: always rid 0. */
export const PUSH_OPS: ReadonlySet<number> = new Set([20, 21, 22, 24, 40, 42, 44, 126]);

/** The WebSocket subprotocol of version 1 (SPEC.md §1). */
export const SUBPROTOCOL = "sandcat.v1";

/** Content kinds (SPEC.md §9). Kinds >= 1000 are custom. */
export const Kind = {
  TEXT: 1,
  IMAGE: 2,
  FILE: 3,
  VOICE: 4,
  VIDEO: 5,
  EMOJI: 6,
  LOCATION: 7,
  CALL_LOG: 8,
  SYSTEM: 9,
  CONTACT: 10,
  RECALL: 11,
  EDIT: 12,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** Everyone in a group, in SEND's `mentions` (SPEC.md §5.14). */
export const MENTION_ALL = "@all";

/** A frame: `[op, rid, body]` (SPEC.md §2). */
export interface Frame<B = Body> {
  op: number;
  rid: number;
  body: B;
}
export type Body = Record<string, unknown>;

// -- client frames (SPEC.md §4) ---------------------------------------------------

export interface HelloBody {
  token?: string;
  device: string;
  platform: string;
  client?: string;
}
export interface AuthBody {
  token: string;
}
export interface ForwardRef {
  cid: string;
  seq: number;
}
export interface SendBody {
  cid: string;
  cmid: string;
  kind: number;
  body: unknown;
  reply_to?: number;
  mentions?: string[];
  forward?: ForwardRef;
}
export interface PullBody {
  cid: string;
  after: number;
  limit?: number;
}
export interface SyncBody {
  since?: number;
  limit?: number;
}
export interface ReadBody {
  cid: string;
  seq: number;
}
export interface InboxPullBody {
  after?: number;
  limit?: number;
}
export interface InboxAckBody {
  upto: number;
}
export interface RecallBody {
  cid: string;
  cmid: string;
  seq: number;
}
export interface EditBody {
  cid: string;
  cmid: string;
  seq: number;
  body: { text: string };
}
export interface HistoryBody {
  cid?: string;
  mid?: string;
  before?: number;
  after?: number;
  limit?: number;
}
export interface HideBody {
  cid: string;
  seqs: number[];
}
export interface ConvSetBody {
  cid: string;
  pinned?: boolean;
  muted?: boolean;
  hidden?: boolean;
  clear?: boolean;
}
export interface ReadersBody {
  cid: string;
  seq: number;
  after?: string;
  limit?: number;
}
export interface TypingBody {
  cid: string;
  active?: boolean;
}
export type PresenceState = "online" | "away" | "busy" | "invisible";
export interface PresenceSetBody {
  state?: PresenceState;
}
/** WebRTC's RTCIceCandidateInit, in the protocol's spelling (SPEC.md §4.19). */
export interface IceCandidate {
  candidate: string;
  sdp_mid?: string;
  sdp_m_line_index?: number;
}
export type CallAction = "invite" | "accept" | "reject" | "cancel" | "hangup" | "offer" | "answer" | "candidate";
export type CallMedia = "audio" | "video";
export interface CallBody {
  action: CallAction;
  call?: string;
  peer?: string;
  media?: CallMedia;
  sdp?: string;
  candidate?: IceCandidate;
}

// -- content bodies (SPEC.md §9) ----------------------------------------------------

export interface TextBody {
  text: string;
}
export interface ImageBody {
  file: string;
  mime: string;
  size: number;
  width: number;
  height: number;
  thumb?: string;
  name?: string;
}
export interface FileBody {
  file: string;
  mime: string;
  size: number;
  name: string;
}
export interface VoiceBody {
  file: string;
  mime: string;
  size: number;
  duration_ms: number;
}
export interface VideoBody {
  file: string;
  mime: string;
  size: number;
  duration_ms: number;
  width: number;
  height: number;
  thumb?: string;
}
export interface EmojiBody {
  emoji: string;
}
export interface LocationBody {
  lat: number;
  lon: number;
  name?: string;
  address?: string;
}
export interface CallLogBody {
  call: string;
  media: CallMedia;
  outcome: "completed" | "missed" | "declined" | "cancelled" | "failed";
  duration_ms: number;
}
export interface SystemBody {
  event: string;
  data?: Record<string, unknown>;
}
export interface ContactBody {
  user: string;
  username?: string;
  display_name?: string;
  avatar?: string;
}
export interface RecallEventBody {
  seq: number;
}
export interface EditEventBody {
  seq: number;
  body: TextBody;
}
/** The body type of each content kind defined by SPEC.md §9 (custom kinds >= 1000: `unknown`). */
export interface BodyOfKind {
  1: TextBody;
  2: ImageBody;
  3: FileBody;
  4: VoiceBody;
  5: VideoBody;
  6: EmojiBody;
  7: LocationBody;
  8: CallLogBody;
  9: SystemBody;
  10: ContactBody;
  11: RecallEventBody;
  12: EditEventBody;
}

/** `message.body` typed by its kind: `if (isKind(msg, Kind.IMAGE)) msg.body.width`. */
export function isKind<K extends keyof BodyOfKind>(message: Message, kind: K): message is Message & { kind: K; body: BodyOfKind[K] } {
  return message.kind === kind && message.body !== null && message.body !== undefined;
}

/**
 * A value from the HTTP API's JSON (history, conversation list) as the
 * WebSocket would carry it: `{"$bin": hex}` becomes a Uint8Array and
 * `{"$float": "nan" | "inf" | "-inf"}` a number (SPEC.md §13).
 */
export function fromJsonValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJsonValue);
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value);
  if (entries.length === 1) {
    const [key, inner] = entries[0] as [string, unknown];
    if (key === "$bin" && typeof inner === "string") {
      const bytes = new Uint8Array(inner.length / 2);
      for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(inner.slice(2 * i, 2 * i + 2), 16);
      return bytes;
    }
    if (key === "$float" && typeof inner === "string") return { nan: NaN, inf: Infinity, "-inf": -Infinity }[inner] ?? NaN;
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, fromJsonValue(v)]));
}

// -- server frames ------------------------------------------------------------------

export type ErrorCode =
  | "unauthenticated"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "bad_frame"
  | "bad_request"
  | "unknown_op"
  | "too_large"
  | "rate_limited"
  | "conflict"
  | "unavailable"
  | "internal";
export const ERROR_CODES: readonly ErrorCode[] = [
  "unauthenticated",
  "unauthorized",
  "forbidden",
  "not_found",
  "bad_frame",
  "bad_request",
  "unknown_op",
  "too_large",
  "rate_limited",
  "conflict",
  "unavailable",
  "internal",
];
export interface ErrBody {
  code: ErrorCode;
  message: string;
  retry_after_ms?: number;
}
/** A MSG body (SPEC.md §4.12): pushed, and inside PULL, HISTORY and SYNC replies. */
export interface Message {
  cid: string;
  seq: number;
  mid: string;
  from: string;
  kind: number;
  body: unknown;
  ts: number;
  cmid?: string;
  device?: string;
  reply_to?: number;
  mentions?: string[];
  forward?: { cid: string; seq: number; from: string };
  edited_at?: number;
  recalled?: true;
}
export interface ReadStateBody {
  cid: string;
  user: string;
  seq: number;
}
/** A NOTIFY body (SPEC.md §4.14), also inside INBOX_PULL replies. */
export interface Notice {
  nseq: number;
  type: string;
  data: Record<string, unknown>;
  ts: number;
}
export interface ConvStateBody {
  cid: string;
  pinned: boolean;
  muted: boolean;
  hidden: boolean;
  cleared_seq: number;
}
export interface GoAwayBody {
  reason: string;
  reconnect_after_ms: number;
}
export interface TypingEventBody {
  cid: string;
  user: string;
  active: boolean;
}
export interface PresenceEntry {
  user: string;
  state: "online" | "away" | "busy" | "offline";
  last_seen?: number;
}
export interface PresenceBody {
  users: PresenceEntry[];
}
export interface CallEventBody {
  call: string;
  action: "ring" | "accepted" | "offer" | "answer" | "candidate" | "ended";
  from?: string;
  media?: CallMedia;
  device?: string;
  sdp?: string;
  candidate?: IceCandidate;
  outcome?: "completed" | "missed" | "declined" | "cancelled" | "failed";
  reason?: "hangup" | "rejected" | "cancelled" | "timeout" | "busy" | "disconnected";
  duration_ms?: number;
}

// -- replies (SPEC.md §5) -----------------------------------------------------------

export interface HelloReply {
  user: string;
  device: string;
  session: string;
  server_time: number;
  heartbeat_ms: number;
  max_frame_bytes: number;
}
/** The OK to SEND, RECALL and EDIT: where the message (or event) was committed. */
export interface Ack {
  cid: string;
  seq: number;
  mid: string;
  ts: number;
}
/** The OK to PULL and HISTORY. */
export interface Page {
  msgs: Message[];
  more: boolean;
  min_seq: number;
  max_seq: number;
}
/** A conversation in a SYNC reply (SPEC.md §5.6). */
export interface Conversation {
  cid: string;
  kind: "direct" | "group";
  peer?: string;
  group?: string;
  max_seq: number;
  min_seq: number;
  read_seq: number;
  muted: boolean;
  pinned: boolean;
  unread: number;
  mention: boolean;
  hidden: boolean;
  cleared_seq: number;
  peer_read_seq?: number;
  last?: Message;
}
export interface SyncReply {
  convs: Conversation[];
  version: number;
  inbox_max: number;
  more?: boolean;
}
export interface InboxPage {
  notices: Notice[];
  more: boolean;
  max_nseq: number;
}
export interface ReadersReply {
  read: string[];
  unread: string[];
  next?: string;
}
export interface PresenceReply {
  state: PresenceState;
  users: PresenceEntry[];
}
export interface CallPlaced {
  call: string;
  state: "ringing" | "busy";
}

/**
 * The order in which each frame body's fields are written (SPEC.md §2,
 * "Encoding rules for senders": the order of the field tables of §4). TYPING
 * holds the union of the request's and the push's fields. OK bodies (whose
 * shape depends on the request) are written as given.
 */
export const FIELD_ORDER: Readonly<Record<number, readonly string[]>> = {
  [Op.HELLO]: ["token", "device", "platform", "client"],
  [Op.ERR]: ["code", "message", "retry_after_ms"],
  [Op.PING]: [],
  [Op.AUTH]: ["token"],
  [Op.SEND]: ["cid", "cmid", "kind", "body", "reply_to", "mentions", "forward"],
  [Op.PULL]: ["cid", "after", "limit"],
  [Op.SYNC]: ["since", "limit"],
  [Op.READ]: ["cid", "seq"],
  [Op.INBOX_PULL]: ["after", "limit"],
  [Op.INBOX_ACK]: ["upto"],
  [Op.RECALL]: ["cid", "cmid", "seq"],
  [Op.EDIT]: ["cid", "cmid", "seq", "body"],
  [Op.HISTORY]: ["cid", "mid", "before", "after", "limit"],
  [Op.HIDE]: ["cid", "seqs"],
  [Op.MSG]: [
    "cid",
    "seq",
    "mid",
    "from",
    "kind",
    "body",
    "ts",
    "cmid",
    "device",
    "reply_to",
    "mentions",
    "forward",
    "edited_at",
    "recalled",
  ],
  [Op.READ_STATE]: ["cid", "user", "seq"],
  [Op.NOTIFY]: ["nseq", "type", "data", "ts"],
  [Op.CONV_STATE]: ["cid", "pinned", "muted", "hidden", "cleared_seq"],
  [Op.CONV_SET]: ["cid", "pinned", "muted", "hidden", "clear"],
  [Op.READERS]: ["cid", "seq", "after", "limit"],
  [Op.TYPING]: ["cid", "user", "active"],
  [Op.PRESENCE_SET]: ["state"],
  [Op.PRESENCE]: ["users"],
  [Op.CALL]: ["action", "call", "peer", "media", "sdp", "candidate"],
  [Op.CALL_EVENT]: [
    "call",
    "action",
    "from",
    "media",
    "device",
    "sdp",
    "candidate",
    "outcome",
    "reason",
    "duration_ms",
  ],
  [Op.GOAWAY]: ["reason", "reconnect_after_ms"],
};

/** Field order of the maps nested in frame bodies, by the key that holds them. */
export const NESTED_ORDER: Readonly<Record<string, readonly string[]>> = {
  forward: ["cid", "seq", "from"],
  candidate: ["candidate", "sdp_mid", "sdp_m_line_index"],
};
