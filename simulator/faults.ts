// The lab's faults: for each, the server that injects it and the code DESIGN.md says a run
// meeting it must report (the ground truth). Every lab task has one step: send, then look for
// a keyword; the lab's time limits below are short so that faults resolve quickly.

import { createHash } from "node:crypto";
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
}

/** What a fault's steps may use of the task it is injected into. */
export interface LabTaskShape {
  send: string;
  expect: string;
  reply: string;
}

const LARGE_REPLY = 1 << 20;

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
  if (name === "refused") {
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
