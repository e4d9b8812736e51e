// Per-conversation delivery state: gap detection and deduplication
// (SPEC.md §5.5). For each conversation the SDK knows the highest seq handed
// to the application (`delivered`: every seq up to it was delivered, once),
// the highest seq known to exist (from pushes, acks, SYNC and PULL), and the
// messages that arrived ahead of a missing one. A message at or below
// `delivered`, or already buffered, is a duplicate and is dropped.
//
// No I/O here: the client feeds in what arrives and asks what is ready to
// deliver and which range is missing (and must be pulled).

import type { Message } from "./frames.js";

interface Track {
  delivered: number;
  knownMax: number;
  ahead: Map<number, Message>;
  /** Seqs a PULL skipped (hidden by this user): they never arrive. */
  hidden: Set<number>;
}

export class Timeline {
  private readonly convs = new Map<string, Track>();
  duplicates = 0;

  /**
   * @param positions the last seq the application already has, per cid.
   * @param maxAhead most messages buffered per conversation behind a hole.
   */
  constructor(
    positions: Record<string, number> = {},
    private readonly maxAhead = 400,
  ) {
    for (const [cid, seq] of Object.entries(positions)) this.convs.set(cid, track(seq));
  }

  has(cid: string): boolean {
    return this.convs.has(cid);
  }

  /** The last seq delivered per conversation (to resume from later). */
  positions(): Record<string, number> {
    return Object.fromEntries([...this.convs].map(([cid, t]) => [cid, t.delivered]));
  }

  /** Deliver only messages after `seq` in a conversation not yet tracked. */
  start(cid: string, seq: number): void {
    if (!this.convs.has(cid)) this.convs.set(cid, track(seq));
  }

  /** `cid` has messages up to `maxSeq` (from SYNC or PULL). */
  noteMax(cid: string, maxSeq: number): void {
    const t = this.track(cid);
    t.knownMax = Math.max(t.knownMax, maxSeq);
  }

  /** Messages below `minSeq` are gone (retention, cleared): stop waiting for them. */
  skipTo(cid: string, minSeq: number): void {
    const t = this.track(cid);
    if (minSeq > t.delivered + 1) {
      t.delivered = minSeq - 1;
      for (const seq of t.ahead.keys()) if (seq <= t.delivered) t.ahead.delete(seq);
    }
  }

  /** Takes a message from any source; false if it is a duplicate. */
  offer(msg: Message): boolean {
    const t = this.track(msg.cid);
    t.knownMax = Math.max(t.knownMax, msg.seq);
    if (msg.seq <= t.delivered || t.ahead.has(msg.seq)) {
      this.duplicates += 1;
      return false;
    }
    if (t.ahead.size >= this.maxAhead) {
      const highest = Math.max(...t.ahead.keys());
      if (msg.seq > highest) return true; // known to exist (knownMax): pulled again later
      t.ahead.delete(highest);
    }
    t.ahead.set(msg.seq, msg);
    return true;
  }

  /** The next message to deliver (the one after `delivered` of some cid), or null. */
  popReady(): Message | null {
    for (const t of this.convs.values()) {
      while (t.hidden.has(t.delivered + 1)) {
        t.hidden.delete(t.delivered + 1);
        t.delivered += 1;
      }
      const msg = t.ahead.get(t.delivered + 1);
      if (msg !== undefined) {
        t.ahead.delete(msg.seq);
        t.delivered = msg.seq;
        return msg;
      }
    }
    return null;
  }

  /** If `cid` misses the message after the last delivered one: pull `seq > ` this. */
  hole(cid: string): number | null {
    const t = this.convs.get(cid);
    if (t === undefined || t.knownMax <= t.delivered) return null;
    if (t.ahead.has(t.delivered + 1) || t.hidden.has(t.delivered + 1)) return null;
    return t.delivered;
  }

  /** Some conversation with a hole, as `[cid, after]`, or null. */
  missing(): [string, number] | null {
    for (const cid of this.convs.keys()) {
      const after = this.hole(cid);
      if (after !== null) return [cid, after];
    }
    return null;
  }

  /**
   * A PULL of `seq > after` returned `seqs` (ascending). A reply leaves out
   * messages this user hid (SPEC.md §5.14), so a seq missing between them
   * will never come: stop waiting for it. Returns how many that was.
   */
  pulled(cid: string, after: number, seqs: number[]): number {
    const t = this.track(cid);
    let skipped = 0;
    let expected = after + 1;
    for (const seq of seqs) {
      for (let gap = Math.max(expected, t.delivered + 1); gap < seq; gap++) {
        if (!t.ahead.has(gap)) {
          t.hidden.add(gap);
          skipped += 1;
        }
      }
      expected = Math.max(expected, seq + 1);
    }
    return skipped;
  }

  /** The server has nothing after `delivered` up to `maxSeq`: skip it (no endless pulls). */
  settle(cid: string, maxSeq: number): number {
    const t = this.track(cid);
    t.knownMax = maxSeq;
    const skipped = Math.max(0, maxSeq - t.delivered);
    if (skipped > 0) this.skipTo(cid, maxSeq + 1);
    return skipped;
  }

  private track(cid: string): Track {
    // A conversation first seen now (new, or created while away) is delivered from its start.
    let t = this.convs.get(cid);
    if (t === undefined) {
      t = track(0);
      this.convs.set(cid, t);
    }
    return t;
  }
}

function track(seq: number): Track {
  return { delivered: seq, knownMax: seq, ahead: new Map(), hidden: new Set() };
}
