// A password file in Mosquitto's `mosquitto_passwd` format, so one file serves the embedded
// broker and Mosquitto alike (DESIGN.md "Identity and security"). Lines are `user:hash`:
//   $7$<iterations>$<salt b64>$<hash b64>   PBKDF2-HMAC-SHA512, 64-byte hash (mosquitto_passwd's default)
//   $6$<salt b64>$<hash b64>                SHA-512 of password then salt (mosquitto_passwd -H sha512)

import { createHash, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { promisify } from "node:util";
import { ConfigError } from "../config-error.js";

const pbkdf2Async = promisify(pbkdf2);

/** A password file larger than this is refused: a fleet of 100,000 probes is about 15 MB. */
const MAX_FILE_BYTES = 64 << 20;
/** PBKDF2 iterations accepted at most: a bigger count would let one line stall every connect. */
const MAX_ITERATIONS = 10_000_000;

type Hash =
  | { kind: "pbkdf2-sha512"; iterations: number; salt: Buffer; hash: Buffer }
  | { kind: "sha512"; salt: Buffer; hash: Buffer };

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** One line's hash, or why it cannot be one. */
function parseHash(text: string): Hash | string {
  const parts = text.split("$");
  if (parts[0] !== "") return "the hash must start with $7$ or $6$ (made by mosquitto_passwd)";
  if (parts[1] === "7" && parts.length === 5) {
    const iterations = Number(parts[2]);
    if (!/^\d+$/.test(parts[2]) || iterations < 1 || iterations > MAX_ITERATIONS) {
      return `$7$: iterations must be a whole number from 1 to ${MAX_ITERATIONS}, not ${JSON.stringify(parts[2])}`;
    }
    if (!B64.test(parts[3]) || !B64.test(parts[4])) return "$7$: salt and hash must be base64";
    const hash = Buffer.from(parts[4], "base64");
    if (hash.length !== 64) return `$7$: the hash must be 64 bytes, not ${hash.length}`;
    return { kind: "pbkdf2-sha512", iterations, salt: Buffer.from(parts[3], "base64"), hash };
  }
  if (parts[1] === "6" && parts.length === 4) {
    if (!B64.test(parts[2]) || !B64.test(parts[3])) return "$6$: salt and hash must be base64";
    const hash = Buffer.from(parts[3], "base64");
    if (hash.length !== 64) return `$6$: the hash must be 64 bytes, not ${hash.length}`;
    return { kind: "sha512", salt: Buffer.from(parts[2], "base64"), hash };
  }
  return `unknown hash format ${JSON.stringify(parts.slice(0, 2).join("$") + "$")}: expected $7$ (PBKDF2-SHA512) or $6$ (SHA-512)`;
}

async function matches(h: Hash, password: Buffer): Promise<boolean> {
  const got = h.kind === "pbkdf2-sha512"
    ? await pbkdf2Async(password, h.salt, h.iterations, 64, "sha512")
    : createHash("sha512").update(password).update(h.salt).digest();
  return timingSafeEqual(got, h.hash);
}

/** Users and their password hashes, read once at start. */
export class PasswordFile {
  private constructor(readonly file: string, private readonly users: Map<string, Hash>) {}

  /**
   * Reads and checks the whole file: a bad line is a configuration error naming the file and
   * the line (a broker that starts with some probes silently locked out would be worse).
   * `validUser` names the user rule, or returns null for a user that may log in.
   */
  static load(file: string, validUser: (user: string) => string | null): PasswordFile {
    let text: string;
    try {
      if (statSync(file).size > MAX_FILE_BYTES) throw ConfigError.in(file, [`larger than ${MAX_FILE_BYTES >> 20} MiB`]);
      text = readFileSync(file, "utf8");
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw ConfigError.in(file, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
    }
    const users = new Map<string, Hash>();
    const problems: string[] = [];
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === "" || line.startsWith("#")) return;
      const at = `line ${i + 1}`;
      const colon = line.indexOf(":");
      if (colon < 1) return problems.push(`${at}: expected user:hash`);
      const user = line.slice(0, colon);
      const userProblem = validUser(user);
      if (userProblem) return problems.push(`${at}: user ${JSON.stringify(user)} ${userProblem}`);
      if (users.has(user)) return problems.push(`${at}: user ${JSON.stringify(user)} appears twice`);
      const hash = parseHash(line.slice(colon + 1).trim());
      if (typeof hash === "string") return problems.push(`${at}: ${hash}`);
      users.set(user, hash);
    });
    if (problems.length > 0) throw ConfigError.in(file, problems.slice(0, 20));
    if (users.size === 0) throw ConfigError.in(file, ["no users: add them with mosquitto_passwd"]);
    return new PasswordFile(file, users);
  }

  has(user: string): boolean {
    return this.users.has(user);
  }

  /** Whether `password` is `user`'s; an unknown user takes as long as a wrong password's check. */
  async verify(user: string, password: Buffer): Promise<boolean> {
    const h = this.users.get(user);
    if (!h) {
      await matches(DUMMY, password);
      return false;
    }
    return matches(h, password);
  }
}

/** PBKDF2 iterations of the lines passwordLine() writes (mosquitto_passwd 2.0.11 writes 101). */
const WRITE_ITERATIONS = 1000;

/**
 * A `user:$7$…` line as mosquitto_passwd writes it (12-byte salt, 64-byte PBKDF2-SHA512), for
 * a program that makes its own credentials (the lab) where mosquitto_passwd may be missing.
 */
export function passwordLine(user: string, password: string): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(Buffer.from(password), salt, WRITE_ITERATIONS, 64, "sha512");
  return `${user}:$7$${WRITE_ITERATIONS}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** Stands in for an unknown user's hash, so its check costs what a real one does. */
const DUMMY: Hash = { kind: "pbkdf2-sha512", iterations: 101, salt: Buffer.alloc(12), hash: Buffer.alloc(64) };
