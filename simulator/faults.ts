// The lab's faults: for each, the server that injects it and the code DESIGN.md says a run
// meeting it must report (the ground truth). A lab task has one step: send, then look for a
// keyword; faults that need another dialog (a banner, buffer mode, invalid data, many steps)
// bring their own steps. The lab's time limits below are short so that faults resolve quickly.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ErrorCode } from "../host/codes.js";
import type { LabPki } from "./certs.js";
import { startFaultProxy, type Toxic } from "./proxy.js";
import { startBlackhole } from "./servers/blackhole.js";
import type { DnsFault } from "./servers/dns.js";
import { largeBody, refusedPort, startTcpFault, type TcpFault } from "./servers/tcp.js";
import { startTlsFault, type TlsFault } from "./servers/tls.js";

/** What a run needs from the lab to meet a fault: where to connect, and how. */
export interface FaultTarget {
  host: string;
  port: number;
  tls: boolean;
  /** resolved through the lab's DNS server */
  dns: boolean;
}

interface FaultDef {
  /** the code a run meeting this fault must report; null for a passing run */
  code: ErrorCode | null;
  describe: string;
  tcp?: (reply: string) => TcpFault;
  tlsFault?: (reply: string) => TlsFault;
  /** answered by the lab DNS server for the fault's name */
  dnsFault?: DnsFault;
  tls?: boolean;
  /** a healthy server behind the fault proxy with these toxics on its replies */
  link?: Toxic[];
  /** the steps a run meeting this fault takes, when not the task's own send-and-keyword step */
  steps?: (task: LabTaskShape) => Record<string, unknown>[];
  /** the task trusts the lab CA for a TLS upgrade (STARTTLS) */
  trustsLabCa?: boolean;
  /**
   * the fault's steps hold invalid data, so a run fails before any socket: no server, the
   * target is a port where nothing listens (a run that did connect would be a 601)
   */
  invalidData?: boolean;
}

/** What a fault's steps may use of the task it is injected into. */
export interface LabTaskShape {
  send: string;
  expect: string;
  reply: string;
}

const LARGE_REPLY = 1 << 20;

/** `text` as buffer-mode hex: uppercase byte pairs with spaces between them (both allowed). */
function hexOf(text: string): string {
  return Buffer.from(text, "utf8").toString("hex").toUpperCase().replace(/(..)(?!$)/g, "$1 ");
}

/**
 * The lab's limits: short enough that faults resolve quickly, long enough that a loaded 2-core
 * machine running the whole fleet, its servers and the collector still completes every healthy
 * exchange (TLS handshakes of dozens of probes at once take hundreds of milliseconds here), and
 * ordered so that each fault resolves to its one code: stall trickles a byte every 50 ms, under
 * idleMs, until the step limit (609) passes, well before the task limit.
 */
export const LAB_LIMITS = {
  dnsTimeoutMs: 1000,
  connectTimeoutMs: 1500,
  taskTimeoutMs: 10_000,
  responseTimeoutMs: 1500,
  stepTimeoutMs: 3000,
  idleMs: 500,
};

/**
 * The most a TCP connection can hold of a send its peer never reads: the receiver's buffer and
 * the sender's, each at the ceiling of Linux autotuning or of an explicit setsockopt (which the
 * kernel doubles). Read from /proc where it exists; elsewhere a generous guess.
 */
function socketBufferCeiling(): number {
  const max = (file: string): number => {
    const values = readFileSync(file, "utf8").trim().split(/\s+/).map(Number);
    return values[values.length - 1];
  };
  try {
    const receive = Math.max(max("/proc/sys/net/ipv4/tcp_rmem"), 2 * max("/proc/sys/net/core/rmem_max"));
    const send = Math.max(max("/proc/sys/net/ipv4/tcp_wmem"), 2 * max("/proc/sys/net/core/wmem_max"));
    if (Number.isFinite(receive + send)) return receive + send;
  } catch {
    // not Linux, or /proc hidden
  }
  return 64 << 20;
}

/**
 * send-reset's send: larger than everything the two sockets can hold, plus a mebibyte for what
 * the server reads before it resets (its first chunk, 64 KiB at most), so the local stack can
 * never have accepted all of it when the reset arrives: the write is still under way (602),
 * never complete (which would make the reset a 603). About 41 MiB on a stock Linux.
 */
export const SEND_RESET_BYTES = socketBufferCeiling() + (1 << 20);

/**
 * slow-dialog: each answer takes SLOW_ANSWER_MS, a second inside the step limit, with a byte
 * every SLOW_GAP_MS, far inside the response and idle limits, so no step ever fails on its own;
 * SLOW_DIALOG_STEPS of them take two seconds or more beyond the task limit, so the task limit
 * passes during the dialog, while a step is under way whose own limit is a second or more away.
 * Only the task scope can decide: 604.
 */
export const SLOW_ANSWER_MS = LAB_LIMITS.stepTimeoutMs - 1000;
export const SLOW_GAP_MS = LAB_LIMITS.idleMs / 10;
export const SLOW_DIALOG_STEPS = Math.ceil((LAB_LIMITS.taskTimeoutMs + 2000) / SLOW_ANSWER_MS);

export const FAULTS = {
  ok: { code: null, describe: "a healthy server", tcp: (reply) => ({ kind: "reply", reply }) },
  dribble: { code: null, describe: "the reply one byte per segment", tcp: (reply) => ({ kind: "dribble", reply, gapMs: 5 }) },
  nxdomain: { code: 600, describe: "the name does not exist (NXDOMAIN)", dnsFault: "nxdomain" },
  servfail: { code: 600, describe: "the DNS server fails (SERVFAIL)", dnsFault: "servfail" },
  "dns-timeout": { code: 600, describe: "the DNS server never answers", dnsFault: "silent" },
  refused: { code: 601, describe: "nothing listens: connection refused" },
  "connect-timeout": { code: 601, describe: "a listener whose accept queue is full" },
  silence: { code: 603, describe: "accepts, reads, never answers", tcp: () => ({ kind: "silent" }) },
  "early-close": { code: 603, describe: "closes without a byte after the request", tcp: () => ({ kind: "close" }) },
  reset: { code: 603, describe: "resets the connection after the request", tcp: () => ({ kind: "reset" }) },
  "wrong-reply": { code: 607, describe: "answers without the keyword", tcp: () => ({ kind: "reply", reply: "-ERR wrong reply\r\n" }) },
  stall: { code: 609, describe: "trickles bytes that never contain the keyword", tcp: () => ({ kind: "stall", gapMs: 50 }) },
  echo: { code: null, describe: "echoes the request (full match)", tcp: () => ({ kind: "echo" }),
    // Full passes when the reply ends; the echo comes back in one segment and the server keeps
    // the connection open, so a short silence ends it.
    steps: (t) => [{ send: t.send, verify: "full", expect: t.send, idleMs: 200 }] },
  banner: { code: null, describe: "greets with the reply before any request (a banner step)", tcp: (reply) => ({ kind: "banner", banner: reply }),
    steps: (t) => [{ verify: "partial", expect: t.expect }] },
  large: { code: null, describe: "a 1 MiB reply, checked by its MD5", tcp: () => ({ kind: "large", bytes: LARGE_REPLY }),
    steps: (t) => [{ send: t.send, verify: "md5", expect: createHash("md5").update(largeBody(LARGE_REPLY)).digest("hex"),
      maxResponseBytes: 2 * LARGE_REPLY }] },
  "accept-reset": { code: 603, describe: "accepts, then resets the connection (50 ms later, through the fault proxy)",
    // 50 ms after the accept, so the probe is past its connect (a reset during the handshake
    // would be a 601); waiting for a banner, it meets the reset before a first byte: 603.
    link: [{ type: "reset_peer", afterMs: 50 }], steps: () => [{ verify: "none" }] },
  starttls: { code: null, describe: "an SMTP-like dialog upgraded by STARTTLS", trustsLabCa: true, tlsFault: (reply) => ({ kind: "starttls", reply }),
    steps: (t) => [{ verify: "partial", expect: "220" }, { send: "STARTTLS\r\n", verify: "partial", expect: "220 go", starttls: true },
      { send: t.send, verify: "partial", expect: t.expect }] },
  "tls-ok": { code: null, describe: "TLS with a trusted certificate", tls: true, tlsFault: (reply) => ({ kind: "valid", reply }) },
  "tls-untrusted": { code: 608, describe: "TLS with an untrusted certificate", tls: true, tlsFault: (reply) => ({ kind: "untrusted", reply }) },
  "tls-expired": { code: 608, describe: "TLS with an expired certificate", tls: true, tlsFault: (reply) => ({ kind: "expired", reply }) },
  "tls-plaintext": { code: 608, describe: "plain text on the TLS port", tls: true, tlsFault: () => ({ kind: "plaintext" }) },
  // Through the fault proxy, in front of a healthy server:
  "link-latency": { code: null, describe: "200 ms (± 50) of latency on replies", link: [{ type: "latency", latencyMs: 200, jitterMs: 50 }] },
  "link-sliced": { code: null, describe: "replies cut into 1–3-byte segments", link: [{ type: "slicer", averageSize: 2, sizeVariation: 1, delayMs: 2 }] },
  "link-slow": { code: 603, describe: "replies delayed past the response limit", link: [{ type: "latency", latencyMs: 2500 }] },
  "link-blackhole": { code: 603, describe: "replies never forwarded, connection kept open", link: [{ type: "timeout" }] },
  "link-cut": { code: 607, describe: "the link closes after 1 byte of reply (keywords of 2+ bytes)", link: [{ type: "limit_data", bytes: 1 }] },
  // Buffer mode: the task's send and keyword as hex of the same bytes.
  "ok-buffer": { code: null, describe: "a healthy server; the task in buffer mode (hex send and keyword)", tcp: (reply) => ({ kind: "reply", reply }),
    steps: (t) => [{ format: "buffer", send: hexOf(t.send), verify: "partial", expect: hexOf(t.expect) }] },
  "send-reset": { code: 602, describe: "resets the connection at the first bytes of a send too large to be written before it",
    // The server resets on the first chunk it reads, so the probe is past its connect (no 601)
    // and writing; the send is more than both sockets can hold, so the write is cut short: 602.
    tcp: () => ({ kind: "reset" }),
    steps: (t) => [{ send: t.send.repeat(Math.ceil(SEND_RESET_BYTES / Buffer.byteLength(t.send))), verify: "partial", expect: t.expect }] },
  "slow-dialog": { code: 604, describe: `${SLOW_DIALOG_STEPS} exchanges, each answered in ${SLOW_ANSWER_MS / 1000} s (inside the step limit), together past the task limit`,
    tcp: (reply) => ({ kind: "slow-reply", reply, afterMs: SLOW_ANSWER_MS, gapMs: SLOW_GAP_MS }),
    steps: (t) => Array.from({ length: SLOW_DIALOG_STEPS }, () => ({ send: t.send, verify: "partial", expect: t.expect })) },
  // Invalid task data: the run fails before any socket is opened (the target has no server).
  "bad-send-hex": { code: 605, describe: "buffer mode: the send is not valid hex (an odd digit count)", invalidData: true,
    steps: (t) => [{ format: "buffer", send: `${hexOf(t.send)}0`, verify: "partial", expect: hexOf(t.expect) }] },
  "bad-verify-hex": { code: 606, describe: "buffer mode: the keyword is not valid hex (a non-hex character)", invalidData: true,
    steps: (t) => [{ format: "buffer", send: hexOf(t.send), verify: "partial", expect: `${hexOf(t.expect)} zz` }] },
  "bad-md5": { code: 606, describe: "md5 verify with a digest of 30 hex digits, not 32", invalidData: true,
    steps: (t) => [{ send: t.send, verify: "md5", expect: createHash("md5").update(t.reply).digest("hex").slice(0, 30) }] },
} satisfies Record<string, FaultDef>;

export type FaultName = keyof typeof FAULTS;
export const FAULT_NAMES = Object.keys(FAULTS) as FaultName[];

export function faultCode(name: FaultName): ErrorCode | null {
  return FAULTS[name].code;
}

/** The fault's own steps for a task, or null for the task's send-and-keyword step. */
export function faultSteps(name: FaultName, task: LabTaskShape): Record<string, unknown>[] | null {
  const def: FaultDef = FAULTS[name];
  return def.steps ? def.steps(task) : null;
}

export function trustsLabCa(name: FaultName): boolean {
  const def: FaultDef = FAULTS[name];
  return def.tls === true || def.trustsLabCa === true;
}


export interface RunningFault {
  target: FaultTarget;
  close(): Promise<void>;
}

/** Starts whatever injects `name` for a task with healthy reply `reply`. */
export async function startFault(name: FaultName, reply: string, pki: LabPki): Promise<RunningFault> {
  const def: FaultDef = FAULTS[name];
  if (def.dnsFault) {
    // Resolved by the lab DNS server, which answers this fault's name with the fault.
    return { target: { host: `${name}.lab.test`, port: 9, tls: false, dns: true }, close: async () => {} };
  }
  if (name === "refused" || def.invalidData) {
    return { target: { host: "127.0.0.1", port: await refusedPort(), tls: false, dns: false }, close: async () => {} };
  }
  if (name === "connect-timeout") {
    const hole = await startBlackhole();
    return { target: { host: hole.host, port: hole.port, tls: false, dns: false }, close: () => hole.close() };
  }
  if (def.link) {
    const server = await startTcpFault({ kind: "reply", reply });
    const proxy = await startFaultProxy(server, { downstreamToxics: def.link });
    return {
      target: { host: proxy.host, port: proxy.port, tls: false, dns: false },
      close: async () => {
        await proxy.close();
        await server.close();
      },
    };
  }
  const server = def.tlsFault ? await startTlsFault(def.tlsFault(reply), pki) : await startTcpFault(def.tcp!(reply));
  return { target: { host: server.host, port: server.port, tls: !!def.tls, dns: false }, close: () => server.close() };
}

/** The lab DNS zone: each DNS fault's name answered with that fault. */
export function dnsZone(): { faults: Record<string, DnsFault> } {
  const faults: Record<string, DnsFault> = {};
  for (const [name, def] of Object.entries(FAULTS) as [FaultName, FaultDef][]) {
    if (def.dnsFault) faults[`${name}.lab.test`] = def.dnsFault;
  }
  return { faults };
}
