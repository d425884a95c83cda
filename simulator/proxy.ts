// A TCP fault proxy in the manner of Toxiproxy: it listens on loopback, forwards each accepted
// connection to an upstream host:port and applies "toxics" to the bytes of each direction.
// Toxics can be replaced while the proxy runs: a change applies to the bytes read after it, on
// live and new connections alike, and never reorders the stream. Only Node's standard library is
// used; socket errors never escape, and a connection's end or close() leaves no timer or socket.
//
// Per direction of a connection the bytes flow: source socket → chain of toxic stages → writer →
// destination socket. Each stage runs its own loop with its own queue, so delays overlap the way
// they do on a real link (a latency stage delays each chunk from when it arrived, not after the
// previous one). A change of toxics starts a new chain; the writer drains the old one first.
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { listenLoopback } from "./servers/tcp.js";

export type Direction = "upstream" | "downstream";

export type Toxic =
  /** delays each chunk by latencyMs ± jitterMs (uniform), keeping the order of the stream */
  | { type: "latency"; latencyMs: number; jitterMs?: number }
  /** paces the bytes to bytesPerSecond */
  | { type: "bandwidth"; bytesPerSecond: number }
  /** splits each chunk into pieces of averageSize ± sizeVariation bytes, delayMs apart, each its own write */
  | { type: "slicer"; averageSize: number; sizeVariation?: number; delayMs?: number }
  /** resets (RST) both sides afterMs after the connection opens (or the toxic is set on a live one) */
  | { type: "reset_peer"; afterMs?: number }
  /** after afterMs, drops this direction's bytes and withholds its FIN: the connection stays open */
  | { type: "timeout"; afterMs?: number }
  /** forwards at most `bytes` in this direction, then closes the connection */
  | { type: "limit_data"; bytes: number }
  /** delays the FIN towards the receiver of this direction by delayMs */
  | { type: "slow_close"; delayMs: number };

export type ToxicType = Toxic["type"];

export interface ProxyStats {
  /** connections accepted so far */
  connections: number;
  /** bytes forwarded client → server (after toxics) */
  bytesUpstream: number;
  /** bytes forwarded server → client (after toxics) */
  bytesDownstream: number;
}

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  readonly upstream: { host: string; port: number };
  /** a snapshot of the counters */
  readonly stats: ProxyStats;
  /** replaces the toxics of one direction (empty array: none); throws on an invalid toxic */
  setToxics(direction: Direction, toxics: Toxic[]): void;
  toxics(direction: Direction): Toxic[];
  /** destroys every connection, stops listening; idempotent */
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  host?: "127.0.0.1" | "::1";
  upstreamToxics?: Toxic[];
  downstreamToxics?: Toxic[];
}

/** Bytes a direction may hold (in its stages and the destination's buffer) before it stops reading. */
const HIGH_WATER = 256 * 1024;
/** The bandwidth toxic releases bytes in slices of 1/50 s, so pacing is smooth but timers few. */
const SLICES_PER_SECOND = 50;
const DIRECTIONS: readonly Direction[] = ["upstream", "downstream"];

const ignore = (): void => {};
const now = (): number => performance.now();

// ---------------------------------------------------------------------------------------------
// Validation

interface FieldRule {
  field: string;
  required: boolean;
  min: number;
  /** the value must be strictly above min */
  above?: boolean;
}

const RULES: { [T in ToxicType]: FieldRule[] } = {
  latency: [{ field: "latencyMs", required: true, min: 0 }, { field: "jitterMs", required: false, min: 0 }],
  bandwidth: [{ field: "bytesPerSecond", required: true, min: 0, above: true }],
  slicer: [
    { field: "averageSize", required: true, min: 1 },
    { field: "sizeVariation", required: false, min: 0 },
    { field: "delayMs", required: false, min: 0 },
  ],
  reset_peer: [{ field: "afterMs", required: false, min: 0 }],
  timeout: [{ field: "afterMs", required: false, min: 0 }],
  limit_data: [{ field: "bytes", required: true, min: 0 }],
  slow_close: [{ field: "delayMs", required: true, min: 0 }],
};

/** Checks a whole list before anything changes, and copies it so callers cannot mutate it later. */
function checkToxics(toxics: unknown): Toxic[] {
  if (!Array.isArray(toxics)) throw new Error("toxics must be an array");
  return toxics.map((toxic, index) => checkToxic(toxic, index));
}

function checkToxic(toxic: unknown, index: number): Toxic {
  if (typeof toxic !== "object" || toxic === null) throw new Error(`toxic #${index} is not an object`);
  const type = (toxic as { type?: unknown }).type;
  if (typeof type !== "string" || !Object.hasOwn(RULES, type)) {
    throw new Error(`toxic #${index}: unknown type ${JSON.stringify(type)}`);
  }
  for (const rule of RULES[type as ToxicType]) checkField(type, toxic as Record<string, unknown>, rule);
  return { ...(toxic as Toxic) };
}

function checkField(type: string, toxic: Record<string, unknown>, rule: FieldRule): void {
  const value = toxic[rule.field];
  if (value === undefined && !rule.required) return;
  const inRange = typeof value === "number" && Number.isFinite(value)
    && (rule.above ? value > rule.min : value >= rule.min);
  if (!inRange) {
    const bound = `${rule.above ? ">" : ">="} ${rule.min}`;
    throw new Error(`${type} toxic: ${rule.field} must be a finite number ${bound} (got ${String(value)})`);
  }
}

function checkDirection(direction: unknown): Direction {
  if (direction !== "upstream" && direction !== "downstream") {
    throw new Error(`direction must be "upstream" or "downstream" (got ${String(direction)})`);
  }
  return direction;
}

function findToxic<T extends ToxicType>(toxics: Toxic[], type: T): Extract<Toxic, { type: T }> | undefined {
  return toxics.find((toxic): toxic is Extract<Toxic, { type: T }> => toxic.type === type);
}

// ---------------------------------------------------------------------------------------------
// Timers and queues

/** Thrown into sleeping stages when their connection goes away, so their loops unwind. */
class Cancelled extends Error {}

/** Owns a connection's timers, so that its teardown clears every one of them. */
class Scope {
  closed = false;
  private readonly timers = new Map<NodeJS.Timeout, () => void>();

  /** Calls fn after ms; returns a cancel function. */
  after(ms: number, fn: () => void): () => void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.set(timer, ignore);
    return () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
  }

  sleep(ms: number): Promise<void> {
    return this.sleepUntil(now() + ms);
  }

  async sleepUntil(time: number): Promise<void> {
    if (this.closed) throw new Cancelled();
    // libuv starts timers from a cached loop clock, so one can fire a little early: re-arm until due.
    for (let left = time - now(); left > 0; left = time - now()) await this.wait(left);
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, Math.ceil(ms));
      this.timers.set(timer, () => reject(new Cancelled()));
    });
  }

  close(): void {
    this.closed = true;
    for (const [timer, cancel] of this.timers) {
      clearTimeout(timer);
      cancel();
    }
    this.timers.clear();
  }
}

interface Item {
  data: Buffer;
  /** when the item entered its queue */
  at: number;
}

/** A single-consumer queue between two stages. */
class Channel {
  private items: Item[] = [];
  private head = 0;
  private waiter: ((item: Item | undefined) => void) | undefined;
  private closed = false;

  push(data: Buffer): void {
    if (this.closed) return;
    const item = { data, at: now() };
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  /** No more items; those queued are still taken, unless `discard`. */
  close(discard = false): void {
    this.closed = true;
    if (discard) {
      this.items = [];
      this.head = 0;
    }
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(undefined);
  }

  /** The next item, or undefined once closed and empty. */
  take(): Promise<Item | undefined> {
    if (this.head < this.items.length) return Promise.resolve(this.shift());
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  // A head index rather than Array.shift: a slicer can queue tens of thousands of tiny pieces.
  private shift(): Item {
    const item = this.items[this.head++]!;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

// ---------------------------------------------------------------------------------------------
// Stages: one per data toxic

/** What a stage may do besides passing bytes on. */
interface StageContext {
  scope: Scope;
  /** when the chain started applying to this connection */
  startedAt: number;
  /** bytes a stage swallowed (for the backpressure count) */
  drop(bytes: number): void;
  /** limit_data reached: the connection closes once the chain has flushed */
  limitReached(): void;
}

type Emit = (data: Buffer) => void;
/** Handles one item; "close" ends the stage's output (later input is dropped). */
type Handler = (item: Item, emit: Emit) => Promise<void> | void | "close";

function makeHandler(toxic: Toxic, ctx: StageContext): Handler | undefined {
  switch (toxic.type) {
    case "latency":
      return latencyStage(toxic, ctx);
    case "bandwidth":
      return bandwidthStage(toxic, ctx);
    case "slicer":
      return slicerStage(toxic, ctx);
    case "timeout":
      return timeoutStage(toxic, ctx);
    case "limit_data":
      return limitStage(toxic, ctx);
    case "reset_peer":
    case "slow_close":
      return undefined; // act on the connection, not on the bytes
  }
}

function latencyStage(toxic: Extract<Toxic, { type: "latency" }>, ctx: StageContext): Handler {
  let lastDue = 0;
  return async (item, emit) => {
    const jitter = (Math.random() * 2 - 1) * (toxic.jitterMs ?? 0);
    // Never before the previous chunk: jitter must not reorder the stream.
    lastDue = Math.max(item.at + Math.max(0, toxic.latencyMs + jitter), lastDue);
    await ctx.scope.sleepUntil(lastDue);
    emit(item.data);
  };
}

function bandwidthStage(toxic: Extract<Toxic, { type: "bandwidth" }>, ctx: StageContext): Handler {
  const rate = toxic.bytesPerSecond;
  const slice = Math.max(1, Math.floor(rate / SLICES_PER_SECOND));
  let free = 0; // when the link has sent everything released so far
  return async (item, emit) => {
    free = Math.max(free, now()); // an idle link saves up no credit
    for (let offset = 0; offset < item.data.length; offset += slice) {
      const piece = item.data.subarray(offset, offset + slice);
      // A piece leaves once the link would have carried it: the schedule, not the timers, sets the rate.
      free += (piece.length * 1000) / rate;
      await ctx.scope.sleepUntil(free);
      emit(piece);
    }
  };
}

function slicerStage(toxic: Extract<Toxic, { type: "slicer" }>, ctx: StageContext): Handler {
  return async (item, emit) => {
    for (let offset = 0; offset < item.data.length;) {
      if (offset > 0 && toxic.delayMs) await ctx.scope.sleep(toxic.delayMs);
      const size = sliceSize(toxic);
      emit(item.data.subarray(offset, offset + size));
      offset += size;
    }
  };
}

function sliceSize(toxic: Extract<Toxic, { type: "slicer" }>): number {
  const variation = (Math.random() * 2 - 1) * (toxic.sizeVariation ?? 0);
  return Math.max(1, Math.round(toxic.averageSize + variation));
}

function timeoutStage(toxic: Extract<Toxic, { type: "timeout" }>, ctx: StageContext): Handler {
  const deadline = ctx.startedAt + (toxic.afterMs ?? 0);
  return (item, emit) => {
    if (now() < deadline) emit(item.data);
    else ctx.drop(item.data.length);
  };
}

function limitStage(toxic: Extract<Toxic, { type: "limit_data" }>, ctx: StageContext): Handler {
  let remaining = Math.floor(toxic.bytes);
  return (item, emit) => {
    const allowed = item.data.subarray(0, Math.max(0, remaining));
    if (allowed.length > 0) emit(allowed);
    ctx.drop(item.data.length - allowed.length);
    remaining -= allowed.length;
    if (remaining > 0) return;
    ctx.limitReached();
    return "close";
  };
}

/** Feeds a stage from `input` to `output` until input ends; output always ends with it. */
async function runStage(handle: Handler, input: Channel, output: Channel, ctx: StageContext): Promise<void> {
  let open = true;
  const emit: Emit = (data) => output.push(data);
  try {
    for (let item = await input.take(); item; item = await input.take()) {
      if (!open) {
        ctx.drop(item.data.length);
        continue;
      }
      if ((await handle(item, emit)) === "close") {
        open = false;
        output.close();
      }
    }
  } finally {
    output.close();
  }
}

/** The stages built from one setting of a direction's toxics. */
class Chain {
  readonly input = new Channel();
  readonly output: Channel;
  readonly startedAt = now();
  limited = false;
  private readonly channels: Channel[] = [this.input];

  constructor(readonly toxics: Toxic[], hooks: Pick<StageContext, "scope" | "drop">, onError: () => void) {
    const limitReached = (): void => {
      this.limited = true;
    };
    const ctx: StageContext = { ...hooks, startedAt: this.startedAt, limitReached };
    let input = this.input;
    for (const toxic of toxics) {
      const handler = makeHandler(toxic, ctx);
      if (!handler) continue;
      const output = new Channel();
      this.channels.push(output);
      runStage(handler, input, output, ctx).catch(onError);
      input = output;
    }
    this.output = input;
  }

  /** The connection went away: wake every waiting stage with nothing. */
  abort(): void {
    for (const channel of this.channels) channel.close(true);
  }

  /** true once a timeout toxic of this chain has gone off */
  silenced(): boolean {
    const timeout = findToxic(this.toxics, "timeout");
    return timeout !== undefined && now() >= this.startedAt + (timeout.afterMs ?? 0);
  }

  slowCloseMs(): number {
    let total = 0;
    for (const toxic of this.toxics) if (toxic.type === "slow_close") total += toxic.delayMs;
    return total;
  }
}

// ---------------------------------------------------------------------------------------------
// Connections

interface ProxyState {
  readonly upstream: { host: string; port: number };
  readonly toxics: Record<Direction, Toxic[]>;
  readonly stats: ProxyStats;
  readonly connections: Set<Connection>;
}

/** One direction of one connection: source socket → chains → destination socket. */
class Pipe {
  private readonly chains: Chain[] = [];
  private current!: Chain;
  /** bytes read from the source and not yet written or dropped */
  private buffered = 0;
  private paused = false;
  private sourceEnded = false;
  private changeWaiters: (() => void)[] = [];

  constructor(
    private readonly conn: Connection,
    readonly direction: Direction,
    private readonly source: Socket,
    private readonly dest: Socket,
    toxics: Toxic[],
  ) {
    this.setToxics(toxics);
    source.on("data", (chunk: Buffer) => this.onData(chunk));
    source.on("end", () => this.onEnd());
    dest.on("drain", () => this.maybeResume());
    this.pump().catch(() => conn.teardown());
  }

  setToxics(toxics: Toxic[]): void {
    const hooks = { scope: this.conn.scope, drop: (bytes: number) => this.release(bytes) };
    const chain = new Chain(toxics, hooks, () => this.conn.teardown());
    // The old chain gets no more input; the writer drains it before the new one, so order holds.
    this.current?.input.close();
    this.current = chain;
    this.chains.push(chain);
    if (this.sourceEnded) chain.input.close();
    this.notifyChange();
  }

  abort(): void {
    for (const chain of this.chains) chain.abort();
    this.notifyChange();
  }

  private onData(chunk: Buffer): void {
    this.buffered += chunk.length;
    this.current.input.push(chunk);
    if (!this.paused && this.backlog() >= HIGH_WATER) {
      this.paused = true;
      this.source.pause();
    }
  }

  private onEnd(): void {
    this.sourceEnded = true;
    this.current.input.close();
  }

  private backlog(): number {
    return this.buffered + this.dest.writableLength;
  }

  private maybeResume(): void {
    // Resumed at half the mark, so that reading does not flap on every write.
    if (!this.paused || this.conn.closed || this.backlog() >= HIGH_WATER / 2) return;
    this.paused = false;
    this.source.resume();
  }

  /** `bytes` left the pipe: written out, or swallowed by a toxic. */
  private release(bytes: number): void {
    this.buffered -= bytes;
    this.maybeResume();
  }

  /** Writes the chains' output in order, then forwards the end (or closes, or stays silent). */
  private async pump(): Promise<void> {
    for (;;) {
      const chain = this.chains[0]!;
      for (let item = await chain.output.take(); item; item = await chain.output.take()) {
        await this.write(item.data);
      }
      if (this.conn.closed) return;
      if (chain.limited) return this.conn.closeAfterFlush(this.dest);
      if (chain !== this.current) {
        this.chains.shift(); // a replaced chain, drained: go on with the next
        continue;
      }
      // The current chain ended, so the source has: forward the FIN unless a timeout holds it.
      if (!chain.silenced()) break;
      await new Promise<void>((resolve) => this.changeWaiters.push(resolve));
    }
    await this.conn.scope.sleep(this.current.slowCloseMs());
    if (this.dest.writable) this.dest.end();
  }

  private async write(data: Buffer): Promise<void> {
    this.release(data.length);
    if (this.conn.closed || !this.dest.writable) return;
    this.conn.count(this.direction, data.length);
    if (!this.dest.write(data)) await drained(this.dest);
  }

  private notifyChange(): void {
    const waiters = this.changeWaiters;
    this.changeWaiters = [];
    for (const waiter of waiters) waiter();
  }
}

/** Resolves when `socket` can take more, or will never. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}

class Connection {
  readonly scope = new Scope();
  closed = false;
  private readonly server: Socket;
  private readonly pipes: Record<Direction, Pipe>;
  private readonly cancelReset: Partial<Record<Direction, () => void>> = {};

  constructor(private readonly state: ProxyState, private readonly client: Socket) {
    this.server = connect({ ...state.upstream, allowHalfOpen: true });
    for (const socket of [client, this.server]) this.guard(socket);
    // Nagle off: a slicer's pieces and a dribble's bytes must leave as they are written.
    client.setNoDelay(true);
    this.server.setNoDelay(true);
    this.pipes = {
      upstream: new Pipe(this, "upstream", client, this.server, state.toxics.upstream),
      downstream: new Pipe(this, "downstream", this.server, client, state.toxics.downstream),
    };
    for (const direction of DIRECTIONS) this.scheduleReset(direction, state.toxics[direction]);
  }

  setToxics(direction: Direction, toxics: Toxic[]): void {
    if (this.closed) return;
    this.pipes[direction].setToxics(toxics);
    this.scheduleReset(direction, toxics);
  }

  count(direction: Direction, bytes: number): void {
    if (direction === "upstream") this.state.stats.bytesUpstream += bytes;
    else this.state.stats.bytesDownstream += bytes;
  }

  /** limit_data: a FIN after the allowed bytes, then both sides go. */
  closeAfterFlush(dest: Socket): void {
    if (dest.writable) dest.end(() => this.teardown());
    else this.teardown();
  }

  /** Ends the connection for good; `reset` sends RSTs instead of FINs. Idempotent. */
  teardown(reset = false): void {
    if (this.closed) return;
    this.closed = true;
    this.scope.close();
    for (const direction of DIRECTIONS) this.pipes[direction].abort();
    for (const socket of [this.client, this.server]) {
      if (reset && !socket.destroyed) socket.resetAndDestroy();
      else socket.destroy();
    }
    this.state.connections.delete(this);
  }

  private guard(socket: Socket): void {
    // A reset on one side is passed on as a reset; any other error (e.g. a refused upstream) closes.
    socket.on("error", (err: NodeJS.ErrnoException) => this.teardown(err.code === "ECONNRESET"));
    socket.on("close", () => {
      if (this.client.destroyed && this.server.destroyed) this.teardown();
    });
  }

  private scheduleReset(direction: Direction, toxics: Toxic[]): void {
    this.cancelReset[direction]?.();
    delete this.cancelReset[direction];
    const reset = findToxic(toxics, "reset_peer");
    if (reset) this.cancelReset[direction] = this.scope.after(reset.afterMs ?? 0, () => this.teardown(true));
  }
}

/** reset_peer with no delay: reset on accept, without ever dialling upstream. */
function resetsAtOnce(state: ProxyState): boolean {
  return DIRECTIONS.some((direction) => {
    const reset = findToxic(state.toxics[direction], "reset_peer");
    return reset !== undefined && (reset.afterMs ?? 0) === 0;
  });
}

function accept(state: ProxyState, client: Socket): void {
  state.stats.connections++;
  client.on("error", ignore);
  if (resetsAtOnce(state)) {
    client.resetAndDestroy();
    return;
  }
  state.connections.add(new Connection(state, client));
}

// ---------------------------------------------------------------------------------------------
// The proxy

export async function startFaultProxy(
  upstream: { host: string; port: number },
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const host = options.host ?? "127.0.0.1";
  if (host !== "127.0.0.1" && host !== "::1") throw new Error(`host must be 127.0.0.1 or ::1 (got ${host})`);
  const state: ProxyState = {
    upstream: { host: upstream.host, port: upstream.port },
    toxics: {
      upstream: checkToxics(options.upstreamToxics ?? []),
      downstream: checkToxics(options.downstreamToxics ?? []),
    },
    stats: { connections: 0, bytesUpstream: 0, bytesDownstream: 0 },
    connections: new Set(),
  };
  // Half-open allowed: the proxy, not Node, decides when each FIN is passed on (slow_close, timeout).
  const server = createServer({ allowHalfOpen: true }, (client) => accept(state, client));
  await listenLoopback(server, host);
  server.on("error", ignore);
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    upstream: { ...state.upstream },
    get stats() {
      return { ...state.stats };
    },
    setToxics(direction, toxics) {
      const checked = checkToxics(toxics);
      state.toxics[checkDirection(direction)] = checked;
      for (const connection of state.connections) connection.setToxics(direction, checked);
    },
    toxics(direction) {
      return state.toxics[checkDirection(direction)].map((toxic) => ({ ...toxic }));
    },
    close() {
      closing ??= new Promise((resolve) => {
        server.close(() => resolve());
        for (const connection of state.connections) connection.teardown();
      });
      return closing;
    },
  };
}
