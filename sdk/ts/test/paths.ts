import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// Compiled tests run from build/test/: the repository is four levels up.
/** The repository's root directory. */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
