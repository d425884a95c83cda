/**
 * A tiny authoritative DNS server on loopback UDP, for tests and the fault lab.
 *
 * It answers A and AAAA from an in-memory zone and can inject per-name faults (NXDOMAIN, SERVFAIL,
 * REFUSED, an empty NOERROR, or no reply at all). Only Node's standard library is used.
 * Wire format: RFC 1035 section 4.1; AAAA: RFC 3596.
 */
import dgram from "node:dgram";
import net from "node:net";

export type DnsFault = "nxdomain" | "servfail" | "silent" | "noanswer" | "refused";

export interface DnsZone {
  /** name (case-insensitive, no trailing dot) -> addresses; IPv4 in a, IPv6 in aaaa */
  records?: Record<string, { a?: string[]; aaaa?: string[] }>;
  /** per-name faults; a name with a fault ignores its records */
  faults?: Record<string, DnsFault>;
  /** fault for every name that is neither in records nor in faults; default "nxdomain" */
  otherwise?: DnsFault;
  /** TTL of answers in seconds; default 5 */
  ttl?: number;
}

export interface DnsServer {
  readonly host: string; // "127.0.0.1" (or "::1" when asked)
  readonly port: number;
  /** "127.0.0.1:53535" or "[::1]:53535", the form a task's dns.servers takes */
  readonly address: string;
  /** queries received, by name (lower case), for assertions */
  readonly queries: Map<string, number>;
  /** datagrams that were not a well-formed query and were dropped without a reply */
  readonly malformed: number;
  /** replace the zone while running */
  setZone(zone: DnsZone): void;
  close(): Promise<void>;
}

/** The parts of a query the server needs to answer it. */
export interface DnsQuery {
  id: number;
  /** opcode, RD and the rest of the flags word as received */
  flags: number;
  /** name as sent (original case), labels joined by "." and without a trailing dot; "" is the root */
  name: string;
  qtype: number;
  qclass: number;
  /** the raw question section (name, QTYPE, QCLASS), echoed verbatim so the client's 0x20 case matches */
  question: Buffer;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const RCODE = { noerror: 0, formerr: 1, servfail: 2, nxdomain: 3, notimp: 4, refused: 5 } as const;
const HEADER_LENGTH = 12;
/** Without EDNS a UDP reply must fit in 512 bytes (RFC 1035 4.2.1); we never speak EDNS back. */
const MAX_UDP_REPLY = 512;
/** Answers name the question with a compression pointer to offset 12, right after the header. */
const POINTER_TO_QUESTION = 0xc00c;

/** The zone after normalisation: lower-case keys, addresses already in wire form. */
interface CompiledZone {
  records: Map<string, { a: Buffer[]; aaaa: Buffer[] }>;
  faults: Map<string, DnsFault>;
  otherwise: DnsFault;
  ttl: number;
}

/** What to send back for one query: an RCODE and the address records of the answer section. */
interface Reply {
  rcode: number;
  type: number;
  rdata: Buffer[];
}

/** Lower case and no trailing dot, so "Example.TEST." and "example.test" are the same key. */
function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/**
 * Parses a query datagram. Returns undefined for anything that is not a plain one-question query;
 * sections after the question (such as an EDNS OPT record) are deliberately not parsed.
 */
export function parseQuery(packet: Buffer): DnsQuery | undefined {
  if (packet.length < HEADER_LENGTH) return undefined;
  const id = packet.readUInt16BE(0);
  const flags = packet.readUInt16BE(2);
  const isResponse = (flags & 0x8000) !== 0;
  if (isResponse || packet.readUInt16BE(4) !== 1) return undefined;

  const labels: string[] = [];
  let offset = HEADER_LENGTH;
  let nameLength = 1; // the terminating zero byte
  for (;;) {
    if (offset >= packet.length) return undefined;
    const length = packet[offset];
    offset += 1;
    if (length === 0) break;
    // 0xC0 is a compression pointer and 0x40/0x80 are reserved; none belong in a query's question.
    if (length > 63) return undefined;
    nameLength += length + 1;
    if (nameLength > 255 || offset + length > packet.length) return undefined;
    labels.push(packet.toString("latin1", offset, offset + length));
    offset += length;
  }
  if (offset + 4 > packet.length) return undefined;
  const qtype = packet.readUInt16BE(offset);
  const qclass = packet.readUInt16BE(offset + 2);
  const question = Buffer.from(packet.subarray(HEADER_LENGTH, offset + 4));
  return { id, flags, name: labels.join("."), qtype, qclass, question };
}

/**
 * Encodes a dotted name as length-prefixed labels ending in the root label. Replies echo the query's
 * own question bytes, so this mainly vets zone names: one that cannot be encoded could never be asked.
 */
export function encodeName(name: string): Buffer {
  // Printable ASCII only: DNS case-folding is ASCII-only and international names travel as punycode.
  if (!/^[\x21-\x7e]*$/.test(name)) {
    throw new Error(`DNS name must be printable ASCII: ${JSON.stringify(name)}`);
  }
  const labels = normaliseName(name).split(".").filter((label) => label.length > 0);
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, "ascii");
    if (bytes.length > 63) throw new Error(`DNS label longer than 63 bytes in ${JSON.stringify(name)}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const encoded = Buffer.concat(parts);
  if (encoded.length > 255) throw new Error(`DNS name longer than 255 bytes: ${JSON.stringify(name)}`);
  return encoded;
}

/** One answer record: pointer to the question name, type, class IN, TTL, address. */
function encodeAnswer(type: number, ttl: number, rdata: Buffer): Buffer {
  const record = Buffer.alloc(12 + rdata.length);
  record.writeUInt16BE(POINTER_TO_QUESTION, 0);
  record.writeUInt16BE(type, 2);
  record.writeUInt16BE(CLASS_IN, 4);
  record.writeUInt32BE(ttl, 6);
  record.writeUInt16BE(rdata.length, 10);
  rdata.copy(record, 12);
  return record;
}

/**
 * Builds the response datagram: ID and question copied, QR=1, AA=1, RD copied, RA=0.
 * Answers that would push the reply past 512 bytes are dropped and TC is set; this server has no
 * TCP listener, so a zone that big is a mistake in the test rather than something to serve.
 */
export function buildResponse(query: DnsQuery, reply: Reply, ttl: number): Buffer {
  const opcode = query.flags & 0x7800;
  const rd = query.flags & 0x0100;
  const answers: Buffer[] = [];
  let length = HEADER_LENGTH + query.question.length;
  let truncated = false;
  for (const rdata of reply.rdata) {
    const answer = encodeAnswer(reply.type, ttl, rdata);
    if (length + answer.length > MAX_UDP_REPLY) {
      truncated = true;
      break;
    }
    answers.push(answer);
    length += answer.length;
  }
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt16BE(query.id, 0);
  header.writeUInt16BE(0x8000 | opcode | 0x0400 | (truncated ? 0x0200 : 0) | rd | reply.rcode, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(answers.length, 6); // ANCOUNT; NSCOUNT and ARCOUNT stay 0
  return Buffer.concat([header, query.question, ...answers]);
}

/** IPv4 text to its 4 wire bytes. */
function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split(".").map(Number));
}

/** IPv6 text (with "::" and an optional dotted IPv4 tail) to its 16 wire bytes. */
function ipv6Bytes(address: string): Buffer {
  const toGroups = (part: string): number[] => {
    if (part === "") return [];
    return part.split(":").flatMap((group) => {
      if (!group.includes(".")) return [parseInt(group, 16)];
      const v4 = ipv4Bytes(group);
      return [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    });
  };
  const [head, tail] = address.split("::");
  const headGroups = toGroups(head);
  const tailGroups = tail === undefined ? [] : toGroups(tail);
  const zeros = new Array<number>(8 - headGroups.length - tailGroups.length).fill(0);
  const bytes = Buffer.alloc(16);
  [...headGroups, ...zeros, ...tailGroups].forEach((group, i) => bytes.writeUInt16BE(group, i * 2));
  return bytes;
}

/** Validates and normalises a zone up front, so a typo fails at setup rather than as a strange answer. */
function compileZone(zone: DnsZone): CompiledZone {
  const ttl = zone.ttl ?? 5;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0x7fffffff) throw new Error(`bad DNS TTL: ${ttl}`);
  const records = new Map<string, { a: Buffer[]; aaaa: Buffer[] }>();
  for (const [name, entry] of Object.entries(zone.records ?? {})) {
    encodeName(name); // throws on names that could not be asked for
    const a = (entry.a ?? []).map((address) => {
      if (!net.isIPv4(address)) throw new Error(`not an IPv4 address for ${name}: ${address}`);
      return ipv4Bytes(address);
    });
    const aaaa = (entry.aaaa ?? []).map((address) => {
      if (!net.isIPv6(address)) throw new Error(`not an IPv6 address for ${name}: ${address}`);
      return ipv6Bytes(address);
    });
    records.set(normaliseName(name), { a, aaaa });
  }
  const faults = new Map<string, DnsFault>();
  for (const [name, fault] of Object.entries(zone.faults ?? {})) faults.set(normaliseName(name), fault);
  return { records, faults, otherwise: zone.otherwise ?? "nxdomain", ttl };
}

const FAULT_RCODES: Record<Exclude<DnsFault, "silent">, number> = {
  nxdomain: RCODE.nxdomain,
  servfail: RCODE.servfail,
  refused: RCODE.refused,
  noanswer: RCODE.noerror,
};

/** Decides the reply for a query; undefined means stay silent so the client times out. */
function answerQuery(zone: CompiledZone, query: DnsQuery): Reply | undefined {
  const empty = (rcode: number): Reply => ({ rcode, type: query.qtype, rdata: [] });
  if ((query.flags & 0x7800) !== 0) return empty(RCODE.notimp); // only standard queries (opcode 0)
  const name = normaliseName(query.name);
  const entry = zone.records.get(name);
  const fault = zone.faults.get(name) ?? (entry ? undefined : zone.otherwise);
  if (fault === "silent") return undefined;
  if (fault !== undefined) return empty(FAULT_RCODES[fault]);
  // The name exists: NOERROR, with answers only for IN A / IN AAAA ("no data" for anything else).
  if (!entry || query.qclass !== CLASS_IN) return empty(RCODE.noerror);
  if (query.qtype === TYPE_A) return { rcode: RCODE.noerror, type: TYPE_A, rdata: entry.a };
  if (query.qtype === TYPE_AAAA) return { rcode: RCODE.noerror, type: TYPE_AAAA, rdata: entry.aaaa };
  return empty(RCODE.noerror);
}

class LoopbackDnsServer implements DnsServer {
  readonly queries = new Map<string, number>();
  private dropped = 0;
  private zone: CompiledZone;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly socket: dgram.Socket,
    readonly host: string,
    readonly port: number,
    zone: CompiledZone,
  ) {
    this.zone = zone;
    socket.on("message", (packet, peer) => this.handle(packet, peer));
    // A send failure or ICMP noise must not become an unhandled 'error' that kills the test process.
    socket.on("error", () => {});
  }

  get malformed(): number {
    return this.dropped;
  }

  get address(): string {
    return net.isIPv6(this.host) ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  setZone(zone: DnsZone): void {
    this.zone = compileZone(zone);
  }

  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => this.socket.close(() => resolve()));
    return this.closing;
  }

  private handle(packet: Buffer, peer: dgram.RemoteInfo): void {
    let response: Buffer | undefined;
    try {
      const query = parseQuery(packet);
      if (!query) {
        this.dropped += 1;
        return;
      }
      const name = normaliseName(query.name);
      this.queries.set(name, (this.queries.get(name) ?? 0) + 1);
      const reply = answerQuery(this.zone, query);
      if (reply) response = buildResponse(query, reply, this.zone.ttl);
    } catch {
      // Belt and braces: whatever a datagram contains, the server keeps running.
      this.dropped += 1;
      return;
    }
    if (response && !this.closing) this.socket.send(response, peer.port, peer.address, () => {});
  }
}

/** Starts the server on loopback UDP; port 0 (the default) picks a free port. */
export async function startDnsServer(
  zone: DnsZone,
  options: { host?: "127.0.0.1" | "::1"; port?: number } = {},
): Promise<DnsServer> {
  const host = options.host ?? "127.0.0.1";
  const compiled = compileZone(zone);
  const socket = dgram.createSocket(host === "::1" ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      try {
        socket.close();
      } catch {
        // the socket never bound; there is nothing to release
      }
      reject(error);
    };
    socket.once("error", onError);
    socket.bind(options.port ?? 0, host, () => {
      socket.off("error", onError);
      resolve();
    });
  });
  return new LoopbackDnsServer(socket, host, socket.address().port, compiled);
}
