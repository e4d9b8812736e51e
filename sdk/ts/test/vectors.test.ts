// The golden vectors of protocol/vectors/ (SPEC.md §12), byte for byte:
// every valid vector decodes to its frame and encodes back to the same bytes;
// every invalid one fails with the recorded error. The expected frames are
// built from the JSON here, not by the codec under test.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { decode as msgpackDecode } from "@msgpack/msgpack";

import { FrameError, Op, RequestError, decodeFrame, encodeFrame, unencodable } from "../src/index.js";
import { REPO } from "./paths.js";

interface Vector {
  file: string;
  name: string;
  direction: "client" | "server";
  hex: string;
  op?: number;
  rid?: number;
  body?: unknown;
  error?: { kind: "frame" | "request"; code: string; close_code: number | null; rid: number | null };
}

const DIR = join(REPO, "protocol", "vectors");
const ALL: Vector[] = readdirSync(DIR)
  .filter((name) => name.endsWith(".json"))
  .sort()
  .flatMap((file) => (JSON.parse(readFileSync(join(DIR, file), "utf8")) as Vector[]).map((v) => ({ ...v, file })));
const VALID = ALL.filter((v) => v.error === undefined);
const INVALID = ALL.filter((v) => v.error !== undefined);

function fromJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJson);
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]?.[0] === "$bin") return Buffer.from(entries[0][1] as string, "hex");
    return Object.fromEntries(entries.map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
}

/** Bin values decode to Uint8Array; compare them as plain bytes. */
function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bin: Buffer.from(value).toString("hex") };
  if (Array.isArray(value)) return value.map(normalize);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

test("every op of SPEC.md §4 has a valid vector", () => {
  assert.deepEqual(new Set(VALID.map((v) => v.op)), new Set(Object.values(Op)));
});

test("there are vectors to check", () => {
  assert.ok(VALID.length >= 70, `only ${VALID.length} valid vectors`);
  assert.ok(INVALID.length >= 60, `only ${INVALID.length} invalid vectors`);
});

describe("valid vectors decode to their frame and encode to the same bytes", () => {
  for (const v of VALID) {
    test(`${v.file}: ${v.name}`, () => {
      const bytes = Buffer.from(v.hex, "hex");
      const frame = decodeFrame(bytes, v.direction);
      assert.deepEqual(normalize(frame), normalize({ op: v.op, rid: v.rid, body: fromJson(v.body) }));
      assert.equal(hex(encodeFrame(frame)), v.hex);
      if (v.op === Op.OK) return; // an OK body has no field order of its own: written as given
      // Built from the JSON with its keys in any order, the frame encodes the same way.
      const body = fromJson(v.body) as Record<string, unknown>;
      const shuffled = Object.fromEntries(Object.entries(body).reverse());
      assert.equal(hex(encodeFrame({ op: v.op as number, rid: v.rid as number, body: shuffled })), v.hex);
    });
  }
});

describe("invalid vectors fail with the recorded error", () => {
  for (const v of INVALID) {
    test(`${v.file}: ${v.name}`, () => {
      const expected = v.error as NonNullable<Vector["error"]>;
      let caught: unknown;
      try {
        decodeFrame(Buffer.from(v.hex, "hex"), v.direction);
      } catch (error) {
        caught = error;
      }
      if (expected.kind === "frame") {
        assert.ok(caught instanceof FrameError, `expected a FrameError, got ${String(caught)}`);
        assert.equal(caught.closeCode, expected.close_code);
      } else {
        assert.ok(caught instanceof RequestError, `expected a RequestError, got ${String(caught)}`);
        assert.equal(expected.close_code, null);
      }
      assert.equal(caught.code, expected.code);
      assert.equal(caught.rid, expected.rid);
    });
  }
});

test("every hex example in SPEC.md is a golden vector", () => {
  const spec = readFileSync(join(REPO, "protocol", "SPEC.md"), "utf8");
  const hexes = new Set(ALL.map((v) => v.hex));
  const examples: string[] = [];
  for (const block of spec.matchAll(/```\n([\s\S]*?)```/g)) {
    const lines = (block[1] as string).trim().split("\n");
    const wrapped: string[] = [];
    for (const line of lines) {
      if (!/^[0-9a-f]+$/.test(line)) break;
      wrapped.push(line);
    }
    if (wrapped.length > 0) examples.push(wrapped.join(""));
  }
  assert.ok(examples.length >= 12);
  assert.deepEqual(
    examples.filter((e) => !hexes.has(e)),
    [],
  );
});

test("unencodable(): what the client refuses to send, by the same depth rule as the server", () => {
  for (const v of VALID) assert.equal(unencodable(fromJson(v.body)), null, v.name);
  const deep = INVALID.find((v) => v.name === "send body nested to depth 17") as Vector;
  const [, , body] = msgpackDecode(Buffer.from(deep.hex, "hex")) as [number, number, unknown];
  assert.match(unencodable(body) ?? "", /nested deeper than 16/);
  assert.match(unencodable({ when: new Date() }) ?? "", /body\.when: a Date cannot be sent/);
  assert.match(unencodable({ f: () => 1 }) ?? "", /body\.f: a function cannot be sent/);
});
