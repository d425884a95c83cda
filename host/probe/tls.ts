// Phase 3 (and STARTTLS): the TLS handshake over an established socket. Alerts, rejected
// certificates, a peer that does not speak TLS, a close or no handshake within the connect
// timeout: a 608. On success the result gets the certificate's facts.

import { readFileSync } from "node:fs";
import { isIP, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { ConfigError } from "../task/config-error.js";
import type { TaskSpec } from "../task/schema.js";
import { type Deadline, Limit, within } from "./deadline.js";
import { RunFault, describeError } from "./fault.js";
import type { TlsFacts } from "./result.js";

const DAY_MS = 24 * 3600 * 1000;

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

export function tlsFacts(socket: TLSSocket): TlsFacts {
  const cert = socket.getPeerCertificate();
  const notAfter = cert?.valid_to ? new Date(cert.valid_to) : null;
  return {
    version: socket.getProtocol() ?? null,
    subject: name(cert?.subject?.CN),
    issuer: name(cert?.issuer?.CN),
    notAfter: notAfter ? notAfter.toISOString() : null,
    daysLeft: notAfter ? Math.floor((notAfter.getTime() - Date.now()) / DAY_MS) : null,
  };
}

export async function handshake(
  socket: Socket, spec: TaskSpec, files: TlsFiles, task: Deadline, step: number | null = null,
): Promise<TLSSocket> {
  const { host, servername, insecure } = spec.target;
  const name = servername ?? host;
  const limit = new Limit(spec.connectTimeoutMs, 608,
    `TLS handshake with ${name} did not complete within ${spec.connectTimeoutMs} ms`, step);
  const secure = tlsConnect({
    socket,
    host: name,
    servername: isIP(name) ? undefined : name, // SNI carries names only
    ca: files.ca,
    cert: files.cert,
    key: files.key,
    rejectUnauthorized: !insecure,
  });
  const done = new Promise<TLSSocket>((resolve, reject) => {
    secure.once("secureConnect", () => resolve(secure));
    secure.once("error", (err) => reject(new RunFault(608, `TLS handshake with ${name} failed: ${describeError(err)}`, step)));
    secure.once("close", () => reject(new RunFault(608, `TLS handshake with ${name} failed: connection closed by peer`, step)));
  });
  try {
    return await within(done, [limit, task], () => secure.destroy());
  } catch (err) {
    secure.destroy();
    throw err;
  }
}
