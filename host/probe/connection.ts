// One probe connection: writes step data and hands incoming bytes to the step that is
// reading. Bytes that arrive while no step reads (the rest of a chunk after a verdict) are
// kept, bounded, for a following step that has nothing to send; a step that sends discards
// them (DESIGN.md: bytes received before a step begins writing are not its reply).

import type { Socket } from "node:net";
import { RunFault, describeError, isTlsError } from "./fault.js";

export interface ReplyListener {
  data(chunk: Buffer): void;
  /** the peer closed or reset the connection */
  end(): void;
}

/** Leftover bytes kept between steps at most; more is dropped (a flood cannot grow memory). */
const MAX_LEFTOVER = 1 << 20;
/** Step data is handed to the socket in pieces of this size at most (see writeFrom). */
const WRITE_PIECE = 64 * 1024;

/**
 * The socket's listeners are the same four functions for every connection (no functions made
 * per connection): each finds its connection on the socket, which an emitter passes as `this`.
 */
const OWNER = Symbol("catprobe.connection");
type OwnedSocket = Socket & { [OWNER]: Connection | null };
function onData(this: OwnedSocket, chunk: Buffer): void {
  this[OWNER]?.data(chunk);
}
function onEnd(this: OwnedSocket): void {
  this[OWNER]?.finish("closed");
}
function onError(this: OwnedSocket, err: Error): void {
  this[OWNER]?.failed(err);
}
function onClose(this: OwnedSocket): void {
  this[OWNER]?.finish("closed");
}

export class Connection {
  bytesSent = 0;
  bytesReceived = 0;
  /** how the connection ended, once it has: "closed" or "reset" */
  ended: "closed" | "reset" | null = null;
  /** the error that ended it, if one did */
  error: Error | null = null;
  private socket: Socket;
  private listener: ReplyListener | null = null;
  private leftover: Buffer[] = [];
  private leftoverBytes = 0;
  /** the data of the write in flight, if one is */
  private sending: Uint8Array | null = null;
  private sendOffset = 0;
  private sendStep = 0;
  private sendDone: ((fault: RunFault | null) => void) | null = null;
  /** bytes of the piece in flight */
  private pieceBytes = 0;

  private readonly onWritten = this.written.bind(this);

  constructor(socket: Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    (socket as OwnedSocket)[OWNER] = this;
    socket.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  }

  /** @internal the socket's "data" */
  data(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    if (this.listener) this.listener.data(chunk);
    else this.keep(chunk);
  }

  /** @internal the socket's "error" */
  failed(err: Error): void {
    this.error ??= err;
    if (this.sending) this.writeFailed(err);
    this.finish((err as NodeJS.ErrnoException).code === "ECONNRESET" ? "reset" : "closed");
  }

  /** @internal the socket's "end" and "close" */
  finish(how: "closed" | "reset"): void {
    if (this.ended) return;
    this.ended = how;
    this.listener?.end();
  }

  /** Keeps bytes for a following step that sends nothing. */
  keep(chunk: Buffer): void {
    if (chunk.length === 0 || this.leftoverBytes + chunk.length > MAX_LEFTOVER) return;
    this.leftover.push(chunk);
    this.leftoverBytes += chunk.length;
  }

  discardLeftover(): void {
    if (this.leftover.length === 0) return; // the usual case: no array made per step
    this.leftover = [];
    this.leftoverBytes = 0;
  }

  /** Routes incoming bytes to `listener`: first the leftover, then the end if it came. */
  listen(listener: ReplyListener | null): void {
    this.listener = listener;
    if (!listener) return;
    while (this.leftover.length && this.listener === listener) {
      const chunk = this.leftover.shift()!;
      this.leftoverBytes -= chunk.length;
      listener.data(chunk);
    }
    if (this.ended && this.listener === listener) listener.end();
  }

  /** Resolves once the local TCP stack has accepted all of `data`; a failure is a 602. */
  write(data: Uint8Array, step: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.send(data, step, (fault) => (fault ? reject(fault) : resolve()));
    });
  }

  /**
   * write() without a promise: `done` is called once, with null once the local TCP stack has
   * accepted all of `data`, or with the 602 (608 over TLS) that failed it; at once when the
   * connection has already ended.
   */
  send(data: Uint8Array, step: number, done: (fault: RunFault | null) => void): void {
    if (this.ended || !this.socket.writable) {
      const how = this.ended === "reset" ? "reset" : "closed";
      return done(new RunFault(602, `step ${step + 1}: connection ${how} by peer before the data could be sent`, step));
    }
    // One write is in flight at a time (steps run in order); an error event may fail it first.
    this.sending = data;
    this.sendOffset = 0;
    this.sendStep = step;
    this.sendDone = done;
    this.writeFrom();
  }

  private writeFailed(err: Error): void {
    const { sending: data, sendStep: step, sendDone: done } = this;
    this.sending = null;
    this.sendDone = null;
    const where = `step ${step + 1}`;
    done!(isTlsError(err)
      ? new RunFault(608, `${where}: TLS failure while sending: ${describeError(err)}`, step)
      : new RunFault(602, `${where}: sending ${data!.length} bytes failed: ${describeError(err)}`, step));
  }

  /**
   * Writes the data being sent from sendOffset a piece at a time, each once the stack accepted
   * the one before, so bytesSent counts what the stack took even when the peer stops reading
   * and the step times out. Socket.write would batch queued pieces into one writev with one
   * completion, hence one piece in flight. Data of one piece or less is written as it is, in
   * one call.
   */
  private writeFrom(): void {
    const data = this.sending!;
    const offset = this.sendOffset;
    const piece = data.length <= WRITE_PIECE ? data : data.subarray(offset, offset + WRITE_PIECE);
    this.pieceBytes = piece.length;
    this.socket.write(piece, this.onWritten);
  }

  private written(err?: Error | null): void {
    if (!this.sending) return; // the write already failed
    if (err) return this.writeFailed(err);
    this.bytesSent += this.pieceBytes;
    this.sendOffset += this.pieceBytes;
    if (this.sendOffset < this.sending.length) return this.writeFrom();
    const done = this.sendDone!;
    this.sending = null;
    this.sendDone = null;
    done(null);
  }

  /** Hands the socket over (STARTTLS): this connection stops reading it. */
  detach(): Socket {
    const socket = this.socket;
    socket.off("data", onData).off("end", onEnd).off("close", onClose).off("error", onError);
    (socket as OwnedSocket)[OWNER] = null;
    socket.on("error", () => {}); // the TLS layer reports errors from here on
    this.discardLeftover();
    return socket;
  }

  /** Reads from `socket` from now on (the TLS socket after STARTTLS). */
  adopt(socket: Socket): void {
    this.attach(socket);
  }

  destroy(): void {
    this.listener = null;
    this.socket.destroy();
  }
}
