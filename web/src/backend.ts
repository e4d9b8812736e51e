// What the web client needs from the server, in its own words. sdk.ts implements
// it over the TypeScript SDK (sdk/ts), which is the only thing that talks to the server.
import type * as sdk from "@sandcat/sdk";

// The shapes the server sends are the SDK's (frames.ts for WebSocket bodies, the
// OpenAPI document's schemas for HTTP), narrowed to the fields the views read.
type Schemas = sdk.Schemas;

export type User = Pick<Schemas["User"], "id" | "username" | "display_name" | "avatar">;
/** A MSG as the views hold it; they read its body by kind. */
export type Msg = Omit<sdk.Message, "body"> & { body: any };
export type Conv = Omit<sdk.Conversation, "last"> & { last?: Msg };
export type FriendRequest = Pick<Schemas["FriendRequest"], "id" | "from" | "to" | "message" | "status" | "created_at">;
export type Friend = Pick<Schemas["Friend"], "id" | "username" | "display_name" | "avatar" | "cid">;
export type Group = Pick<Schemas["Group"], "id" | "cid" | "name" | "owner" | "announcement" | "description">;
export type Member = Pick<Schemas["GroupMember"], "user" | "role" | "alias">;
export type Notice = Omit<sdk.Notice, "data"> & { data: Record<string, any> };
export type PresenceEntry = sdk.PresenceEntry;
export type CallEvent = sdk.CallEventBody;
export type ConvState = sdk.ConvStateBody;
export type TurnCredentials = Awaited<ReturnType<sdk.HttpClient["turnCredentials"]>>;

export interface History {
  messages: Msg[];
  more: boolean;
  min_seq: number;
  max_seq: number;
}

export interface Handlers {
  message(msg: Msg): void;
  readState(cid: string, user: string, seq: number): void;
  convState(state: ConvState): void;
  notice(notice: Notice): void;
  typing(cid: string, user: string, active: boolean): void;
  presence(users: PresenceEntry[]): void;
  call(event: CallEvent): void;
  connection(state: "connecting" | "online" | "offline"): void;
  signedOut(): void;
}

export interface SendOptions {
  replyTo?: number;
  /** User ids, or "@all" (SPEC.md §5.14). */
  mentions?: string[];
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
