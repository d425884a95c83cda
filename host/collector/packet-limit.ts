// A packet-size limit in front of the embedded broker: aedes buffers a whole packet before it
// looks at it, so a 250 MB publish would sit in memory. This reads each MQTT fixed header
// (type byte, then the remaining length as a variable byte integer) as bytes pass and closes
// the connection at the first packet over the limit, before its body is read.

import { Duplex } from "node:stream";
import type { Socket } from "node:net";

/** Tracks packet boundaries in an MQTT byte stream without copying or parsing the packets. */
export class PacketSizeScanner {
  /** bytes of the current packet's body still to pass */
  private body = 0;
  /** inside a remaining-length field: its value so far and the next digit's weight */
  private inLength = false;
  private length = 0;
  private weight = 1;

  constructor(readonly limit: number) {}

  /** Feeds bytes; returns the declared size of a packet over the limit, or -1 while all is well. */
  scan(chunk: Buffer): number {
    let i = 0;
    while (i < chunk.length) {
      if (this.body > 0) {
        const n = Math.min(this.body, chunk.length - i);
        this.body -= n;
        i += n;
      } else if (!this.inLength) {
        i++; // the type and flags byte
        this.inLength = true;
        this.length = 0;
        this.weight = 1;
      } else {
        const b = chunk[i++];
        this.length += (b & 0x7f) * this.weight;
        this.weight *= 128;
        if (b & 0x80) {
          if (this.weight > 128 ** 3) return Infinity; // more than four length bytes: malformed
          continue;
        }
        this.inLength = false;
        if (this.length > this.limit) return this.length;
        this.body = this.length;
      }
    }
    return -1;
  }
}

/**
 * The socket as a stream for aedes, closed at the first packet over `limit` bytes;
 * `onOversize` hears of it. Back-pressure passes through both ways.
 */
export class PacketLimitedStream extends Duplex {
  private readonly scanner: PacketSizeScanner;

  constructor(private readonly socket: Socket, limit: number, onOversize: (declared: number) => void) {
    super();
    this.scanner = new PacketSizeScanner(limit);
    socket.on("data", (chunk: Buffer) => {
      const declared = this.scanner.scan(chunk);
      if (declared >= 0) {
        onOversize(declared);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.socket.write(chunk, done);
  }

  override _final(done: () => void): void {
    this.socket.end(done);
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }
}
