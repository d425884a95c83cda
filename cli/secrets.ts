// Secrets on the command line: the collector's API token (`collector`, `top`) and the MQTT
// password (`probe`, `collector` at an external broker), from a file (so that they need not
// show in `ps` or the shell history) or the environment. The password has no flag at all.

import { readFileSync } from "node:fs";
import { tokenProblem } from "../host/collector/http-token.js";
import { UsageError } from "./usage-error.js";

export const TOKEN_ENV = "CATPROBE_API_TOKEN";
export const PASSWORD_ENV = "CATPROBE_MQTT_PASSWORD";

/**
 * The first line of `file` (trimmed, unless `keepSpaces`); a missing, unreadable or empty file
 * is an error naming `flag`, the file and `what` it should hold.
 */
function readSecretFile(file: string, flag: string, what: string, keepSpaces = false): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`${flag} ${file}: cannot read the ${what} file (${(err as Error).message})`);
  }
  const line = text.split(/\r?\n/, 1)[0];
  const secret = keepSpaces ? line : line.trim();
  if (!secret) throw new Error(`${flag} ${file}: the first line is empty; it must hold the ${what}`);
  return secret;
}

/**
 * The token from `value` (given with `flag`), else from the file given with `fileFlag`, else
 * from CATPROBE_API_TOKEN (empty counts as unset); undefined when none is given. Both flags at
 * once are refused: which one wins would be a guess.
 */
export function apiToken(value: string | undefined, file: string | undefined, flag: string, fileFlag: string): string | undefined {
  if (value !== undefined && file !== undefined) throw new UsageError(`give ${flag} or ${fileFlag}, not both`);
  const [token, source] = value !== undefined ? [value, flag]
    : file !== undefined ? [readSecretFile(file, fileFlag, "token"), `${fileFlag} ${file}`]
    : [process.env[TOKEN_ENV] || undefined, TOKEN_ENV];
  const problem = token === undefined ? undefined : tokenProblem(token);
  if (problem) throw new UsageError(`${source}: ${problem}`);
  return token;
}

/**
 * The MQTT password: the first line of --password-file (spaces kept: they may be part of it),
 * else CATPROBE_MQTT_PASSWORD; undefined when neither is given. `--password` itself is refused.
 */
export function mqttPassword(flagValue: string | undefined, file: string | undefined): string | undefined {
  if (flagValue !== undefined) {
    throw new UsageError(`--password: a password on the command line is visible to every user of this machine (ps, shell history); use --password-file FILE or ${PASSWORD_ENV}`);
  }
  if (file !== undefined) return readSecretFile(file, "--password-file", "password", true);
  return process.env[PASSWORD_ENV] || undefined;
}
