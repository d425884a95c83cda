// Raw MQTT 3.1.1 packets, for tests that must do what no well-behaved client library does
// (pipeline a session, declare a 100 MB packet).

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

/** CONNECT with a clean session and a 60 s keep-alive. */
export const connectPacket = (clientId: string) =>
  packet(0x10, Buffer.concat([field("MQTT"), Buffer.from([4, 2, 0, 60]), field(clientId)]));

/** PUBLISH with QoS 1. */
export const publishPacket = (topic: string, payload: string, messageId: number) =>
  packet(0x32, Buffer.concat([field(topic), Buffer.from([messageId >> 8, messageId & 0xff]), Buffer.from(payload)]));
