// A configuration file's JSON text, parsed with its nesting bounded first, so that no input can
// overflow the stack in JSON.parse or in validation: task files (host/task/load.ts) and alert
// rules files (host/collector/alerts/rules.ts) alike.

import { ConfigError } from "./config-error.js";

/** A task nests three levels deep, a rules file four; far deeper is not configuration. */
export const MAX_NESTING = 64;

/** The offset where arrays and objects nest deeper than `limit` (outside strings), or -1. */
function tooDeepAt(text: string, limit: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++; // the escaped character cannot end the string
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "[" || c === "{") {
      if (++depth > limit) return i;
    } else if (c === "]" || c === "}") depth--;
  }
  return -1;
}

/** The value of `text`, the contents of `file`; a ConfigError when it is too deep or not JSON. */
export function parseJsonText(file: string, text: string): unknown {
  const deep = tooDeepAt(text, MAX_NESTING);
  if (deep >= 0) throw ConfigError.in(file, [`nesting deeper than ${MAX_NESTING} levels of objects and arrays (at character ${deep + 1})`]);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw ConfigError.in(file, [`not valid JSON: ${(err as Error).message}`]);
  }
}
