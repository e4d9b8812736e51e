// The client's state: what the server told us, kept in maps, and who to tell when it changes.
import type { Backend, Conv, Group, Member, Msg, Notice, PresenceEntry, User } from "./backend.ts";

export const KIND = {
  text: 1, image: 2, file: 3, voice: 4, video: 5, emoji: 6, location: 7, call: 8,
  system: 9, contact: 10, recall: 11, edit: 12,
} as const;

export interface Typing {
  user: string;
  until: number;
}

export class State {
  convs = new Map<string, Conv>();
  messages = new Map<string, Map<number, Msg>>();
  olderExists = new Map<string, boolean>();
  users = new Map<string, User>();
  groups = new Map<string, Group>();
  members = new Map<string, Member[]>();
  presence = new Map<string, PresenceEntry>();
  typing = new Map<string, Typing[]>();
  notices: Notice[] = [];
  open: string | null = null;
  private pendingUsers = new Set<string>();
  private listeners = new Set<(what: string) => void>();

  constructor(readonly backend: Backend) {
    this.users.set(backend.me.id, backend.me);
  }

  get me(): User {
    return this.backend.me;
  }

  on(listener: (what: string) => void): void {
    this.listeners.add(listener);
  }

  changed(what: string): void {
    for (const listener of this.listeners) listener(what);
  }

  /** A user's display name, fetching the profile the first time. */
  name(id: string): string {
    const user = this.users.get(id);
    if (user) return user.display_name || user.username;
    if (!this.pendingUsers.has(id)) {
      this.pendingUsers.add(id);
      this.backend.user(id).then(
        (found) => {
          this.users.set(id, found);
          this.changed("users");
        },
        () => undefined,
      );
    }
    return id;
  }

  title(conv: Conv): string {
    if (conv.kind === "direct") return this.name(conv.peer!);
    const group = this.groups.get(conv.group!);
    return group ? group.name : "Group";
  }

  timeline(cid: string): Map<number, Msg> {
    let map = this.messages.get(cid);
    if (!map) {
      map = new Map();
      this.messages.set(cid, map);
    }
    return map;
  }

  /** A message from a push, a send's ack or a history page; recall and edit events apply to their targets. */
  add(msg: Msg, live: boolean): void {
    const map = this.timeline(msg.cid);
    map.set(msg.seq, msg);
    if (msg.kind === KIND.recall || msg.kind === KIND.edit) {
      const target = map.get(msg.body?.seq);
      if (target && msg.kind === KIND.recall) {
        target.recalled = true;
        target.body = null;
        delete target.mentions;
      } else if (target) {
        target.body = msg.body.body;
        target.edited_at = msg.ts;
      }
    }
    const conv = this.convs.get(msg.cid);
    if (conv && live && msg.seq > conv.max_seq) {
      const mine = msg.from === this.me.id;
      conv.max_seq = msg.seq;
      conv.hidden = false;
      if (mine) conv.read_seq = msg.seq;
      else if (msg.kind !== KIND.recall && msg.kind !== KIND.edit) {
        conv.unread = Math.max(0, conv.max_seq - Math.max(conv.read_seq, conv.cleared_seq));
        // "@all" arrives as an entry of the array, like a user id (SPEC.md §5.14).
        const m = msg.mentions ?? [];
        if (m.includes("@all") || m.includes(this.me.id)) conv.mention = true;
      } else {
        conv.unread = Math.max(0, conv.max_seq - Math.max(conv.read_seq, conv.cleared_seq));
      }
      if (msg.kind !== KIND.recall && msg.kind !== KIND.edit) conv.last = msg;
    }
    const typing = this.typing.get(msg.cid);
    if (typing && live) this.typing.set(msg.cid, typing.filter((t) => t.user !== msg.from));
  }

  sortedConvs(): Conv[] {
    return [...this.convs.values()]
      .filter((c) => !c.hidden)
      .sort((a, b) => Number(b.pinned) - Number(a.pinned) || (b.last?.ts ?? 0) - (a.last?.ts ?? 0));
  }

  typingIn(cid: string): string[] {
    const now = Date.now();
    return (this.typing.get(cid) ?? []).filter((t) => t.until > now).map((t) => t.user);
  }
}
