// The signed-in shell: top bar, the side panel (chats, contacts, inbox) and the chat view.
import type { Backend, Friend, FriendRequest, Notice, User } from "./backend.ts";
import { h, replace, time, toast } from "./dom.ts";
import { KIND, State } from "./state.ts";
import { ChatView, preview } from "./chat.ts";
import { CallView } from "./call.ts";

type Tab = "chats" | "contacts" | "inbox";

export function startApp(root: HTMLElement, backend: Backend, signedOut: () => void): void {
  const state = new State(backend);
  let tab: Tab = "chats";
  let friends: Friend[] = [];
  let requests: { incoming: FriendRequest[]; outgoing: FriendRequest[] } = { incoming: [], outgoing: [] };
  /** The new-group form while it is open (re-renders of the contacts panel keep it). */
  let openForm: HTMLElement | null = null;
  let inboxAcked = Number(localStorage.getItem(`sandcat.inbox.${backend.me.id}`) ?? 0);

  const status = h("span", { class: "conn", id: "connection", role: "status" }, "connecting…");
  const presence = h(
    "select",
    { id: "my-presence", "aria-label": "My status" },
    ...["online", "away", "busy", "invisible"].map((s) => h("option", { value: s }, s)),
  );
  presence.addEventListener("change", () => void backend.presence(presence.value as any));
  const logout = h("button", { type: "button", class: "ghost", id: "logout" }, "Log out");
  logout.addEventListener("click", async () => {
    await backend.logout().catch(() => undefined);
    backend.close();
    signedOut();
  });
  const tabs: Record<Tab, HTMLButtonElement> = {
    chats: tabButton("chats", "Chats"),
    contacts: tabButton("contacts", "Contacts"),
    inbox: tabButton("inbox", "Inbox"),
  };
  const panel = h("div", { class: "panel", id: "panel", role: "tabpanel" });
  const side = h(
    "nav",
    { class: "side", "aria-label": "Conversations and contacts" },
    h("div", { class: "tabs", role: "tablist", "aria-label": "Sections" }, tabs.chats, tabs.contacts, tabs.inbox),
    panel,
  );
  const chatRoot = h("main", { class: "chat", id: "chat", "aria-label": "Conversation" });
  const shell = h("div", { class: "shell", "data-view": "list" }, side, chatRoot);
  const callRoot = h("div", { id: "call", class: "call", hidden: true, role: "dialog", "aria-label": "Call" });
  replace(
    root,
    h(
      "header",
      { class: "topbar" },
      h("strong", { class: "brand" }, "Sandcat"),
      h("span", { class: "me", id: "me" }, backend.me.display_name || backend.me.username),
      status,
      presence,
      logout,
    ),
    shell,
    callRoot,
    h("div", { id: "toast", class: "toast", role: "status", hidden: true }),
  );

  const call = new CallView(callRoot, state);
  const chat = new ChatView(chatRoot, state, call, () => {
    shell.dataset.view = "list";
    state.open = null;
    renderPanel();
  });

  function tabButton(name: Tab, label: string): HTMLButtonElement {
    const button = h("button", {
      type: "button", role: "tab", id: `tab-${name}`, "aria-controls": "panel", "aria-selected": "false",
    }, label);
    button.addEventListener("click", () => select(name));
    button.addEventListener("keydown", (event) => {
      const order: Tab[] = ["chats", "contacts", "inbox"];
      const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = order[(order.indexOf(name) + step + order.length) % order.length];
      select(next);
      tabs[next].focus();
    });
    return button;
  }

  function select(name: Tab): void {
    tab = name;
    openForm = null;
    if (name === "contacts") void loadContacts();
    renderPanel();
  }

  function openConv(cid: string): void {
    state.open = cid;
    shell.dataset.view = "chat";
    chat.show(cid);
    renderPanel();
  }

  function unseenNotices(): number {
    return state.notices.filter((n) => n.nseq > inboxAcked).length;
  }

  function renderTabs(): void {
    for (const [name, button] of Object.entries(tabs) as [Tab, HTMLButtonElement][]) {
      button.setAttribute("aria-selected", String(name === tab));
      button.tabIndex = name === tab ? 0 : -1;
    }
    const unseen = unseenNotices();
    replace(tabs.inbox, "Inbox", unseen ? h("span", { class: "badge", id: "inbox-badge" }, unseen) : null);
    const pending = requests.incoming.length;
    replace(tabs.contacts, "Contacts", pending ? h("span", { class: "badge" }, pending) : null);
    const unread = [...state.convs.values()].filter((c) => !c.muted).reduce((n, c) => n + c.unread, 0);
    replace(tabs.chats, "Chats", unread ? h("span", { class: "badge" }, unread) : null);
    document.title = unread ? `(${unread}) Sandcat` : "Sandcat";
  }

  function renderPanel(): void {
    renderTabs();
    panel.setAttribute("aria-labelledby", `tab-${tab}`);
    const focused = (document.activeElement as HTMLElement | null)?.dataset?.cid;
    if (tab === "chats") replace(panel, convList());
    else if (tab === "contacts" && openForm) {
      if (panel.firstChild !== openForm) replace(panel, openForm);
    } else if (tab === "contacts") {
      const root = contactsPanel();
      if (panel.firstChild !== root) replace(panel, root);
    }
    else replace(panel, inboxPanel());
    if (focused) panel.querySelector<HTMLElement>(`[data-cid="${CSS.escape(focused)}"]`)?.focus();
  }

  function convList(): HTMLElement {
    const convs = state.sortedConvs();
    if (!convs.length) {
      return h("p", { class: "empty", id: "conv-list" }, "No conversations yet. Find people under Contacts.");
    }
    return h(
      "ul",
      { class: "convs", id: "conv-list", "aria-label": "Conversations" },
      convs.map((conv) => {
        const title = state.title(conv);
        const online = conv.peer && state.presence.get(conv.peer)?.state === "online";
        const button = h(
          "button",
          {
            type: "button", class: "conv", "data-cid": conv.cid,
            "aria-current": conv.cid === state.open ? "true" : undefined,
            "aria-label": `${title}${conv.unread ? `, ${conv.unread} unread` : ""}${conv.mention ? ", mentioned" : ""}`,
          },
          h("span", { class: `avatar${online ? " online" : ""}`, "aria-hidden": "true" }, title.slice(0, 1).toUpperCase()),
          h(
            "span", { class: "conv-main" },
            h("span", { class: "conv-title" }, h("span", { class: "conv-name" }, title),
              conv.pinned ? h("span", { class: "flag", title: "Pinned", "aria-label": "pinned" }, " 📌") : null,
              conv.muted ? h("span", { class: "flag", title: "Muted", "aria-label": "muted" }, " 🔕") : null),
            h("span", { class: "conv-last" }, conv.last ? preview(state, conv.last, conv.kind === "group") : ""),
          ),
          h(
            "span", { class: "conv-side" },
            conv.last ? h("time", null, time(conv.last.ts)) : null,
            conv.mention ? h("span", { class: "mention-badge", title: "You were mentioned" }, "@") : null,
            conv.unread ? h("span", { class: `badge${conv.muted ? " muted" : ""}`, "data-unread": conv.unread }, conv.unread) : null,
          ),
        );
        button.addEventListener("click", () => openConv(conv.cid));
        return h("li", null, button);
      }),
    );
  }

  async function loadContacts(): Promise<void> {
    try {
      [friends, requests] = await Promise.all([backend.friends(), backend.friendRequests()]);
      for (const f of friends) state.users.set(f.id, f);
      if (tab === "contacts") renderPanel();
      else renderTabs();
    } catch (err) {
      toast(String(err));
    }
  }

  // The search form stays in place across re-renders (typing and focus survive pushes).
  const query = h("input", { id: "search-users", type: "search", placeholder: "Username", "aria-label": "Find people by username" });
  const results = h("ul", { class: "results", id: "search-results", "aria-label": "Search results" });
  const search = h("form", { class: "search", role: "search" }, query, h("button", { type: "submit" }, "Find"));
  const contactsBody = h("div");
  const contactsRoot = h("div", { class: "contacts" }, search, results, contactsBody);
  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!query.value.trim()) return;
    const found = await backend.searchUsers(query.value.trim()).catch((err) => (toast(String(err)), [] as User[]));
    replace(results, found.length ? found.filter((u) => u.id !== backend.me.id).map((user) => {
      state.users.set(user.id, user);
      const isFriend = friends.some((f) => f.id === user.id);
      const add = h("button", { type: "button", "data-user": user.username, disabled: isFriend }, isFriend ? "Friend" : "Add friend");
      add.addEventListener("click", async () => {
        add.disabled = true;
        try {
          await backend.requestFriend(user.id);
          add.textContent = "Requested";
          void loadContacts();
        } catch (err) {
          toast(String(err));
          add.disabled = false;
        }
      });
      return h("li", null, h("span", null, user.display_name || user.username, h("small", null, ` @${user.username}`)), add);
    }) : h("li", { class: "empty" }, "Nobody by that name."));
  });

  function contactsPanel(): HTMLElement {
    const incoming = requests.incoming.map((request) => {
      const accept = h("button", { type: "button", class: "primary", "data-accept": state.name(request.from) }, "Accept");
      const reject = h("button", { type: "button" }, "Decline");
      const answer = (yes: boolean) => async () => {
        accept.disabled = reject.disabled = true;
        await backend.answerRequest(request.id, yes).catch((err) => toast(String(err)));
        await loadContacts();
        if (yes) {
          await refreshConvs();
          refreshPresence();
        }
      };
      accept.addEventListener("click", answer(true));
      reject.addEventListener("click", answer(false));
      return h("li", null, h("span", null, state.name(request.from), request.message ? h("small", null, ` “${request.message}”`) : null), accept, reject);
    });
    const newGroup = h("button", { type: "button", id: "new-group" }, "New group");
    newGroup.addEventListener("click", () => {
      openForm = groupForm();
      renderPanel();
    });
    replace(contactsBody,
      incoming.length ? [h("h2", null, "Friend requests"), h("ul", { class: "requests", id: "requests" }, incoming)] : null,
      requests.outgoing.length ? [h("h2", null, "Sent requests"), h("ul", { class: "requests" }, requests.outgoing.map((r) => h("li", null, state.name(r.to), h("small", null, " pending"))))] : null,
      h("h2", null, "Friends ", newGroup),
      friends.length ? h("ul", { class: "friends", id: "friends" }, friends.map((friend) => {
        const p = state.presence.get(friend.id);
        const button = h("button", { type: "button", class: "conv", "data-friend": friend.username },
          h("span", { class: `avatar${p?.state === "online" ? " online" : ""}`, "aria-hidden": "true" }, (friend.display_name || friend.username).slice(0, 1).toUpperCase()),
          h("span", { class: "conv-main" }, h("span", { class: "conv-title" }, friend.display_name || friend.username),
            h("span", { class: "conv-last" }, p ? presenceText(p.state, p.last_seen) : "")));
        button.addEventListener("click", () => {
          if (!state.convs.has(friend.cid)) {
            const [, a, b] = friend.cid.split(":");
            state.convs.set(friend.cid, {
              cid: friend.cid, kind: "direct", peer: a === backend.me.id ? b : a, max_seq: 0, min_seq: 1,
              read_seq: 0, muted: false, pinned: false, unread: 0, mention: false, hidden: false, cleared_seq: 0,
            });
          }
          tab = "chats";
          openConv(friend.cid);
        });
        return h("li", null, button);
      })) : h("p", { class: "empty" }, "No friends yet."),
    );
    return contactsRoot;
  }

  function groupForm(): HTMLElement {
    const name = h("input", { id: "group-name", required: true, maxlength: 64 });
    const form = h(
      "form", { class: "group-form", "aria-label": "New group" },
      h("h2", null, "New group"),
      h("label", { for: "group-name" }, "Name"), name,
      h("fieldset", null, h("legend", null, "Members"),
        friends.length ? friends.map((f) => h("label", { class: "check" }, h("input", { type: "checkbox", value: f.id, "data-member": f.username }), f.display_name || f.username))
          : h("p", { class: "empty" }, "Add friends first.")),
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: "create-group" }, "Create"), h("button", { type: "button", id: "cancel-group" }, "Cancel")),
    );
    form.querySelector("#cancel-group")!.addEventListener("click", () => {
      openForm = null;
      renderPanel();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const members = [...form.querySelectorAll<HTMLInputElement>("input[type=checkbox]:checked")].map((c) => c.value);
      try {
        const group = await backend.createGroup(name.value.trim(), members);
        openForm = null;
        state.groups.set(group.id, group);
        await refreshConvs();
        tab = "chats";
        openConv(group.cid);
      } catch (err) {
        toast(String(err));
      }
    });
    setTimeout(() => name.focus());
    return form;
  }

  function noticeText(notice: Notice): string {
    const d = notice.data;
    const who = (id: unknown) => (typeof id === "string" ? state.name(id) : "someone");
    switch (notice.type) {
      case "friend.requested": return `${who(d.from)} sent you a friend request${d.message ? `: “${d.message}”` : ""}`;
      case "friend.accepted": return `${who(d.by ?? d.user ?? d.from)} accepted your friend request`;
      case "friend.rejected": return `${who(d.by ?? d.user ?? d.from)} declined your friend request`;
      case "friend.cancelled": return `${who(d.from)} withdrew a friend request`;
      case "friend.removed": return `${who(d.by ?? d.user)} removed you as a friend`;
      default: return notice.type.replace(/[._]/g, " ") + (d.group ? ` (${state.groups.get(d.group)?.name ?? d.group})` : "");
    }
  }

  function inboxPanel(): HTMLElement {
    const ack = h("button", { type: "button", id: "inbox-ack", disabled: !unseenNotices() }, "Mark all as read");
    ack.addEventListener("click", async () => {
      const max = Math.max(0, ...state.notices.map((n) => n.nseq));
      inboxAcked = max;
      localStorage.setItem(`sandcat.inbox.${backend.me.id}`, String(max));
      renderPanel();
      await backend.ackInbox(max).catch((err) => toast(String(err)));
    });
    const notices = [...state.notices].reverse();
    return h(
      "div", { class: "inbox" }, ack,
      notices.length ? h("ul", { class: "notices", id: "notices" }, notices.map((n) =>
        h("li", { class: n.nseq > inboxAcked ? "unseen" : "" }, h("span", null, noticeText(n)), h("time", null, time(n.ts)))))
        : h("p", { class: "empty" }, "Nothing new."),
    );
  }

  async function refreshConvs(): Promise<void> {
    const convs = await backend.sync();
    for (const conv of convs) state.convs.set(conv.cid, conv);
    await Promise.all(
      convs.filter((c) => c.kind === "group" && !state.groups.has(c.group!)).map((c) =>
        backend.group(c.group!).then((g) => void state.groups.set(g.id, g), () => undefined)),
    );
    renderPanel();
  }

  /** The presence snapshot of every friend (again after a new friendship). */
  function refreshPresence(): void {
    backend.presence().then((users) => {
      for (const entry of users) state.presence.set(entry.user, entry);
      state.changed("presence");
    }, () => undefined);
  }

  state.on((what) => {
    if (what === "users" || what === "convs" || what === "presence" || what === "notices") renderPanel();
    chat.refresh(what);
  });

  let typingTimer = 0;
  backend.connect({
    message(msg) {
      const known = state.convs.has(msg.cid);
      state.add(msg, true);
      if (!known) {
        void refreshConvs();
        return;
      }
      if (msg.kind === KIND.system) {
        const conv = state.convs.get(msg.cid);
        if (conv?.group) {
          state.members.delete(conv.group);
          backend.group(conv.group).then((g) => (state.groups.set(g.id, g), state.changed("convs")), () => undefined);
        }
      }
      chat.onMessage(msg);
      state.changed("convs");
    },
    readState(cid, user, seq) {
      const conv = state.convs.get(cid);
      if (!conv) return;
      if (user === backend.me.id) {
        conv.read_seq = Math.max(conv.read_seq, seq);
        conv.unread = Math.max(0, conv.max_seq - Math.max(conv.read_seq, conv.cleared_seq));
        if (conv.read_seq >= conv.max_seq) conv.mention = false;
      } else {
        conv.peer_read_seq = Math.max(conv.peer_read_seq ?? 0, seq);
      }
      state.changed("convs");
    },
    convState(change) {
      const conv = state.convs.get(change.cid);
      if (conv) Object.assign(conv, change);
      state.changed("convs");
    },
    notice(notice) {
      if (!state.notices.some((n) => n.nseq === notice.nseq)) state.notices.push(notice);
      if (notice.type.startsWith("friend.")) void loadContacts();
      if (notice.type === "friend.accepted" || notice.type.startsWith("group")) void refreshConvs();
      if (notice.type === "friend.accepted") refreshPresence();
      state.changed("notices");
    },
    typing(cid, user, active) {
      const list = (state.typing.get(cid) ?? []).filter((t) => t.user !== user);
      if (active) list.push({ user, until: Date.now() + 6000 });
      state.typing.set(cid, list);
      clearTimeout(typingTimer);
      typingTimer = window.setTimeout(() => state.changed("typing"), 6100);
      state.changed("typing");
    },
    presence(users) {
      for (const entry of users) state.presence.set(entry.user, entry);
      state.changed("presence");
    },
    call(event) {
      call.onEvent(event);
    },
    connection(value) {
      status.textContent = value === "online" ? "" : value === "connecting" ? "connecting…" : "offline";
      status.dataset.state = value;
      if (value === "online") {
        void refreshConvs().then(() => {
          performance.mark("sandcat-conversations");
          document.body.dataset.ready = "true";
          if (state.open) chat.reload();
        });
        refreshPresence();
        void backend.inbox(0).then((notices) => {
          state.notices = notices;
          state.changed("notices");
        }, () => undefined);
      }
    },
    signedOut() {
      backend.close();
      signedOut();
    },
  });
  void loadContacts();
  renderPanel();
  chat.show(null);
}

export function presenceText(value: string, lastSeen?: number): string {
  if (value === "offline") return lastSeen ? `last seen ${time(lastSeen)}` : "offline";
  return value;
}
