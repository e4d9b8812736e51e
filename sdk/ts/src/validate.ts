// Field checks of every frame body (SPEC.md §3 values, §4 field tables,
// §10 limits). The codec runs them on decoded frames; the client runs them on
// the requests it builds, so a bad argument fails at once, in the caller,
// with a message naming the field, instead of as an ERR from the server.

import { RequestError } from "./errors.js";
import { ERROR_CODES, MENTION_ALL, Op, type Body } from "./frames.js";

const SAFE = 2 ** 53;
const U32 = 2 ** 32;
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const NOTICE_TYPE = /^[a-z0-9_.]{1,64}$/;
// Printable: no control, format, surrogate or unassigned characters, and no
// separators other than the space (as Python's str.isprintable()).
const LABEL = /^(?:(?![\p{C}\p{Zl}\p{Zp}])[^\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000])+$/u;
const utf8 = new TextEncoder();

/** Whether `value` is an id: 1-64 characters of `[A-Za-z0-9_-]` (SPEC.md §3). */
export function isId(value: unknown): value is string {
  return typeof value === "string" && ID.test(value);
}

/** Whether `value` is a valid conversation id (SPEC.md §3). */
export function isCid(value: unknown): value is string {
  if (typeof value !== "string") return false;
  if (value.startsWith("g:")) return isId(value.slice(2));
  if (!value.startsWith("d:")) return false;
  const parts = value.slice(2).split(":");
  if (parts.length !== 2) return false;
  const [a, b] = parts as [string, string];
  return isId(a) && isId(b) && a < b;
}

/** The cid of the direct conversation between users `a` and `b` (SPEC.md §3). */
export function directCid(a: string, b: string): string {
  return a < b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

/** The cid of a group's conversation. */
export function groupCid(group: string): string {
  return `g:${group}`;
}

type Check = (value: unknown) => string | null; // null: fine; else what it must be

const uint =
  (limit: number = SAFE, min = 0): Check =>
  (v) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v < limit ? null : `must be an unsigned int in [${min}, ${limit})`;
const intRange =
  (min: number, max: number): Check =>
  (v) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? null : `must be an int from ${min} to ${max}`;
const seq = uint();
const time = uint();
const bool: Check = (v) => (typeof v === "boolean" ? null : "must be a bool");
const id: Check = (v) => (isId(v) ? null : "must be an id (1-64 chars of [A-Za-z0-9_-])");
const cid: Check = (v) => (isCid(v) ? null : "must be a conversation id (d:<a>:<b> with a < b, or g:<group>)");
const str =
  (min: number, max: number): Check =>
  (v) =>
    typeof v === "string" && [...v].length >= min && [...v].length <= max ? null : `must be a str of ${min}-${max} chars`;
const label: Check = (v) => (typeof v === "string" && [...v].length <= 64 && LABEL.test(v) ? null : "must be 1-64 printable chars");
const cmid: Check = (v) => {
  if (typeof v !== "string") return "must be a str";
  const n = utf8.encode(v).length;
  return n >= 1 && n <= 64 ? null : "must be 1-64 UTF-8 bytes";
};
const oneOf =
  (...values: string[]): Check =>
  (v) =>
    typeof v === "string" && values.includes(v) ? null : `must be one of ${values.join(", ")}`;
const map: Check = (v) => (isPlainMap(v) ? null : "must be a map");
const any: Check = () => null;
const arrayOf =
  (item: Check, min: number, max: number): Check =>
  (v) => {
    if (!Array.isArray(v) || v.length < min || v.length > max) return `must be an array of ${min}-${max} items`;
    for (const x of v) {
      const problem = item(x);
      if (problem !== null) return `every item ${problem}`;
    }
    return null;
  };
const mentions: Check = (v) => arrayOf((x) => (x === MENTION_ALL || isId(x) ? null : `must be a user id or "${MENTION_ALL}"`), 0, 100)(v);
const candidate: Check = (v) => {
  if (!isPlainMap(v)) return "must be a map";
  const extra = Object.keys(v).filter((k) => !["candidate", "sdp_mid", "sdp_m_line_index"].includes(k));
  if (extra.length > 0) return `has unknown keys ${extra.join(", ")}`;
  return fields(v, { candidate: [str(0, 1024), true], sdp_mid: [str(0, 64), false], sdp_m_line_index: [uint(2 ** 16), false] });
};
const forwardRef: Check = (v) => (isPlainMap(v) ? fields(v, { cid: [cid, true], seq: [seq, true] }) : "must be a map {cid, seq}");
const forwarded: Check = (v) =>
  isPlainMap(v) ? fields(v, { cid: [cid, true], seq: [seq, true], from: [id, true] }) : "must be a map {cid, seq, from}";
const presenceEntry: Check = (v) => {
  if (!isPlainMap(v)) return "must be a map";
  const extra = Object.keys(v).filter((k) => !["user", "state", "last_seen"].includes(k));
  if (extra.length > 0) return `has unknown keys ${extra.join(", ")}`;
  return fields(v, { user: [id, true], state: [oneOf("online", "away", "busy", "offline"), true], last_seen: [time, false] });
};

/** Each field: its check, and whether it is required. */
type Fields = Record<string, [Check, boolean]>;

/** The first problem of `body` against `spec`, as "field: must be ...", or null. */
function fields(body: Body, spec: Fields): string | null {
  for (const [key, [check, required]] of Object.entries(spec)) {
    const value = body[key];
    if (value === undefined || value === null) {
      if (required) return `${key}: is required`;
      continue;
    }
    const problem = check(value);
    if (problem !== null) return `${key}: ${problem}`;
  }
  return null;
}

const CALL_ACTIONS = ["invite", "accept", "reject", "cancel", "hangup", "offer", "answer", "candidate"];
const EVENT_ACTIONS = ["ring", "accepted", "offer", "answer", "candidate", "ended"];

const CLIENT: Record<number, Fields> = {
  [Op.HELLO]: { token: [str(1, 4096), false], device: [id, true], platform: [label, true], client: [label, false] },
  [Op.PING]: {},
  [Op.AUTH]: { token: [str(1, 4096), true] },
  [Op.SEND]: {
    cid: [cid, true],
    cmid: [cmid, true],
    kind: [uint(2 ** 31), true],
    reply_to: [seq, false],
    mentions: [mentions, false],
    forward: [forwardRef, false],
  },
  [Op.PULL]: { cid: [cid, true], after: [seq, true], limit: [intRange(1, 200), false] },
  [Op.SYNC]: { since: [uint(), false], limit: [intRange(1, 1000), false] },
  [Op.READ]: { cid: [cid, true], seq: [seq, true] },
  [Op.INBOX_PULL]: { after: [uint(), false], limit: [intRange(1, 200), false] },
  [Op.INBOX_ACK]: { upto: [uint(), true] },
  [Op.RECALL]: { cid: [cid, true], cmid: [cmid, true], seq: [seq, true] },
  [Op.EDIT]: { cid: [cid, true], cmid: [cmid, true], seq: [seq, true], body: [map, true] },
  [Op.HISTORY]: { cid: [cid, false], mid: [id, false], before: [seq, false], after: [seq, false], limit: [intRange(1, 200), false] },
  [Op.HIDE]: { cid: [cid, true], seqs: [arrayOf(uint(SAFE, 1), 1, 200), true] },
  [Op.CONV_SET]: { cid: [cid, true], pinned: [bool, false], muted: [bool, false], hidden: [bool, false], clear: [bool, false] },
  [Op.READERS]: { cid: [cid, true], seq: [seq, true], after: [id, false], limit: [intRange(1, 500), false] },
  [Op.TYPING]: { cid: [cid, true], active: [bool, false] },
  [Op.PRESENCE_SET]: { state: [oneOf("online", "away", "busy", "invisible"), false] },
  [Op.CALL]: {
    action: [oneOf(...CALL_ACTIONS), true],
    call: [id, false],
    peer: [id, false],
    media: [oneOf("audio", "video"), false],
    sdp: [str(1, 16384), false],
    candidate: [candidate, false],
  },
};

const SERVER: Record<number, Fields> = {
  [Op.OK]: {},
  [Op.ERR]: { code: [oneOf(...ERROR_CODES), true], message: [str(0, 1024), true], retry_after_ms: [uint(U32), false] },
  [Op.MSG]: {
    cid: [cid, true],
    seq: [seq, true],
    mid: [id, true],
    from: [id, true],
    kind: [uint(2 ** 31), true],
    ts: [time, true],
    cmid: [cmid, false],
    device: [id, false],
    reply_to: [seq, false],
    mentions: [mentions, false],
    forward: [forwarded, false],
    edited_at: [time, false],
    recalled: [(v) => (v === true ? null : "must be true"), false],
  },
  [Op.READ_STATE]: { cid: [cid, true], user: [id, true], seq: [seq, true] },
  [Op.NOTIFY]: {
    nseq: [uint(), true],
    type: [(v) => (typeof v === "string" && NOTICE_TYPE.test(v) ? null : "must be 1-64 chars of [a-z0-9_.]"), true],
    data: [map, true],
    ts: [time, true],
  },
  [Op.CONV_STATE]: { cid: [cid, true], pinned: [bool, true], muted: [bool, true], hidden: [bool, true], cleared_seq: [seq, true] },
  [Op.TYPING]: { cid: [cid, true], user: [id, true], active: [bool, true] },
  [Op.PRESENCE]: { users: [arrayOf(presenceEntry, 0, 10000), true] },
  [Op.CALL_EVENT]: {
    call: [id, true],
    action: [oneOf(...EVENT_ACTIONS), true],
    from: [id, false],
    media: [oneOf("audio", "video"), false],
    device: [id, false],
    sdp: [str(1, 16384), false],
    candidate: [candidate, false],
    outcome: [oneOf("completed", "missed", "declined", "cancelled", "failed"), false],
    reason: [oneOf("hangup", "rejected", "cancelled", "timeout", "busy", "disconnected"), false],
    duration_ms: [uint(U32), false],
  },
  [Op.GOAWAY]: { reason: [str(0, 256), true], reconnect_after_ms: [uint(U32), true] },
};

/** The rules that span fields, per op (client frames). */
function crossChecks(op: number, body: Body): string | null {
  const has = (key: string): boolean => body[key] !== undefined && body[key] !== null;
  switch (op) {
    case Op.SEND:
      return "body" in body ? null : "body: is required (nil is a value)";
    case Op.HISTORY:
      if (has("cid") === has("mid")) return "cid: give cid or mid, not both or neither";
      if (has("mid") && (has("before") || has("after"))) return "mid: not with before or after";
      return has("before") && has("after") ? "after: not with before" : null;
    case Op.CONV_SET:
      return has("pinned") || has("muted") || has("hidden") || body.clear === true
        ? null
        : "pinned: give at least one of pinned, muted, hidden, or clear: true";
    case Op.CALL: {
      const action = body.action as string;
      if (action === "invite") return has("peer") ? (has("media") ? null : "media: is required to invite") : "peer: is required to invite";
      if (!has("call")) return "call: is required";
      if ((action === "offer" || action === "answer") && !has("sdp")) return `sdp: is required to ${action}`;
      return action === "candidate" && !has("candidate") ? "candidate: is required" : null;
    }
    default:
      return null;
  }
}

/**
 * Checks a frame body's fields.
 *
 * @throws RequestError `bad_request` naming the first bad field.
 */
export function checkBody(op: number, body: Body, from: "client" | "server", rid: number): void {
  const spec = from === "client" ? CLIENT[op] : SERVER[op];
  if (spec === undefined) return;
  let problem = fields(body, spec);
  if (problem === null && from === "client") problem = crossChecks(op, body);
  if (problem === null && from === "server" && op === Op.MSG && !("body" in body)) problem = "body: is required (nil is a value)";
  if (problem !== null) throw new RequestError("bad_request", problem, rid);
}

function isPlainMap(value: unknown): value is Body {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
