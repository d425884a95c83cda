// The collector's API token on the command line of `collector` and `top`: from a flag, from a
// file (so that it need not show in `ps` or the shell history), or from CATPROBE_API_TOKEN.

import { readFileSync } from "node:fs";
import { tokenProblem } from "../host/collector/http-token.js";
import { UsageError } from "./usage-error.js";

export const TOKEN_ENV = "CATPROBE_API_TOKEN";

/** The first line of `file`, trimmed; a missing, unreadable or empty file is an error naming `flag` and the file. */
function readTokenFile(file: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`${flag} ${file}: cannot read the token file (${(err as Error).message})`);
  }
  const token = text.split(/\r?\n/, 1)[0].trim();
  if (!token) throw new Error(`${flag} ${file}: the first line is empty; it must hold the token`);
  return token;
}

/**
 * The token from `value` (given with `flag`), else from the file given with `fileFlag`, else
 * from CATPROBE_API_TOKEN (empty counts as unset); undefined when none is given. Both flags at
 * once are refused: which one wins would be a guess.
 */
export function apiToken(value: string | undefined, file: string | undefined, flag: string, fileFlag: string): string | undefined {
  if (value !== undefined && file !== undefined) throw new UsageError(`give ${flag} or ${fileFlag}, not both`);
  const [token, source] = value !== undefined ? [value, flag]
    : file !== undefined ? [readTokenFile(file, fileFlag), `${fileFlag} ${file}`]
    : [process.env[TOKEN_ENV] || undefined, TOKEN_ENV];
  const problem = token === undefined ? undefined : tokenProblem(token);
  if (problem) throw new UsageError(`${source}: ${problem}`);
  return token;
}
