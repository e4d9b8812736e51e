// The chat view: header, history with paging, messages of every kind, the composer, the group panel.
import type { Conv, Member, Msg } from "./backend.ts";
import { duration, h, replace, time, toast } from "./dom.ts";
import { KIND, State } from "./state.ts";
import { blobUrl, saveFile, VoiceRecorder } from "./media.ts";
import type { CallView } from "./call.ts";
import { presenceText } from "./app.ts";

const PAGE = 30;
const EMOJI = ["😀", "😂", "😊", "😍", "🤔", "😮", "😢", "😡", "👍", "👎", "👏", "🙏", "🎉", "❤️", "🔥", "✅", "👀", "💯", "☕", "🍕", "🐱", "🌵", "🚀", "👋"];
const ONE_EMOJI = /^(\p{Extended_Pictographic}|\p{Emoji_Presentation})(\uFE0F|\u200D(\p{Extended_Pictographic}|\p{Emoji_Presentation})|\p{Emoji_Modifier})*$/u;

export function preview(state: State, msg: Msg, group: boolean): string {
  const who = group && msg.kind !== KIND.system ? `${msg.from === state.me.id ? "You" : state.name(msg.from)}: ` : "";
  return who + summary(state, msg);
}

function summary(state: State, msg: Msg): string {
  if (msg.recalled) return "Message recalled";
  const b = msg.body ?? {};
  switch (msg.kind) {
    case KIND.text: return b.text;
    case KIND.image: return "📷 Photo";
    case KIND.file: return `📎 ${b.name}`;
    case KIND.voice: return `🎤 Voice note ${duration(b.duration_ms)}`;
    case KIND.video: return "🎬 Video";
    case KIND.emoji: return b.emoji;
    case KIND.location: return `📍 ${b.name ?? `${b.lat}, ${b.lon}`}`;
    case KIND.call: return `📞 ${b.media === "video" ? "Video" : "Audio"} call · ${b.outcome}${b.duration_ms ? ` ${duration(b.duration_ms)}` : ""}`;
    case KIND.system: return systemText(state, msg);
    case KIND.contact: return `👤 ${b.display_name ?? b.username ?? state.name(b.user)}`;
    case KIND.recall: return "Recalled a message";
    case KIND.edit: return `Edited: ${b.body?.text ?? ""}`;
    default: return "Unsupported message";
  }
}

function systemText(state: State, msg: Msg): string {
  const d = msg.body?.data ?? {};
  const names = (ids: unknown) => (Array.isArray(ids) ? ids.map((id) => state.name(id)).join(", ") : "");
  const by = d.by ? state.name(d.by) : state.name(msg.from);
  switch (msg.body?.event) {
    case "members.joined": return `${by} added ${names(d.users)}`;
    case "members.removed": return `${by} removed ${names(d.users)}`;
    case "member.left": return `${state.name(d.user)} left`;
    case "group.dismissed": return `${by} dismissed the group`;
    case "owner.transferred": return `${state.name(d.to)} is now the owner`;
    case "admin.added": return `${state.name(d.user)} is now an admin`;
    case "admin.removed": return `${state.name(d.user)} is no longer an admin`;
    case "group.updated": return d.announcement !== undefined ? `${by} posted an announcement` : `${by} updated the group`;
    default: return `${by}: ${String(msg.body?.event ?? "update").replace(/[._]/g, " ")}`;
  }
}

export class ChatView {
  private cid: string | null = null;
  private list = h("ol", { class: "messages", id: "messages", "aria-label": "Messages", "aria-live": "polite" });
  private header = h("header", { class: "chat-head" });
  private banner = h("div", { class: "announcement", id: "announcement", hidden: true });
  private context = h("div", { class: "context", hidden: true });
  private suggestions = h("div", { class: "suggestions", id: "mention-suggestions", hidden: true });
  private picker = h("div", { class: "emoji-picker", id: "emoji-picker", hidden: true, role: "group", "aria-label": "Emoji" });
  private input = h("textarea", { id: "composer", rows: 1, "aria-label": "Message", placeholder: "Message", maxlength: 16000 });
  private file = h("input", { type: "file", id: "attach", hidden: true, "aria-hidden": "true" });
  private voiceButton = h("button", { type: "button", class: "icon", id: "voice", "aria-label": "Record a voice note", "aria-pressed": "false" }, "🎤");
  private panel = h("aside", { class: "group-panel", id: "group-panel", hidden: true, "aria-label": "Group details" });
  private replyTo: Msg | null = null;
  private editing: Msg | null = null;
  private lastTyping = 0;
  private recorder = new VoiceRecorder();
  private loading = false;

  constructor(private root: HTMLElement, private state: State, private call: CallView, private back: () => void) {
    const form = h("form", { class: "composer", "aria-label": "Write a message" });
    const emojiButton = h("button", { type: "button", class: "icon", id: "emoji", "aria-label": "Emoji", "aria-expanded": "false", "aria-controls": "emoji-picker" }, "🙂");
    const attach = h("button", { type: "button", class: "icon", id: "attach-button", "aria-label": "Attach a photo or file" }, "📎");
    const send = h("button", { type: "submit", class: "primary", id: "send" }, "Send");
    for (const e of EMOJI) {
      const b = h("button", { type: "button", "aria-label": e }, e);
      b.addEventListener("click", () => this.insert(e));
      this.picker.append(b);
    }
    emojiButton.addEventListener("click", () => {
      this.picker.hidden = !this.picker.hidden;
      emojiButton.setAttribute("aria-expanded", String(!this.picker.hidden));
    });
    attach.addEventListener("click", () => this.file.click());
    this.file.addEventListener("change", () => void this.sendFiles());
    this.voiceButton.addEventListener("click", () => void this.toggleVoice());
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      } else if (event.key === "Escape") {
        this.cancelContext();
      }
    });
    this.input.addEventListener("input", () => this.onInput());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    form.append(this.context, this.suggestions, this.picker,
      h("div", { class: "row" }, emojiButton, attach, this.file, this.voiceButton, this.input, send));
    this.list.addEventListener("scroll", () => {
      if (this.list.scrollTop < 40) void this.loadOlder();
    });
    document.addEventListener("visibilitychange", () => this.markRead());
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !this.cid || document.querySelector("dialog[open]")) return;
      if (!this.picker.hidden || !this.suggestions.hidden) {
        this.picker.hidden = this.suggestions.hidden = true;
        emojiButton.setAttribute("aria-expanded", "false");
        this.input.focus();
      } else if (!this.panel.hidden) {
        void this.toggleGroupPanel();
      }
    });
    replace(root, h("div", { class: "chat-col" }, this.header, this.banner, this.list, form), this.panel);
    this.composer = form;
  }

  private composer: HTMLFormElement;

  private get conv(): Conv | undefined {
    return this.cid ? this.state.convs.get(this.cid) : undefined;
  }

  show(cid: string | null): void {
    this.cid = cid;
    this.rendered.clear();
    replace(this.list);
    this.root.hidden = false;
    this.cancelContext();
    this.panel.hidden = true;
    this.composer.hidden = !cid;
    if (!cid) {
      replace(this.header, h("p", { class: "empty" }, "Pick a conversation."));
      replace(this.list);
      this.banner.hidden = true;
      return;
    }
    this.render();
    if (this.state.timeline(cid).size === 0 || !this.state.olderExists.has(cid)) void this.loadLatest();
    else this.scrollToEnd();
    this.markRead();
    this.input.focus();
  }

  reload(): void {
    if (this.cid) void this.loadLatest();
  }

  refresh(what: string): void {
    if (!this.cid) return;
    if (what === "typing" || what === "presence" || what === "users") this.renderHeader();
    if (what !== "typing" && what !== "presence") this.renderMessages(false);
    if (what === "convs") this.renderHeader();
  }

  onMessage(msg: Msg): void {
    if (msg.cid !== this.cid) return;
    this.renderMessages(true);
    this.markRead();
  }

  private async loadLatest(): Promise<void> {
    const cid = this.cid!;
    try {
      const page = await this.state.backend.history(cid, undefined, PAGE);
      for (const m of page.messages) this.state.add(m, false);
      this.state.olderExists.set(cid, page.more);
      if (cid === this.cid) {
        this.renderMessages(true);
        this.markRead();
      }
    } catch (err) {
      toast(String(err));
    }
  }

  private async loadOlder(): Promise<void> {
    const cid = this.cid;
    if (!cid || this.loading || !this.state.olderExists.get(cid)) return;
    const first = Math.min(...this.state.timeline(cid).keys());
    this.loading = true;
    try {
      const page = await this.state.backend.history(cid, first, PAGE);
      for (const m of page.messages) this.state.add(m, false);
      this.state.olderExists.set(cid, page.more);
      if (cid === this.cid) {
        const height = this.list.scrollHeight;
        this.renderMessages(false);
        this.list.scrollTop += this.list.scrollHeight - height;
      }
    } catch (err) {
      toast(String(err));
    } finally {
      this.loading = false;
    }
  }

  private markRead(): void {
    const conv = this.conv;
    if (!conv || document.visibilityState !== "visible") return;
    if (conv.max_seq > conv.read_seq || conv.unread) {
      const seq = conv.max_seq;
      conv.read_seq = seq;
      conv.unread = 0;
      conv.mention = false;
      this.state.changed("convs");
      this.state.backend.read(conv.cid, seq).catch(() => undefined);
    }
  }

  private scrollToEnd(): void {
    this.list.scrollTop = this.list.scrollHeight;
  }

  private render(): void {
    this.renderHeader();
    this.renderMessages(true);
  }

  private renderHeader(): void {
    const conv = this.conv;
    if (!conv) return;
    const title = this.state.title(conv);
    const typing = this.state.typingIn(conv.cid).map((u) => this.state.name(u));
    let subtitle = "";
    if (typing.length) subtitle = `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…`;
    else if (conv.peer) {
      const p = this.state.presence.get(conv.peer);
      subtitle = p ? presenceText(p.state, p.last_seen) : "";
    } else {
      const members = this.state.members.get(conv.group!);
      subtitle = members ? `${members.length} members` : "Group";
    }
    const back = h("button", { type: "button", class: "icon back", "aria-label": "Back to conversations" }, "←");
    back.addEventListener("click", () => this.back());
    const pin = h("button", { type: "button", class: "icon", id: "pin", "aria-pressed": String(conv.pinned), "aria-label": conv.pinned ? "Unpin" : "Pin" }, "📌");
    pin.addEventListener("click", () => this.setting({ pinned: !conv.pinned }));
    const mute = h("button", { type: "button", class: "icon", id: "mute", "aria-pressed": String(conv.muted), "aria-label": conv.muted ? "Unmute" : "Mute" }, conv.muted ? "🔕" : "🔔");
    mute.addEventListener("click", () => this.setting({ muted: !conv.muted }));
    const actions: HTMLElement[] = [];
    if (conv.peer) {
      for (const media of ["audio", "video"] as const) {
        const b = h("button", { type: "button", class: "icon", id: `call-${media}`, "aria-label": media === "audio" ? "Voice call" : "Video call" }, media === "audio" ? "📞" : "🎥");
        b.addEventListener("click", () => void this.call.start(conv.peer!, media));
        actions.push(b);
      }
    } else {
      const info = h("button", { type: "button", class: "icon", id: "group-info", "aria-label": "Group details", "aria-expanded": String(!this.panel.hidden) }, "ℹ️");
      info.addEventListener("click", () => void this.toggleGroupPanel());
      actions.push(info);
    }
    replace(this.header, back,
      h("div", { class: "chat-title" }, h("h2", { id: "chat-title" }, title), h("p", { class: "subtitle", id: "chat-subtitle", "aria-live": "polite" }, subtitle)),
      h("div", { class: "chat-actions" }, ...actions, pin, mute));
    const group = conv.group ? this.state.groups.get(conv.group) : undefined;
    this.banner.hidden = !group?.announcement;
    replace(this.banner, group?.announcement ? ["📢 ", group.announcement] : null);
  }

  private async setting(settings: { pinned?: boolean; muted?: boolean }): Promise<void> {
    const conv = this.conv!;
    try {
      await this.state.backend.setConversation(conv.cid, settings);
      Object.assign(conv, settings);
      this.state.changed("convs");
    } catch (err) {
      toast(String(err));
    }
  }

  /** Messages already on screen, by seq, with what they showed: unchanged ones stay in place
   * (so a screen reader announces only what is new in the live region). */
  private rendered = new Map<number, { key: string; el: HTMLElement }>();
  private older = h("li", { class: "older" });

  private renderMessages(stick: boolean): void {
    const cid = this.cid!;
    const atEnd = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
    const conv = this.conv;
    const messages = [...this.state.timeline(cid).values()]
      .filter((m) => m.kind !== KIND.recall && m.kind !== KIND.edit)
      .sort((a, b) => a.seq - b.seq);
    const items: HTMLElement[] = [];
    if (this.state.olderExists.get(cid)) {
      if (!this.older.firstChild) {
        const more = h("button", { type: "button", class: "link", id: "load-older" }, "Load earlier messages");
        more.addEventListener("click", () => void this.loadOlder());
        this.older.append(more);
      }
      items.push(this.older);
    }
    let lastOwn = 0;
    for (const m of messages) if (m.from === this.state.me.id && m.kind !== KIND.system && m.kind !== KIND.call) lastOwn = m.seq;
    const role = conv?.kind === "group" ? this.myRole() : "";
    for (const msg of messages) {
      const own = msg.seq === lastOwn;
      const target = msg.reply_to ? this.state.timeline(cid).get(msg.reply_to) : undefined;
      const key = JSON.stringify([
        msg.recalled, msg.edited_at, msg.body, this.state.name(msg.from), own,
        own ? conv?.peer_read_seq ?? 0 : 0, role,
        target ? [this.state.name(target.from), summary(this.state, target)] : null,
        msg.kind === KIND.system ? systemText(this.state, msg) : null,
      ]);
      let entry = this.rendered.get(msg.seq);
      if (!entry || entry.key !== key) {
        entry = { key, el: this.message(msg, conv, own) };
        this.rendered.set(msg.seq, entry);
      }
      items.push(entry.el);
    }
    items.forEach((el, i) => {
      if (this.list.children[i] !== el) this.list.insertBefore(el, this.list.children[i] ?? null);
    });
    while (this.list.children.length > items.length) this.list.lastElementChild!.remove();
    if (stick || atEnd) this.scrollToEnd();
  }

  private message(msg: Msg, conv: Conv | undefined, lastOwn: boolean): HTMLElement {
    const mine = msg.from === this.state.me.id;
    if (msg.kind === KIND.system) {
      return h("li", { class: "system", "data-seq": msg.seq }, systemText(this.state, msg));
    }
    const group = conv?.kind === "group";
    const li = h("li", { class: `msg${mine ? " mine" : ""}${msg.recalled ? " recalled" : ""}`, "data-seq": msg.seq, id: `m-${msg.cid}-${msg.seq}` });
    const meta = h("div", { class: "meta" },
      group && !mine ? h("span", { class: "author" }, this.state.name(msg.from)) : null,
      h("time", { datetime: new Date(msg.ts).toISOString() }, time(msg.ts)),
      msg.edited_at ? h("span", { class: "edited" }, " · edited") : null,
      msg.forward ? h("span", { class: "edited" }, ` · forwarded from ${this.state.name(msg.forward.from)}`) : null);
    const quote = msg.reply_to ? this.quote(msg.cid, msg.reply_to) : null;
    li.append(meta);
    if (quote) li.append(quote);
    li.append(this.body(msg));
    if (mine && !msg.recalled && conv?.kind === "direct" && msg.kind !== KIND.call) {
      const read = (conv.peer_read_seq ?? 0) >= msg.seq;
      if (lastOwn) {
        li.append(h("div", { class: `status${read ? " read" : ""}`, "data-status": read ? "read" : "sent", "aria-label": read ? "Read" : "Sent" }, read ? "✓✓ Read" : "✓ Sent"));
      }
    }
    if (!msg.recalled && msg.kind !== KIND.call) li.append(this.actions(msg, mine, group));
    return li;
  }

  private quote(cid: string, seq: number): HTMLElement {
    const target = this.state.timeline(cid).get(seq);
    const text = target ? `${this.state.name(target.from)}: ${summary(this.state, target)}` : "An earlier message";
    const q = h("button", { type: "button", class: "quote", "aria-label": `In reply to ${text}` }, text);
    q.addEventListener("click", () => document.getElementById(`m-${cid}-${seq}`)?.scrollIntoView({ block: "center" }));
    return q;
  }

  private body(msg: Msg): HTMLElement {
    if (msg.recalled) return h("div", { class: "body" }, h("em", null, "This message was recalled"));
    const b = msg.body ?? {};
    const backend = this.state.backend;
    switch (msg.kind) {
      case KIND.text: return h("div", { class: "body text" }, this.mentionMarks(b.text));
      case KIND.emoji: return h("div", { class: "body emoji" }, b.emoji);
      case KIND.image: {
        const img = h("img", { alt: b.name ? `Photo ${b.name}` : "Photo", class: "thumb", width: Math.min(240, b.width), "data-file": b.file });
        img.style.aspectRatio = `${b.width} / ${b.height}`;
        blobUrl(backend, b.file, true).then((url) => (img.src = url), () => (img.alt = "Photo (unavailable)"));
        const open = h("button", { type: "button", class: "image", "aria-label": "Open photo" }, img);
        open.addEventListener("click", () => void this.viewImage(b.file, b.name ?? "photo"));
        return h("div", { class: "body" }, open);
      }
      case KIND.file: {
        const button = h("button", { type: "button", class: "file" }, `📎 ${b.name}`, h("small", null, ` ${Math.ceil(b.size / 1024)} KB`));
        button.addEventListener("click", () => void saveFile(backend, b.file, b.name).catch((err) => toast(String(err))));
        return h("div", { class: "body" }, button);
      }
      case KIND.voice: {
        const audio = h("audio", { controls: true, preload: "metadata", "aria-label": `Voice note, ${duration(b.duration_ms)}`, class: "voice" });
        blobUrl(backend, b.file).then((url) => (audio.src = url), () => undefined);
        return h("div", { class: "body" }, audio, h("small", null, ` ${duration(b.duration_ms)}`));
      }
      default: return h("div", { class: `body${msg.kind === KIND.call ? " call-log" : ""}` }, summary(this.state, msg));
    }
  }

  private mentionMarks(text: string): (string | HTMLElement)[] {
    return text.split(/(@[\w.-]+)/).map((part, i) => (i % 2 ? h("mark", { class: "mention" }, part) : part));
  }

  private actions(msg: Msg, mine: boolean, group: boolean): HTMLElement {
    const bar = h("div", { class: "actions" });
    const add = (label: string, name: string, act: () => void) => {
      const b = h("button", { type: "button", class: "link", "data-action": name }, label);
      b.addEventListener("click", act);
      bar.append(b);
    };
    add("Reply", "reply", () => this.startReply(msg));
    const role = group ? this.myRole() : "member";
    if (mine && msg.kind === KIND.text) add("Edit", "edit", () => this.startEdit(msg));
    if (mine || role === "owner" || role === "admin") {
      add("Recall", "recall", () => void this.state.backend.recall(msg.cid, msg.seq).catch((err) => toast(err instanceof Error ? err.message : String(err))));
    }
    if (mine && group) {
      add("Seen by", "readers", async () => {
        try {
          const r = await this.state.backend.readers(msg.cid, msg.seq);
          const others = r.read.filter((u) => u !== this.state.me.id);
          toast(others.length ? `Seen by ${others.map((u) => this.state.name(u)).join(", ")}` : "Not seen yet");
        } catch (err) {
          toast(String(err));
        }
      });
    }
    return bar;
  }

  private myRole(): string {
    const conv = this.conv;
    const members = conv?.group ? this.state.members.get(conv.group) : undefined;
    if (!members && conv?.group) void this.loadMembers(conv.group);
    return members?.find((m) => m.user === this.state.me.id)?.role ?? "member";
  }

  private async loadMembers(group: string): Promise<Member[]> {
    const members = await this.state.backend.members(group);
    this.state.members.set(group, members);
    for (const m of members) this.state.name(m.user);
    return members;
  }

  private startReply(msg: Msg): void {
    this.editing = null;
    this.replyTo = msg;
    this.showContext(`Replying to ${this.state.name(msg.from)}: ${summary(this.state, msg)}`);
  }

  private startEdit(msg: Msg): void {
    this.replyTo = null;
    this.editing = msg;
    this.input.value = msg.body.text;
    this.showContext("Editing message");
  }

  private showContext(text: string): void {
    const cancel = h("button", { type: "button", class: "icon", "aria-label": "Cancel" }, "✕");
    cancel.addEventListener("click", () => this.cancelContext());
    replace(this.context, h("span", null, text), cancel);
    this.context.hidden = false;
    this.input.focus();
  }

  private cancelContext(): void {
    if (this.editing) this.input.value = "";
    this.replyTo = null;
    this.editing = null;
    this.context.hidden = true;
  }

  private insert(text: string): void {
    const { selectionStart: start, selectionEnd: end, value } = this.input;
    this.input.value = value.slice(0, start) + text + value.slice(end);
    this.input.selectionStart = this.input.selectionEnd = start + text.length;
    this.input.focus();
  }

  private onInput(): void {
    const conv = this.conv;
    if (!conv) return;
    const now = Date.now();
    if (this.input.value && now - this.lastTyping > 2000) {
      this.lastTyping = now;
      this.state.backend.typing(conv.cid, true).catch(() => undefined);
    }
    // Mention suggestions in groups: the word being typed after "@".
    const before = this.input.value.slice(0, this.input.selectionStart);
    const word = /@([\w.-]*)$/.exec(before);
    const members = conv.group ? this.state.members.get(conv.group) : undefined;
    if (!word || !conv.group) {
      this.suggestions.hidden = true;
      return;
    }
    if (!members) {
      void this.loadMembers(conv.group).then(() => this.onInput());
      return;
    }
    const prefix = word[1].toLowerCase();
    const names = members.filter((m) => m.user !== this.state.me.id)
      .map((m) => this.state.users.get(m.user)?.username ?? m.user)
      .filter((n) => n.toLowerCase().startsWith(prefix));
    if (this.myRole() !== "member" && "all".startsWith(prefix)) names.push("all");
    replace(this.suggestions, names.slice(0, 6).map((n) => {
      const b = h("button", { type: "button", "data-mention": n }, `@${n}`);
      b.addEventListener("click", () => {
        const pos = this.input.selectionStart;
        const start = pos - word[0].length;
        this.input.value = this.input.value.slice(0, start) + `@${n} ` + this.input.value.slice(pos);
        this.input.selectionStart = this.input.selectionEnd = start + n.length + 2;
        this.suggestions.hidden = true;
        this.input.focus();
      });
      return b;
    }));
    this.suggestions.hidden = names.length === 0;
  }

  private mentionsIn(text: string): string[] | undefined {
    const conv = this.conv;
    if (!conv?.group) return undefined;
    const tokens = [...text.matchAll(/@([\w.-]+)/g)].map((m) => m[1]);
    if (tokens.includes("all") && this.myRole() !== "member") return ["@all"];
    const members = this.state.members.get(conv.group) ?? [];
    const ids = members.filter((m) => {
      const u = this.state.users.get(m.user);
      return tokens.includes(u?.username ?? m.user) || tokens.includes(m.user);
    }).map((m) => m.user);
    return ids.length ? [...new Set(ids)] : undefined;
  }

  private async submit(): Promise<void> {
    const conv = this.conv;
    const text = this.input.value.trim();
    if (!conv || !text) return;
    const backend = this.state.backend;
    const editing = this.editing;
    const replyTo = this.replyTo;
    this.input.value = "";
    this.cancelContext();
    this.suggestions.hidden = true;
    this.picker.hidden = true;
    this.lastTyping = 0;
    backend.typing(conv.cid, false).catch(() => undefined);
    try {
      if (editing) {
        await backend.edit(conv.cid, editing.seq, { text });
        return;
      }
      if (conv.group && !this.state.members.has(conv.group) && text.includes("@")) await this.loadMembers(conv.group);
      const options = { replyTo: replyTo?.seq, mentions: this.mentionsIn(text) };
      const msg = ONE_EMOJI.test(text) && !replyTo
        ? await backend.send(conv.cid, KIND.emoji, { emoji: text }, options)
        : await backend.send(conv.cid, KIND.text, { text }, options);
      this.state.add(msg, true);
      this.state.changed("convs");
      this.renderMessages(true);
    } catch (err) {
      this.input.value = text;
      toast(err instanceof Error ? err.message : String(err));
    }
  }

  private async sendFiles(): Promise<void> {
    const conv = this.conv;
    const files = [...(this.file.files ?? [])];
    this.file.value = "";
    if (!conv) return;
    for (const f of files) {
      try {
        const image = /^image\/(png|jpeg|gif|webp)$/.test(f.type);
        await this.state.backend.sendUpload(conv.cid, image ? "image" : "file", f, { name: f.name || "file" });
      } catch (err) {
        toast(err instanceof Error ? err.message : String(err));
      }
    }
  }

  private async toggleVoice(): Promise<void> {
    const conv = this.conv;
    if (!conv) return;
    try {
      if (!this.recorder.recording) {
        await this.recorder.start();
        this.voiceButton.setAttribute("aria-pressed", "true");
        this.voiceButton.setAttribute("aria-label", "Stop and send the voice note");
        this.voiceButton.textContent = "⏹";
        return;
      }
      this.voiceButton.setAttribute("aria-pressed", "false");
      this.voiceButton.setAttribute("aria-label", "Record a voice note");
      this.voiceButton.textContent = "🎤";
      const { blob, durationMs } = await this.recorder.stop();
      await this.state.backend.sendUpload(conv.cid, "voice", blob, { name: "voice.webm", durationMs });
    } catch (err) {
      toast(err instanceof Error ? err.message : String(err));
    }
  }

  private async viewImage(file: string, name: string): Promise<void> {
    const url = await blobUrl(this.state.backend, file);
    const close = h("button", { type: "button", class: "icon", "aria-label": "Close" }, "✕");
    const dialog = h("dialog", { class: "viewer", "aria-label": name }, close, h("img", { src: url, alt: name }));
    close.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  }

  private async toggleGroupPanel(): Promise<void> {
    const conv = this.conv;
    if (!conv?.group) return;
    if (!this.panel.hidden) {
      this.panel.hidden = true;
      this.renderHeader();
      document.getElementById("group-info")?.focus();
      return;
    }
    await this.renderGroupPanel(conv.group);
    this.panel.hidden = false;
    this.renderHeader();
    this.panel.querySelector<HTMLElement>("h2")?.focus();
  }

  private async renderGroupPanel(groupId: string): Promise<void> {
    const backend = this.state.backend;
    try {
      const [group, members, friends] = await Promise.all([backend.group(groupId), this.loadMembers(groupId), backend.friends()]);
      this.state.groups.set(group.id, group);
      const role = members.find((m) => m.user === this.state.me.id)?.role ?? "member";
      const manager = role === "owner" || role === "admin";
      const refresh = () => void this.renderGroupPanel(groupId);
      const announcement = h("textarea", { id: "announcement-input", rows: 3, "aria-label": "Announcement", readonly: !manager }, group.announcement ?? "");
      const save = h("button", { type: "button", id: "save-announcement" }, "Post announcement");
      save.addEventListener("click", async () => {
        await backend.updateGroup(groupId, { announcement: announcement.value }).catch((err) => toast(String(err)));
        this.state.groups.set(groupId, { ...group, announcement: announcement.value });
        this.renderHeader();
        refresh();
      });
      const outside = friends.filter((f) => !members.some((m) => m.user === f.id));
      const pick = h("select", { id: "invite-select", "aria-label": "Friend to invite" }, outside.map((f) => h("option", { value: f.id }, f.display_name || f.username)));
      const invite = h("button", { type: "button", id: "invite", disabled: !outside.length }, "Invite");
      invite.addEventListener("click", async () => {
        await backend.invite(groupId, [pick.value]).catch((err) => toast(String(err)));
        refresh();
      });
      const close = h("button", { type: "button", class: "icon close", id: "group-panel-close", "aria-label": "Close group details" }, "✕");
      close.addEventListener("click", () => void this.toggleGroupPanel());
      replace(this.panel,
        h("div", { class: "row panel-head" }, h("h2", { tabindex: -1 }, group.name), close),
        h("h3", null, "Announcement"), announcement, manager ? save : null,
        h("h3", null, `Members (${members.length})`),
        h("ul", { class: "members", id: "members" }, members.map((m) => {
          const li = h("li", { "data-member": this.state.users.get(m.user)?.username ?? m.user }, h("span", null, this.state.name(m.user)), h("small", { class: `role ${m.role}` }, m.role));
          if (role === "owner" && m.role !== "owner") {
            const next = m.role === "admin" ? "member" : "admin";
            const b = h("button", { type: "button", class: "link", "data-role": next }, next === "admin" ? "Make admin" : "Remove admin");
            b.addEventListener("click", async () => {
              await backend.setRole(groupId, m.user, next).catch((err) => toast(String(err)));
              refresh();
            });
            li.append(b);
          }
          return li;
        })),
        outside.length ? [h("h3", null, "Invite"), h("div", { class: "row" }, pick, invite)] : null,
      );
    } catch (err) {
      toast(String(err));
    }
  }
}
