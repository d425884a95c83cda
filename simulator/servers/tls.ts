// TLS fault servers for tests and the fault lab: a healthy TLS server, bad certificates, plain
// text where TLS is expected, and an SMTP-like STARTTLS upgrade. Handshake failures are the
// point of most of them, so every TLS and socket error is swallowed.
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { createSecureContext, createServer, TLSSocket, type SecureContext } from "node:tls";
import type { LabPki, Pem } from "../certs.js";
import { listenFaultServer, SocketTracker, type FaultServer, type LoopbackHost } from "./tcp.js";

export type TlsFault =
  /** TLS with the lab server certificate; on each data chunk writes `reply` */
  | { kind: "valid"; reply: string }
  /** TLS with the self-signed untrusted certificate */
  | { kind: "untrusted"; reply: string }
  /** TLS with the expired certificate */
  | { kind: "expired"; reply: string }
  /** plain TCP on a "TLS port": writes PLAINTEXT_BANNER on accept */
  | { kind: "plaintext" }
  /** SMTP-like: a plain banner, then STARTTLS upgrades to TLS with the lab server certificate */
  | { kind: "starttls"; reply: string };

export const PLAINTEXT_BANNER = "220 plain text here\r\n";
export const STARTTLS_BANNER = "220 ready\r\n";
export const STARTTLS_GO_AHEAD = "220 go ahead\r\n";
/** the answer to any other line before STARTTLS (EHLO and the like), so SMTP clients carry on */
export const STARTTLS_OTHER_LINE = "250 ok\r\n";
/** a longer line is not a command: drop the client rather than buffer without bound */
const MAX_LINE_BYTES = 4096;

const ignore = (): void => {};

export function startTlsFault(
  fault: TlsFault, pki: LabPki, options: { host?: LoopbackHost } = {},
): Promise<FaultServer> {
  const tracker = new SocketTracker();
  return listenFaultServer(faultServer(fault, pki, tracker), options.host ?? "127.0.0.1", tracker);
}

function faultServer(fault: TlsFault, pki: LabPki, tracker: SocketTracker): Server {
  switch (fault.kind) {
    case "valid":
      return tlsReplyServer(pki.server, fault.reply, tracker);
    case "untrusted":
      return tlsReplyServer(pki.untrusted, fault.reply, tracker);
    case "expired":
      return tlsReplyServer(pki.expired, fault.reply, tracker);
    case "plaintext":
      return createTcpServer((socket) => {
        socket.write(PLAINTEXT_BANNER);
        socket.on("data", ignore); // read the ClientHello so it never fills a buffer
      });
    case "starttls": {
      const context = createSecureContext({ cert: pki.server.cert, key: pki.server.key });
      return createTcpServer((socket) => serveStartTls(socket, { context, reply: fault.reply, tracker }));
    }
  }
}

function tlsReplyServer(pem: Pem, reply: string, tracker: SocketTracker): Server {
  const server = createServer({ cert: pem.cert, key: pem.key }, (secure) => {
    tracker.add(secure);
    replyOnEachData(secure, reply);
  });
  // Clients that reject the certificate abort the handshake: expected, not an error.
  server.on("tlsClientError", ignore);
  return server;
}

function replyOnEachData(socket: Socket, reply: string): void {
  socket.on("data", () => {
    if (socket.writable) socket.write(reply);
  });
}

/** What a STARTTLS connection becomes once upgraded. */
interface SecurePhase {
  context: SecureContext;
  reply: string;
  tracker: SocketTracker;
}

/** The plain-text phase: a banner, then line by line until STARTTLS. */
function serveStartTls(socket: Socket, secure: SecurePhase): void {
  let pending = "";
  const onData = (chunk: Buffer): void => {
    pending += chunk.toString("latin1");
    for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
      const line = pending.slice(0, end).trim();
      pending = pending.slice(end + 1);
      if (line.toUpperCase() === "STARTTLS") {
        socket.off("data", onData);
        upgrade(socket, Buffer.from(pending, "latin1"), secure);
        return;
      }
      socket.write(STARTTLS_OTHER_LINE);
    }
    if (pending.length > MAX_LINE_BYTES) socket.destroy();
  };
  socket.write(STARTTLS_BANNER);
  socket.on("data", onData);
}

/**
 * Answers STARTTLS and wraps the socket in server-side TLS. The socket is paused until the answer
 * is written, so the ClientHello stays buffered for the TLS socket (which reads what the plain
 * socket buffered); bytes that came after the STARTTLS line in the same chunk are put back first.
 */
function upgrade(socket: Socket, early: Buffer, phase: SecurePhase): void {
  socket.pause();
  if (early.length > 0) socket.unshift(early);
  socket.write(STARTTLS_GO_AHEAD, (err) => {
    if (err || socket.destroyed) return;
    const secure = new TLSSocket(socket, { isServer: true, secureContext: phase.context });
    phase.tracker.add(secure);
    replyOnEachData(secure, phase.reply);
  });
}
