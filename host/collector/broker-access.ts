// Who may do what on the embedded broker (DESIGN.md "Identity and security"). Authorization is
// always on: a probe publishes only its own results, status and dropped topics and subscribes
// only to its own config topic; only the collector's own in-process client reads results,
// publishes configuration, takes a `catprobe-collector-*` client id or reads `$SYS`.
// Identity: with a password file, username = probe id and its password; without one,
// anonymous clients on loopback, identified by the client id `catprobe-probe-{id}`. A probe
// must connect with its own client id in both cases, so no one can take over another's session.

import type { Client, PublishPacket, Subscription } from "aedes";
import { printable } from "../text/printable.js";
import { isLoopback } from "./address.js";
import { COLLECTOR_CLIENT_PREFIX, ID_PATTERN, ID_RULE, probeClientId, probeOfClientId } from "../wire/id.js";
import { configTopic, droppedTopic, parseResultTopic, statusTopic } from "../wire/topics.js";
import type { PasswordFile } from "./passwords.js";

export const DENY_REASONS = ["credentials", "client_id", "not_loopback", "publish", "subscribe"] as const;
export type DenyReason = (typeof DENY_REASONS)[number];

/** Where a connection comes from: the collector's own in-process client, or a peer address. */
export type Origin = { local: true } | { local: false; address: string };

type Identity = { role: "collector" } | { role: "probe"; probe: string };

export interface AccessOptions {
  /** probes log in with a password from this file; null: anonymous clients on loopback only */
  passwords: PasswordFile | null;
  /** the origin of an aedes connection (its `conn`) */
  originOf: (conn: unknown) => Origin;
  /** hears of every denial: counted and logged by the collector */
  onDeny: (reason: DenyReason, detail: string) => void;
}

/** MQTT 3.1.1 CONNACK return codes a refusal answers with. */
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

class Refusal extends Error {
  constructor(readonly returnCode: 2 | 4 | 5, readonly reason: DenyReason, message: string) {
    super(message);
  }
}

/** A user of the password file that can be a probe id (it becomes topic levels). */
export function probeUserProblem(user: string): string | null {
  return ID_PATTERN.test(user) ? null : `is not a probe id (${ID_RULE})`;
}

export class BrokerAccess {
  private readonly identities = new WeakMap<Client, Identity>();

  constructor(private readonly opts: AccessOptions) {}

  /** aedes' authenticate hook: decides who the client is, or refuses the connection. */
  readonly authenticate = (client: Client, username: string | undefined, password: Buffer | undefined,
    done: (err: (Error & { returnCode: number }) | null, ok: boolean | null) => void): void => {
    this.identify(client, username, password).then(
      (identity) => {
        this.identities.set(client, identity);
        done(null, true);
      },
      (err: unknown) => {
        const refusal = err instanceof Refusal ? err : new Refusal(NOT_AUTHORIZED, "credentials", String(err));
        this.deny(refusal.reason, `client ${client.id}: ${refusal.message}`);
        done(refusal, false);
      },
    );
  };

  /** aedes' authorizePublish hook (also for a client's last will, when it is sent). */
  readonly authorizePublish = (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void => {
    const who = client && this.identities.get(client);
    if (who?.role === "collector") return done(null);
    if (who?.role === "probe" && mayPublish(who.probe, packet.topic)) return done(null);
    this.deny("publish", `client ${client?.id ?? "?"}: publish to ${packet.topic}`);
    done(new Error(`not authorized to publish to ${packet.topic}`));
  };

  /** aedes' authorizeSubscribe hook: a refused filter gets return code 128 in the SUBACK. */
  readonly authorizeSubscribe = (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void => {
    const who = this.identities.get(client);
    if (who?.role === "collector" || (who?.role === "probe" && sub.topic === configTopic(who.probe))) return done(null, sub);
    this.deny("subscribe", `client ${client.id}: subscribe to ${sub.topic}`);
    done(null, null);
  };

  private async identify(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Identity> {
    const origin = this.opts.originOf(client.conn);
    if (origin.local) return { role: "collector" };
    if (client.id.startsWith(COLLECTOR_CLIENT_PREFIX)) {
      throw new Refusal(IDENTIFIER_REJECTED, "client_id", "the client id prefix catprobe-collector- is the collector's own");
    }
    const { passwords } = this.opts;
    if (!passwords) {
      if (!isLoopback(origin.address)) throw new Refusal(NOT_AUTHORIZED, "not_loopback", `from ${origin.address}: anonymous clients must be on loopback`);
      if (username !== undefined || password !== undefined) {
        throw new Refusal(BAD_USERNAME_OR_PASSWORD, "credentials", "sent credentials, but this broker has no password file (--passwords) to check them");
      }
      const probe = probeOfClientId(client.id);
      if (!probe) throw new Refusal(IDENTIFIER_REJECTED, "client_id", `the client id must be ${probeClientId("{probe id}")}`);
      return { role: "probe", probe };
    }
    if (username === undefined || password === undefined) {
      throw new Refusal(BAD_USERNAME_OR_PASSWORD, "credentials", "no username or password (this broker requires both)");
    }
    if (!(await passwords.verify(username, password))) {
      throw new Refusal(BAD_USERNAME_OR_PASSWORD, "credentials", `wrong password or unknown user ${username}`);
    }
    if (client.id !== probeClientId(username)) {
      throw new Refusal(IDENTIFIER_REJECTED, "client_id", `user ${username} must connect as ${probeClientId(username)}`);
    }
    return { role: "probe", probe: username };
  }

  private deny(reason: DenyReason, detail: string): void {
    this.opts.onDeny(reason, printable(detail));
  }
}

function mayPublish(probe: string, topic: string): boolean {
  return parseResultTopic(topic)?.probe === probe || topic === statusTopic(probe) || topic === droppedTopic(probe);
}
