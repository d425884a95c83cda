// Phase 3 (and STARTTLS): the TLS handshake over an established socket. Alerts, rejected
// certificates, a peer that does not speak TLS, a close or no handshake within the connect
// timeout: a 608. The result gets the certificate's facts on success, and on a failure once the
// certificate had arrived (an expired or untrusted one).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { isIP, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { ConfigError } from "../config-error.js";
import type { TaskSpec } from "../task/schema.js";
import { type Deadline, Limit, within } from "./deadline.js";
import { RunFault, describeError } from "./fault.js";
import type { TlsFacts } from "../wire/record.js";

const DAY_MS = 24 * 3600 * 1000;

// node:tls is loaded by the first handshake, not at start-up: most tasks are plain TCP, and
// loading it is a good part of what `catprobe run` spends before its first run.
const require = createRequire(import.meta.url);
let tls: typeof import("node:tls") | undefined;

/** CA, client certificate and key files, read once per task; a missing file is a ConfigError. */
export interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export function readTlsFiles(spec: TaskSpec, file: string): TlsFiles {
  const read = (field: "ca" | "cert" | "key") => {
    const path = spec.target[field];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw ConfigError.in(file, [`target.${field}: cannot read ${path} (${(err as NodeJS.ErrnoException).code})`]);
    }
  };
  return { ca: read("ca"), cert: read("cert"), key: read("key") };
}

function name(field: string | string[] | undefined): string | null {
  if (field === undefined) return null;
  return Array.isArray(field) ? field.join(", ") : field;
}

/**
 * Whole days from `now` to `notAfter`, truncated toward zero: 13.9 days left is 13, expired
 * 1.5 days ago is -1, and 0 is less than a day either side of the expiry.
 */
export function daysLeft(notAfter: number, now: number): number {
  return Math.trunc((notAfter - now) / DAY_MS) || 0; // `|| 0`: never -0
}

export function tlsFacts(socket: TLSSocket): TlsFacts {
  const cert = socket.getPeerCertificate();
  const notAfter = cert?.valid_to ? new Date(cert.valid_to) : null;
  return {
    version: socket.getProtocol() ?? null,
    subject: name(cert?.subject?.CN),
    issuer: name(cert?.issuer?.CN),
    notAfter: notAfter ? notAfter.toISOString() : null,
    daysLeft: notAfter ? daysLeft(notAfter.getTime(), Date.now()) : null,
  };
}

/** The facts once the peer's certificate has arrived, else null. */
function receivedFacts(socket: TLSSocket): TlsFacts | null {
  return socket.getPeerCertificate()?.raw ? tlsFacts(socket) : null;
}

export async function handshake(
  socket: Socket, spec: TaskSpec, files: TlsFiles, task: Deadline, step: number | null = null,
): Promise<TLSSocket> {
  const { host, servername, insecure } = spec.target;
  const name = servername ?? host;
  const limit = new Limit(spec.connectTimeoutMs, 608,
    `TLS handshake with ${name} did not complete within ${spec.connectTimeoutMs} ms`, step);
  tls ??= require("node:tls") as typeof import("node:tls");
  const secure = tls.connect({
    socket,
    host: name,
    servername: isIP(name) ? undefined : name, // SNI carries names only
    ca: files.ca,
    cert: files.cert,
    key: files.key,
    rejectUnauthorized: !insecure,
  });
  // Node destroys a socket whose certificate it rejects before any event reaches us, and the
  // certificate goes with it. 'keylog' fires during the handshake once the certificate is in
  // (TLS 1.2: the master secret; TLS 1.3: after the server's Finished), so the facts are taken
  // there; the key line itself is ignored.
  let facts: TlsFacts | null = null;
  const capture = () => {
    facts = receivedFacts(secure);
    if (facts) secure.off("keylog", capture);
  };
  secure.on("keylog", capture);
  const done = new Promise<TLSSocket>((resolve, reject) => {
    secure.once("secureConnect", () => resolve(secure));
    secure.once("error", (err) => reject(new RunFault(608, `TLS handshake with ${name} failed: ${describeError(err)}`, step)));
    secure.once("close", () => reject(new RunFault(608, `TLS handshake with ${name} failed: connection closed by peer`, step)));
  });
  try {
    return await within(done, [limit, task], () => secure.destroy());
  } catch (err) {
    secure.destroy();
    if (err instanceof RunFault && facts) err.tls = facts;
    throw err;
  }
}
