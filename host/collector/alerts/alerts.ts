// The alert engine of `catprobe collector --alerts FILE` (DESIGN.md "Alerts and Prometheus"):
// every evaluation interval each rule is evaluated (evaluate.ts) against the stored results and
// probe states, and compared with the persisted state of its alerts (alert-store.ts):
//  - a condition that starts to hold fires its alert once (one notification),
//  - while it holds, the alert is sent again every repeatInterval,
//  - when it stops holding, the alert resolves once.
// The state change and its notifications (one per webhook, Alertmanager's format) are written
// in one transaction; webhook-sender.ts delivers them. A rule whose evaluation fails changes
// nothing (its alerts neither fire nor resolve on an error). Timers are unref'd.

import { randomBytes } from "node:crypto";
import { Counter, Gauge, type Registry } from "prom-client";
import type { SqlDb } from "../db/sql.js";
import { AlertStore, type AlertState, type OutboxEntry } from "./alert-store.js";
import { evaluateRule, type AlertSource, type Instance } from "./evaluate.js";
import { notifications, type AlertView } from "./notifications.js";
import { leaseMs, type Rules } from "./rules.js";
import { SqlAlertSource } from "./source.js";
import { WebhookSender, shownUrl, type DeliveryStats } from "./webhook-sender.js";

export interface AlertEngineOptions {
  rules: Rules;
  db: SqlDb;
  /** what the rules read (default: the collector's tables in `db`) */
  source?: AlertSource;
  /** base of externalURL and generatorURL, unless the rules file gives one */
  externalURL?: string;
  log?: (line: string) => void;
  now?: () => number;
  /** overrides the file's evaluationInterval */
  evaluationIntervalMs?: number;
}

/** How long resolved alerts stay listed at GET /api/alerts, and sent notifications in the outbox. */
export const RECENT_MS = 24 * 3_600_000;

export interface AlertsView {
  firing: ReturnType<typeof toJson>[];
  resolved: ReturnType<typeof toJson>[];
  delivery: DeliveryStats & { pending: number };
  evaluatedAt: number | null;
  evaluationIntervalMs: number;
}

function toJson(s: AlertState) {
  return {
    rule: s.rule, status: s.status, fingerprint: s.fingerprint, labels: s.labels, annotations: s.annotations,
    startsAt: s.startsAt, endsAt: s.endsAt, lastNotified: s.lastNotified,
  };
}

export class AlertEngine {
  readonly stats: DeliveryStats = { sent: 0, failures: 0, gaveUp: 0, dropped: 0 };
  private readonly store: AlertStore;
  private readonly source: AlertSource;
  private readonly sender: WebhookSender;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private readonly externalURL: string;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private serial = 0;
  private evaluatedAt: number | null = null;
  private lastPrune = 0;
  /** on PostgreSQL, shared by several collectors: one of them evaluates and sends, by a lease */
  private readonly owner = randomBytes(8).toString("hex");
  private leader: boolean;
  private leaseUntil = 0;
  private checkedWebhooks = false;

  private constructor(private readonly opts: AlertEngineOptions) {
    this.store = new AlertStore(opts.db);
    this.source = opts.source ?? new SqlAlertSource(opts.db);
    this.log = opts.log ?? (() => {});
    this.now = opts.now ?? Date.now;
    this.externalURL = opts.rules.externalURL ?? opts.externalURL ?? "http://127.0.0.1:8080";
    this.intervalMs = opts.evaluationIntervalMs ?? opts.rules.evaluationIntervalMs;
    this.leader = opts.db.dialect !== "postgres";
    // On PostgreSQL no POST starts that could still be in flight when the lease ends.
    this.sender = new WebhookSender(this.store, opts.rules.webhooks, opts.rules.delivery, this.stats, this.log, this.now,
      () => this.leader && (opts.db.dialect !== "postgres" || this.now() < this.leaseUntil - opts.rules.delivery.timeoutMs));
  }

  /** How long a lease lasts unrenewed: a collector that died is replaced after this long. */
  private get leaseMs(): number {
    return leaseMs(this.intervalMs);
  }

  /**
   * SQLite: one collector per file, always the leader. PostgreSQL: takes or renews the lease;
   * only its holder evaluates and sends, so collectors sharing the database notify once.
   */
  private async lead(now: number): Promise<boolean> {
    if (this.opts.db.dialect !== "postgres") return true;
    const was = this.leader;
    this.leader = await this.store.lease(this.owner, now, this.leaseMs);
    // By this collector's clock, from before the database's: the lease ends no earlier than this.
    if (this.leader) this.leaseUntil = now + this.leaseMs;
    if (this.leader !== was) {
      this.log(this.leader ? "alerts: this collector evaluates the rules and sends the notifications (it holds the lease)"
        : "alerts: another collector holds the alert lease; this one stands by");
      if (this.leader) this.sender.kick();
    }
    return this.leader;
  }

  /**
   * Creates the tables, hands notifications still due from before a restart to the sender,
   * and evaluates every interval from now on (the first evaluation at once).
   */
  static async start(opts: AlertEngineOptions): Promise<AlertEngine> {
    const engine = new AlertEngine(opts);
    await engine.store.init();
    const pending = await engine.store.pendingCount();
    engine.log(`alerts: ${opts.rules.rules.length} rule(s) from ${opts.rules.file}, evaluated every ${engine.intervalMs} ms; ` +
      `notifications to ${opts.rules.webhooks.map(shownUrl).join(", ")}${pending ? `; ${pending} waiting from before` : ""}`);
    engine.sender.start();
    engine.timer = setInterval(() => void engine.tick(), engine.intervalMs).unref();
    void engine.tick();
    return engine;
  }

  /** Notifications queued for a webhook the rules file no longer names are given up, and said so. */
  private async abandonUnknownWebhooks(): Promise<void> {
    const known = new Set(this.opts.rules.webhooks);
    for (const webhook of await this.store.pendingWebhooks()) {
      if (known.has(webhook)) continue;
      let n = 0;
      for (let e = await this.store.head(webhook); e; e = await this.store.head(webhook), n++) {
        await this.store.markFailed(e.id, e.attempts, this.now(), "the webhook is no longer in the rules file");
      }
      this.stats.dropped += n;
      this.log(`alerts: ${n} notification(s) queued for ${shownUrl(webhook)} dropped: it is no longer in ${this.opts.rules.file}`);
    }
  }

  /** One evaluation, unless the previous one is still running. */
  private tick(): Promise<void> {
    this.running ??= this.evaluateNow().catch((err: Error) => this.log(`alerts: evaluation failed: ${err.message}`))
      .finally(() => { this.running = undefined; });
    return this.running;
  }

  /** Evaluates every rule now, unless an evaluation is running (then waits for that one). */
  evaluate(): Promise<void> {
    return this.tick();
  }

  private async evaluateNow(): Promise<void> {
    const now = this.now();
    if (!(await this.lead(now))) return;
    if (!this.checkedWebhooks) {
      // by the collector that sends: on a shared database another's rules may name other webhooks
      await this.abandonUnknownWebhooks();
      this.checkedWebhooks = true;
    }
    const firing = await this.store.firing();
    const byRule = new Map<string, AlertState[]>();
    for (const s of firing) {
      const list = byRule.get(s.rule);
      if (list) list.push(s);
      else byRule.set(s.rule, [s]);
    }
    const states: AlertState[] = [];
    const entries: OutboxEntry[] = [];
    const ruleNames = new Set(this.opts.rules.rules.map((r) => r.name));
    for (const rule of this.opts.rules.rules) {
      let holding: Instance[];
      try {
        holding = await evaluateRule(rule, this.source, now);
      } catch (err) {
        this.log(`alerts: rule "${rule.name}": cannot evaluate: ${(err as Error).message}`);
        continue; // neither fires nor resolves on an error
      }
      const { due, quiet } = this.transitions(byRule.get(rule.name) ?? [], holding, rule.repeatIntervalMs, rule.name, now);
      states.push(...due, ...quiet);
      entries.push(...this.queue(rule.name, due, now));
    }
    // Alerts of rules no longer in the file resolve.
    for (const [name, alerts] of byRule) {
      if (ruleNames.has(name)) continue;
      const { due } = this.transitions(alerts, [], Infinity, name, now);
      states.push(...due);
      entries.push(...this.queue(name, due, now));
    }
    // Fenced on PostgreSQL: written only while this collector still holds the lease.
    const dropped = await this.store.commit(states, entries, this.opts.rules.delivery.maxPending, now,
      this.opts.db.dialect === "postgres" ? this.owner : undefined);
    if (!dropped) {
      this.leader = false;
      this.leaseUntil = 0;
      this.log("alerts: the alert lease ran out during this evaluation; its changes are not written (another collector may hold it)");
      return;
    }
    if (dropped.length) {
      this.stats.dropped += dropped.length;
      this.log(`alerts: the outbox holds more than ${this.opts.rules.delivery.maxPending} notifications: ` +
        `dropped the ${dropped.length} oldest (${dropped.map((d) => `${d.rule} ${d.status} to ${shownUrl(d.webhook)}`).slice(0, 3).join("; ")}…)`);
    }
    if (entries.length) this.sender.kick();
    this.evaluatedAt = now;
    if (now - this.lastPrune > 3_600_000) {
      this.lastPrune = now;
      await this.store.prune(now - RECENT_MS);
    }
  }

  /**
   * The states that change at `now`: `due` are notified (new firing, repeats, resolutions),
   * `quiet` only kept (a firing alert's figures changed), so that the API shows them current.
   */
  private transitions(before: AlertState[], holding: Instance[], repeatMs: number, rule: string, now: number) {
    const out: AlertState[] = [];
    const quiet: AlertState[] = [];
    const known = new Map(before.map((s) => [s.fingerprint, s]));
    for (const i of holding) {
      const s = known.get(i.fingerprint);
      if (!s) {
        out.push({ ...i, rule, status: "firing", startsAt: now, endsAt: null, lastNotified: now });
      } else if (now - s.lastNotified >= repeatMs) {
        out.push({ ...s, annotations: i.annotations, lastNotified: now });
      } else if (JSON.stringify(i.annotations) !== JSON.stringify(s.annotations)) {
        quiet.push({ ...s, annotations: i.annotations });
      }
    }
    const holds = new Set(holding.map((i) => i.fingerprint));
    for (const s of before) {
      if (!holds.has(s.fingerprint)) out.push({ ...s, status: "resolved", endsAt: now, lastNotified: now });
    }
    return { due: out, quiet };
  }

  /** The outbox entries of one rule's changed alerts: its notifications, each to every webhook. */
  private queue(rule: string, changed: AlertState[], now: number): OutboxEntry[] {
    if (!changed.length) return [];
    const views: AlertView[] = changed.map((s) => ({
      status: s.status, labels: s.labels, annotations: s.annotations, startsAt: s.startsAt, endsAt: s.endsAt, fingerprint: s.fingerprint,
    }));
    const out: OutboxEntry[] = [];
    for (const payload of notifications(rule, views, this.opts.rules.receiver, this.externalURL)) {
      const body = JSON.stringify(payload);
      for (const webhook of this.opts.rules.webhooks) {
        // Sortable within a millisecond; random so that ids never repeat across restarts.
        const id = `${String(now).padStart(15, "0")}-${String(this.serial++).padStart(9, "0")}-${randomBytes(4).toString("hex")}`;
        out.push({ id, webhook, rule, status: payload.status, body, createdAt: now, attempts: 0, nextAt: now });
      }
    }
    return out;
  }

  /** What GET /api/alerts answers: firing alerts, those resolved in the last day, delivery counts. */
  async view(): Promise<AlertsView> {
    const all = await this.store.list(this.now() - RECENT_MS);
    return {
      firing: all.filter((a) => a.status === "firing").map(toJson),
      resolved: all.filter((a) => a.status === "resolved").map(toJson),
      delivery: { ...this.stats, pending: await this.store.pendingCount() },
      evaluatedAt: this.evaluatedAt,
      evaluationIntervalMs: this.intervalMs,
    };
  }

  /**
   * `catprobe_alert_notifications_total{result}` (sent, failed_attempt, gave_up, dropped) and
   * `catprobe_alerts_firing{rule}` on the collector's /metrics.
   */
  registerMetrics(registry: Registry): void {
    const stats = this.stats;
    const results = { sent: "sent", failures: "failed_attempt", gaveUp: "gave_up", dropped: "dropped" } as const;
    const reported: DeliveryStats = { sent: 0, failures: 0, gaveUp: 0, dropped: 0 };
    const counter = new Counter({
      name: "catprobe_alert_notifications_total", help: "Alert notifications by outcome: sent (2xx), failed_attempt (each failed POST), gave_up (attempts exhausted), dropped (outbox full)",
      labelNames: ["result"], registers: [registry],
      collect() {
        for (const [key, result] of Object.entries(results) as [keyof DeliveryStats, string][]) {
          counter.inc({ result }, stats[key] - reported[key]);
          reported[key] = stats[key];
        }
      },
    });
    for (const result of Object.values(results)) counter.inc({ result }, 0);
    const store = this.store;
    const names = this.opts.rules.rules.map((r) => r.name);
    const gauge = new Gauge({
      name: "catprobe_alerts_firing", help: "Alert instances firing, by rule", labelNames: ["rule"], registers: [registry],
      async collect() {
        const firing = await store.firing();
        for (const rule of names) gauge.set({ rule }, firing.filter((a) => a.rule === rule).length);
      },
    });
  }

  /** Stops evaluating, lets the running evaluation and the POSTs in flight finish. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.sender.close();
    if (this.opts.db.dialect === "postgres" && this.leader) await this.store.release(this.owner).catch(() => {});
  }
}

export const startAlerts = (opts: AlertEngineOptions) => AlertEngine.start(opts);
