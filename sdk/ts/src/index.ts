export * from "./frames.js"; export * from "./codec.js"; export * from "./errors.js"; export * from "./validate.js";
