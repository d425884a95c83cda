// Delivers the outbox (alert-store.ts) to the webhooks: per webhook one POST at a time, oldest
// first (a receiver sees an alert's firing before its resolved), retried with exponential
// back-off up to a bounded number of attempts; every failure counted and logged.
//
// A notification is marked sent only after its webhook answered 2xx, and what is not marked is
// sent after a restart. So none is lost, and none is sent twice except in one window: the
// webhook took the POST, but the collector died (or the answer was lost: a timeout, a cut
// connection) before the mark was written; then that one notification goes again. Every
// attempt of a notification carries the same `Idempotency-Key` header, its outbox id, for a
// receiver that can tell.

import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AlertStore, OutboxEntry } from "./alert-store.js";

export interface Delivery {
  attempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number;
}

export interface DeliveryStats {
  sent: number;
  /** failed attempts (each is retried until the attempts run out) */
  failures: number;
  /** notifications given up after their last attempt */
  gaveUp: number;
  /** notifications dropped from a full outbox */
  dropped: number;
}

/** A webhook waits at most this long between looks at its outbox, whatever wakes it. */
const IDLE_POLL_MS = 5000;

/** POSTs `body`; resolves with the HTTP status, rejects on a network error or the timeout. */
export function post(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const request = u.protocol === "https:" ? httpsRequest : httpRequest;
    const req = request(u, {
      method: "POST", agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close", ...headers },
    }, (res) => {
      clearTimeout(timer);
      res.resume(); // the answer's body is not needed; read so the socket closes
      resolve(res.statusCode ?? 0);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** A webhook's URL fit for a log line: without the password of a user:password@ in it. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

/** The wait before attempt `attempt + 1` after `attempt` failed ones: back-off × 2^(attempt−1), capped. */
export function backoff(delivery: Delivery, attempt: number): number {
  return Math.min(delivery.maxBackoffMs, delivery.backoffMs * 2 ** Math.min(30, attempt - 1));
}

export class WebhookSender {
  private closed = false;
  private readonly wakers = new Map<string, () => void>();
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly store: AlertStore,
    private readonly webhooks: string[],
    private readonly delivery: Delivery,
    private readonly stats: DeliveryStats,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
    /** whether this collector may send now (it holds the engine's lease) */
    private readonly active: () => boolean = () => true,
  ) {}

  start(): void {
    for (const webhook of this.webhooks) this.loops.push(this.loop(webhook));
  }

  /** New notifications are waiting: every webhook looks at once. */
  kick(): void {
    for (const wake of this.wakers.values()) wake();
  }

  /** Waits for POSTs in flight (each bounded by the timeout), then stops. */
  async close(): Promise<void> {
    this.closed = true;
    this.kick();
    await Promise.all(this.loops);
  }

  private sleep(webhook: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakers.set(webhook, done);
    });
  }

  private async loop(webhook: string): Promise<void> {
    while (!this.closed) {
      let head: OutboxEntry | undefined;
      try {
        head = await this.store.head(webhook);
      } catch (err) {
        this.log(`alerts: cannot read the outbox: ${(err as Error).message}`);
        await this.sleep(webhook, IDLE_POLL_MS);
        continue;
      }
      if (this.closed) break;
      if (!head || !this.active()) {
        await this.sleep(webhook, IDLE_POLL_MS);
        continue;
      }
      const wait = head.nextAt - this.now();
      if (wait > 0) {
        await this.sleep(webhook, Math.min(wait, IDLE_POLL_MS));
        continue;
      }
      await this.attempt(head);
    }
  }

  private async attempt(entry: OutboxEntry): Promise<void> {
    const attempt = entry.attempts + 1;
    let problem: string;
    try {
      const status = await post(entry.webhook, entry.body, { "user-agent": "catprobe-collector", "idempotency-key": entry.id }, this.delivery.timeoutMs);
      if (status >= 200 && status < 300) {
        try {
          await this.store.markSent(entry.id, this.now());
          this.stats.sent++;
        } catch (err) {
          // Not marked: it would go again. Said so, since that is the one way a notification repeats.
          this.log(`alerts: ${shownUrl(entry.webhook)} took notification ${entry.id}, but marking it sent failed (it may be sent again): ${(err as Error).message}`);
        }
        return;
      }
      problem = `HTTP ${status}`;
    } catch (err) {
      problem = (err as Error).message;
    }
    this.stats.failures++;
    try {
      if (attempt >= this.delivery.attempts) {
        this.stats.gaveUp++;
        this.log(`alerts: ${shownUrl(entry.webhook)}: notification ${entry.id} (${entry.rule}, ${entry.status}) failed: ${problem}; ` +
          `gave up after ${attempt} attempts`);
        await this.store.markFailed(entry.id, attempt, this.now(), problem);
      } else {
        const delay = backoff(this.delivery, attempt);
        this.log(`alerts: ${shownUrl(entry.webhook)}: notification ${entry.id} (${entry.rule}, ${entry.status}) attempt ${attempt} ` +
          `of ${this.delivery.attempts} failed: ${problem}; next in ${delay} ms`);
        await this.store.markRetry(entry.id, attempt, this.now() + delay, problem);
      }
    } catch (err) {
      this.log(`alerts: cannot update the outbox: ${(err as Error).message}`);
      await this.sleep(entry.webhook, IDLE_POLL_MS);
    }
  }
}
