// Raw MQTT 3.1.1 packets, for tests that must do what no well-behaved client library does
// (pipeline a session, declare a 100 MB packet, knock on a broker and see what it refuses).

import { connect } from "node:net";

/** The variable byte integer of a packet's remaining length. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** A UTF-8 string with its two-byte length. */
export const field = (s: string) => {
  const bytes = Buffer.from(s);
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
};

export const packet = (type: number, body: Buffer) => Buffer.concat([Buffer.from([type]), varint(body.length), body]);

/** CONNECT with a clean session and a 60 s keep-alive, with a username and password if given. */
export function connectPacket(clientId: string, credentials?: { username: string; password: string }): Buffer {
  const flags = credentials ? 0xc2 : 0x02;
  const login = credentials ? [field(credentials.username), field(credentials.password)] : [];
  return packet(0x10, Buffer.concat([field("MQTT"), Buffer.from([4, flags, 0, 60]), field(clientId), ...login]));
}

/** PUBLISH with QoS 1. */
export const publishPacket = (topic: string, payload: string, messageId: number) =>
  packet(0x32, Buffer.concat([field(topic), Buffer.from([messageId >> 8, messageId & 0xff]), Buffer.from(payload)]));

export interface SessionOutcome {
  /** the CONNACK return code (0 accepted), or null if none came */
  connack: number | null;
  /** PUBACKs received */
  pubacks: number;
}

/** The CONNACK code and PUBACK count in what a broker sent (every answer here is under 128 bytes). */
function outcome(got: Buffer): SessionOutcome {
  const out: SessionOutcome = { connack: null, pubacks: 0 };
  for (let at = 0; at + 1 < got.length; at += 2 + got[at + 1]) {
    const type = got[at] >> 4;
    if (type === 2) out.connack = got[at + 3];
    if (type === 4) out.pubacks++;
  }
  return out;
}

/**
 * Writes `bytes` (a CONNECT, then PUBLISHes) to a broker on 127.0.0.1:`port` at once, and reads
 * until the broker closes the connection (a refusal) or has accepted it and acknowledged
 * `publishes` messages. No DISCONNECT is sent: a broker may act on it before the PUBLISHes
 * pipelined ahead of it are done.
 */
export function session(port: number, bytes: Buffer, publishes: number, guardMs = 15_000): Promise<SessionOutcome> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
    let got = Buffer.alloc(0);
    const guard = setTimeout(() => { socket.destroy(); reject(new Error(`no close and no answer to all after ${guardMs} ms: ${JSON.stringify(outcome(got))}`)); }, guardMs);
    const finish = () => {
      clearTimeout(guard);
      socket.destroy();
      resolve(outcome(got));
    };
    socket.on("data", (d) => {
      got = Buffer.concat([got, d]);
      const now = outcome(got);
      if (now.connack === 0 && now.pubacks === publishes) finish();
    });
    socket.on("error", () => {}); // a reset is a close too
    socket.on("close", finish);
  });
}

/** Complete MQTT packets at the start of `buffer`, and what is left of it (a packet cut short). */
export function splitPackets(buffer: Buffer): { packets: { type: number; body: Buffer }[]; rest: Buffer } {
  const packets: { type: number; body: Buffer }[] = [];
  let at = 0;
  for (;;) {
    let length = 0;
    let multiplier = 1;
    let i = at + 1;
    for (; i < buffer.length; i++) {
      length += (buffer[i] & 0x7f) * multiplier;
      multiplier *= 128;
      if (!(buffer[i] & 0x80)) break;
    }
    if (i >= buffer.length || i + 1 + length > buffer.length) break;
    packets.push({ type: buffer[at] >> 4, body: buffer.subarray(i + 1, i + 1 + length) });
    at = i + 1 + length;
  }
  return { packets, rest: buffer.subarray(at) };
}
