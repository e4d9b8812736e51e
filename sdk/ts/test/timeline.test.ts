// Gap detection and deduplication (src/timeline.ts), without a server.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Timeline, type Message } from "../src/index.js";

const msg = (seq: number, cid = "g:g"): Message => ({ cid, seq, mid: `m${seq}`, from: "u", kind: 1, body: { text: `${seq}` }, ts: seq });

function drain(t: Timeline): number[] {
  const out: number[] = [];
  for (let m = t.popReady(); m !== null; m = t.popReady()) out.push(m.seq);
  return out;
}

test("in order, exactly once, whatever the arrival order", () => {
  const t = new Timeline();
  for (const seq of [2, 1, 3, 2, 1]) t.offer(msg(seq));
  assert.deepEqual(drain(t), [1, 2, 3]);
  assert.equal(t.offer(msg(3)), false);
  assert.equal(t.duplicates, 3);
});

test("a message past a hole waits, and the hole is reported for a PULL", () => {
  const t = new Timeline({ "g:g": 4 });
  t.offer(msg(7));
  assert.deepEqual(drain(t), []);
  assert.deepEqual(t.missing(), ["g:g", 4]);
  t.offer(msg(5));
  t.offer(msg(6));
  assert.deepEqual(drain(t), [5, 6, 7]);
  assert.equal(t.missing(), null);
  assert.deepEqual(t.positions(), { "g:g": 7 });
});

test("SYNC's max_seq above what is held is a hole; min_seq skips what is gone", () => {
  const t = new Timeline();
  t.start("d:a:b", 3);
  t.noteMax("d:a:b", 10);
  assert.deepEqual(t.missing(), ["d:a:b", 3]);
  t.skipTo("d:a:b", 8);
  assert.deepEqual(t.missing(), ["d:a:b", 7]);
});

test("seqs a PULL reply skips (hidden by the user) are not waited for", () => {
  const t = new Timeline({ "g:g": 0 });
  t.noteMax("g:g", 5);
  for (const seq of [1, 2, 4, 5]) t.offer(msg(seq));
  assert.equal(t.pulled("g:g", 0, [1, 2, 4, 5]), 1);
  assert.deepEqual(drain(t), [1, 2, 4, 5]);
});

test("an empty PULL settles the hole instead of pulling forever", () => {
  const t = new Timeline({ "g:g": 2 });
  t.noteMax("g:g", 6);
  assert.equal(t.settle("g:g", 6), 4);
  assert.equal(t.missing(), null);
  t.offer(msg(7));
  assert.deepEqual(drain(t), [7]);
});

test("the buffer behind a hole is bounded: the highest is dropped (and pulled later)", () => {
  const t = new Timeline({ "g:g": 0 }, 2);
  t.offer(msg(3));
  t.offer(msg(4));
  t.offer(msg(2)); // evicts 4
  t.offer(msg(1)); // evicts 3
  assert.deepEqual(drain(t), [1, 2]);
  assert.deepEqual(t.missing(), ["g:g", 2]);
});

test("a conversation first seen now is delivered from its start", () => {
  const t = new Timeline();
  t.offer(msg(2, "g:new"));
  assert.deepEqual(t.missing(), ["g:new", 0]);
});
