// What the web client needs from the server, in its own words. sdk.ts implements
// it over the TypeScript SDK (sdk/ts), which is the only thing that talks to the server.

export interface User {
  id: string;
  username: string;
  display_name?: string | null;
  avatar?: string | null;
}

export interface Msg {
  cid: string;
  seq: number;
  mid: string;
  from: string;
  kind: number;
  body: any;
  ts: number;
  cmid?: string;
  reply_to?: number;
  mentions?: string[] | "@all";
  forward?: { cid: string; seq: number; from: string };
  edited_at?: number;
  recalled?: boolean;
}

export interface Conv {
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
  last?: Msg;
}

export interface FriendRequest {
  id: string;
  from: string;
  to: string;
  message?: string | null;
  status: string;
  created_at: number;
}

export interface Friend extends User {
  cid: string;
}

export interface Group {
  id: string;
  cid: string;
  name: string;
  owner: string;
  announcement?: string | null;
  description?: string | null;
}

export interface Member {
  user: string;
  role: "owner" | "admin" | "member";
  alias?: string | null;
}

export interface Notice {
  nseq: number;
  type: string;
  data: Record<string, any>;
  ts: number;
}

export interface UploadedFile {
  id: string;
  content_type: string;
  size: number;
  width?: number | null;
  height?: number | null;
  duration_ms?: number | null;
  thumbnail?: boolean;
}

export interface History {
  messages: Msg[];
  more: boolean;
  min_seq: number;
  max_seq: number;
}

export interface PresenceEntry {
  user: string;
  state: "online" | "away" | "busy" | "offline";
  last_seen?: number;
}

export interface CallEvent {
  call: string;
  action: "ring" | "accepted" | "offer" | "answer" | "candidate" | "ended";
  from?: string;
  media?: "audio" | "video";
  device?: string;
  sdp?: string;
  candidate?: { candidate: string; sdp_mid?: string; sdp_m_line_index?: number };
  outcome?: string;
  reason?: string;
  duration_ms?: number;
}

export interface TurnCredentials {
  username: string;
  credential: string;
  ttl: number;
  uris: string[];
}

export interface Handlers {
  message(msg: Msg): void;
  readState(cid: string, user: string, seq: number): void;
  convState(state: { cid: string; pinned?: boolean; muted?: boolean; hidden?: boolean; cleared_seq?: number }): void;
  notice(notice: Notice): void;
  typing(cid: string, user: string, active: boolean): void;
  presence(users: PresenceEntry[]): void;
  call(event: CallEvent): void;
  connection(state: "connecting" | "online" | "offline"): void;
  signedOut(): void;
}

export interface SendOptions {
  replyTo?: number;
  mentions?: string[] | "@all";
}

export interface Backend {
  readonly me: User;
  /** Opens the WebSocket (reconnecting by itself) and routes its pushes to the handlers. */
  connect(handlers: Handlers): void;
  // Messaging (WebSocket).
  sync(): Promise<Conv[]>;
  send(cid: string, kind: number, body: unknown, options?: SendOptions): Promise<Msg>;
  recall(cid: string, seq: number): Promise<void>;
  edit(cid: string, seq: number, body: unknown): Promise<void>;
  history(cid: string, before?: number, limit?: number): Promise<History>;
  read(cid: string, seq: number): Promise<void>;
  readers(cid: string, seq: number): Promise<{ read: string[]; unread: string[] }>;
  setConversation(cid: string, settings: { pinned?: boolean; muted?: boolean }): Promise<void>;
  typing(cid: string, active: boolean): Promise<void>;
  presence(state?: "online" | "away" | "busy" | "invisible"): Promise<PresenceEntry[]>;
  callInvite(peer: string, media: "audio" | "video"): Promise<{ call: string; state: string }>;
  callAction(call: string, action: "accept" | "reject" | "cancel" | "hangup"): Promise<void>;
  callSdp(call: string, action: "offer" | "answer", sdp: string): Promise<void>;
  callCandidate(call: string, candidate: RTCIceCandidateInit | null): Promise<void>;
  // Accounts, contacts, groups, files, inbox (HTTP).
  user(id: string): Promise<User>;
  searchUsers(q: string): Promise<User[]>;
  friends(): Promise<Friend[]>;
  friendRequests(): Promise<{ incoming: FriendRequest[]; outgoing: FriendRequest[] }>;
  requestFriend(to: string, message?: string): Promise<void>;
  answerRequest(id: string, accept: boolean): Promise<void>;
  groups(): Promise<Group[]>;
  group(id: string): Promise<Group>;
  members(id: string): Promise<Member[]>;
  createGroup(name: string, members: string[]): Promise<Group>;
  invite(id: string, users: string[]): Promise<void>;
  setRole(id: string, user: string, role: "admin" | "member"): Promise<void>;
  updateGroup(id: string, fields: { name?: string; announcement?: string }): Promise<void>;
  inbox(after: number): Promise<Notice[]>;
  ackInbox(nseq: number): Promise<void>;
  /** Uploads a file over HTTP, then sends it as an image, file or voice message. */
  sendUpload(cid: string, kind: "image" | "file" | "voice", file: Blob, options?: { name?: string; durationMs?: number }): Promise<void>;
  download(id: string, thumbnail?: boolean): Promise<Blob>;
  turn(): Promise<TurnCredentials | null>;
  logout(): Promise<void>;
  close(): void;
}
