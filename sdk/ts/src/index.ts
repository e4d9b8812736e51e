// The Sandcat TypeScript SDK. The wire contract it implements is
// protocol/SPEC.md in the Sandcat repository (the single source).

export * from "./frames.js";
export { MAX_FRAME_BYTES, MAX_DEPTH, decodeFrame, encodeFrame, unencodable, type Direction } from "./codec.js";
export * from "./errors.js";
export { isId, isCid, directCid, groupCid, checkBody } from "./validate.js";
export * from "./http.js";
export { Emitter, type Listener } from "./events.js";
export { Timeline } from "./timeline.js";
export {
  Client,
  FINAL_CLOSES,
  TYPING_REFRESH_MS,
  attachment,
  type AttachmentOptions,
  VERSION,
  newCmid,
  type ClientEvents,
  type ClientOptions,
  type ClientStatistics,
  type ConnectionState,
  type SendAck,
  type SendOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
