// The frame codec (SPEC.md §2): one msgpack value per WebSocket message,
// `[op, rid, body]`. Encoding follows the rules for senders (fields in the
// order of the spec's tables, optional fields without a value left out,
// shortest integers), so it reproduces the golden vectors byte for byte.
// Decoding checks the envelope as strictly as a server does.

import { Decoder, Encoder } from "@msgpack/msgpack";

import { FrameError, RequestError } from "./errors.js";
import { CLIENT_OPS, FIELD_ORDER, NESTED_ORDER, Op, PUSH_OPS, SERVER_OPS, type Body, type Frame } from "./frames.js";
import { checkBody } from "./validate.js";

/** Default `max_frame_bytes` (SPEC.md §10); the server announces its own in the HELLO reply. */
export const MAX_FRAME_BYTES = 65536;
/** Deepest nesting of a frame, the envelope array being level 1 (SPEC.md §2). */
export const MAX_DEPTH = 16;
const RID_LIMIT = 2 ** 32;

const encoder = new Encoder({ ignoreUndefined: true });
// Keys that are not strs are reported by the envelope check; decode them to
// something rather than fail, so the error can name the frame's rid.
const decoder = new Decoder({ mapKeyConverter: (key: unknown) => (typeof key === "string" ? key : String(key)) });

/** Who sent the bytes being decoded. */
export type Direction = "client" | "server";

/** Encodes a frame to the bytes of one WebSocket message. */
export function encodeFrame(frame: Frame<object>): Uint8Array {
  const order = FIELD_ORDER[frame.op];
  const body = frame.body as Body;
  const ordered = order === undefined ? body : reorder(body, order, true);
  return encoder.encode([frame.op, frame.rid, ordered]);
}

function reorder(body: Body, order: readonly string[], top: boolean): Body {
  const out: Body = {};
  for (const key of order) {
    if (body[key] !== undefined) out[key] = body[key];
  }
  for (const key of Object.keys(body)) {
    if (!(key in out) && body[key] !== undefined) out[key] = body[key];
  }
  if (top) {
    for (const [key, nested] of Object.entries(NESTED_ORDER)) {
      const value = out[key];
      if (isMap(value)) out[key] = reorder(value, nested, false);
    }
  }
  return out;
}

/**
 * Decodes one WebSocket message to a frame.
 *
 * @param from who sent it: `server` (the default, for a client) or `client`.
 * @throws FrameError the bytes are not a valid frame (a server closes with `closeCode`).
 * @throws RequestError a valid frame with an unknown op, or invalid fields.
 */
export function decodeFrame(data: Uint8Array | ArrayBuffer, from: Direction = "server", maxFrameBytes = MAX_FRAME_BYTES): Frame {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length > maxFrameBytes) {
    throw new FrameError(`frame of ${bytes.length} bytes is over max_frame_bytes (${maxFrameBytes})`, null, "too_large");
  }
  const scan = scanValue(bytes);
  const rid = scan.rid !== null && scan.rid > 0 && scan.rid < RID_LIMIT ? scan.rid : null;
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (error) {
    throw new FrameError(`undecodable frame: ${(error as Error).message}`, rid);
  }
  if (scan.problem !== null) throw new FrameError(scan.problem, rid);
  if (!Array.isArray(value)) throw new FrameError("a frame must be an array", rid);
  if (value.length !== 3) throw new FrameError(`a frame must have 3 elements, not ${value.length}`, rid);
  const [op, rawRid, body] = value as [unknown, unknown, unknown];
  if (!scan.uint[0] || typeof op !== "number") throw new FrameError("op: must be an unsigned int", rid);
  if (!scan.uint[1] || typeof rawRid !== "number" || rawRid >= RID_LIMIT) {
    throw new FrameError("rid: must be an unsigned int < 2^32", null);
  }
  if (!isMap(body)) throw new FrameError("body: must be a map", rid);
  if (from === "client") {
    if (rawRid === 0) throw new FrameError("rid: must not be 0 in a request", null);
    if (!CLIENT_OPS.has(op)) throw new RequestError("unknown_op", `unknown op ${op}`, rawRid);
  } else {
    if (!SERVER_OPS.has(op)) throw new RequestError("unknown_op", `unknown op ${op}`, rawRid);
    if (PUSH_OPS.has(op) && rawRid !== 0) throw new FrameError(`op ${op} is a push: rid must be 0`, rawRid);
    if (!PUSH_OPS.has(op) && rawRid === 0) throw new FrameError("rid: must not be 0 in a reply", null);
  }
  checkBody(op, body, from, rawRid);
  return { op, rid: rawRid, body };
}

/**
 * Why `body` cannot go into a frame, or null: only nil, bools, numbers,
 * strs, bin (Uint8Array), arrays and plain objects are allowed (a Date
 * would become an ext type, which a server refuses by closing the
 * connection), nested at most `MAX_DEPTH` deep counting the envelope.
 */
export function unencodable(body: unknown): string | null {
  const walk = (value: unknown, depth: number, path: string): string | null => {
    if (value === null || value === undefined || typeof value === "boolean" || typeof value === "string") return null;
    if (typeof value === "number") return null;
    if (value instanceof Uint8Array) return null;
    if (depth > MAX_DEPTH) return `${path}: nested deeper than ${MAX_DEPTH} levels`;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const problem = walk(value[i], depth + 1, `${path}[${i}]`);
        if (problem !== null) return problem;
      }
      return null;
    }
    if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
      for (const [key, item] of Object.entries(value)) {
        const problem = walk(item, depth + 1, `${path}.${key}`);
        if (problem !== null) return problem;
      }
      return null;
    }
    const kind = typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value;
    return `${path}: a ${kind} cannot be sent (use nil, bool, number, str, Uint8Array, array or plain object)`;
  };
  return walk(body, 2, "body");
}

export function isMap(value: unknown): value is Body {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

// -- the envelope check ---------------------------------------------------------------
//
// A pass over the raw bytes, before decoding, finds what a decoded JavaScript
// value no longer shows: ext types, keys that are not str, duplicate keys,
// nesting depth, invalid UTF-8, trailing bytes, and whether the op and rid
// were msgpack unsigned ints (a float 1.0 decodes to the same number as 1).

interface Scan {
  /** The first rule it breaks, or null. */
  problem: string | null;
  /** Whether elements 0 and 1 of the top-level array are unsigned ints. */
  uint: [boolean, boolean];
  /** Element 1 of the top-level array, if it is an unsigned int: the rid. */
  rid: number | null;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

class Malformed extends Error {}

function scanValue(bytes: Uint8Array): Scan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scan: Scan = { problem: null, uint: [false, false], rid: null };
  let pos = 0;

  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new Malformed("truncated");
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++] as number;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos);
    pos += 4;
    return v;
  };
  const uintAt = (at: number): number => {
    const b = bytes[at] as number;
    if (b <= 0x7f) return b;
    if (b === 0xcc) return bytes[at + 1] as number;
    if (b === 0xcd) return view.getUint16(at + 1);
    if (b === 0xce) return view.getUint32(at + 1);
    return view.getUint32(at + 1) * 2 ** 32 + view.getUint32(at + 5);
  };
  const note = (problem: string): void => {
    scan.problem ??= problem;
  };
  const str = (n: number): string => {
    need(n);
    const s = utf8.decode(bytes.subarray(pos, pos + n)); // throws on invalid UTF-8
    pos += n;
    return s;
  };
  const skip = (n: number): void => {
    need(n);
    pos += n;
  };

  // Returns the str read (for map keys), or null for any other type; `kind`
  // reports whether it was an unsigned int.
  const value = (depth: number, kind?: { uint: boolean }): string | null => {
    const b = u8();
    if (b <= 0x7f || b === 0xcc || b === 0xcd || b === 0xce || b === 0xcf) {
      if (kind) kind.uint = true;
      if (b >= 0xcc) skip(1 << (b - 0xcc));
      return null;
    }
    if (b >= 0xe0) return null;
    if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
    if (b >= 0x90 && b <= 0x9f) return array(b & 0x0f, depth);
    if (b >= 0x80 && b <= 0x8f) return map(b & 0x0f, depth);
    switch (b) {
      case 0xc0:
      case 0xc2:
      case 0xc3:
        return null;
      case 0xc4:
        skip(u8());
        return null;
      case 0xc5:
        skip(u16());
        return null;
      case 0xc6:
        skip(u32());
        return null;
      case 0xc7:
        skip(u8() + 1);
        note("ext types are not allowed");
        return null;
      case 0xc8:
        skip(u16() + 1);
        note("ext types are not allowed");
        return null;
      case 0xc9:
        skip(u32() + 1);
        note("ext types are not allowed");
        return null;
      case 0xca:
        skip(4);
        return null;
      case 0xcb:
        skip(8);
        return null;
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3:
        skip(1 << (b - 0xd0));
        return null;
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        skip(1 + (1 << (b - 0xd4)));
        note("ext types are not allowed");
        return null;
      case 0xd9:
        return str(u8());
      case 0xda:
        return str(u16());
      case 0xdb:
        return str(u32());
      case 0xdc:
        return array(u16(), depth);
      case 0xdd:
        return array(u32(), depth);
      case 0xde:
        return map(u16(), depth);
      case 0xdf:
        return map(u32(), depth);
      default:
        throw new Malformed(`byte 0x${b.toString(16)} is not msgpack`);
    }
  };
  const array = (n: number, depth: number): null => {
    if (depth > MAX_DEPTH) note(`nesting deeper than ${MAX_DEPTH}`);
    for (let i = 0; i < n; i++) {
      if (depth === 1 && i < 2) {
        const kind = { uint: false };
        const start = pos;
        value(depth + 1, kind);
        scan.uint[i] = kind.uint;
        if (i === 1 && kind.uint) scan.rid = uintAt(start);
      } else {
        value(depth + 1);
      }
    }
    return null;
  };
  const map = (n: number, depth: number): null => {
    if (depth > MAX_DEPTH) note(`nesting deeper than ${MAX_DEPTH}`);
    const keys = new Set<string>();
    for (let i = 0; i < n; i++) {
      const key = value(depth + 1);
      if (key === null) note("map keys must be strs");
      else if (keys.has(key)) note(`duplicate map key ${JSON.stringify(key)}`);
      else keys.add(key);
      value(depth + 1);
    }
    return null;
  };

  try {
    value(1);
    if (pos !== bytes.length) throw new Malformed(`${bytes.length - pos} bytes after the frame`);
  } catch (error) {
    // Not exactly one valid msgpack value: nothing can be trusted, not even a rid.
    const reason = error instanceof Malformed ? error.message : "invalid UTF-8 in a str";
    throw new FrameError(`not a msgpack value: ${reason}`, null);
  }
  return scan;
}
