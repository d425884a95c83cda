// A webhook receiver for alert tests: a real HTTP server on loopback that keeps every POST it
// took (the parsed Alertmanager payload, its Idempotency-Key, when it came), and can be told to
// answer an error status. It lives in the test process; the collector under test may be a
// child process (test/collector/alerts-restart.test.ts), so that killing it leaves the receiver.

import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { WebhookPayload } from "../../host/collector/alerts/notifications.js";

export interface Received {
  at: number;
  key: string | undefined;
  body: WebhookPayload;
}

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** answered to every POST while set (after the body is read); 200 when undefined */
  failWith: number | undefined;
  /** POSTs answered with an error status */
  refused = 0;

  private constructor(private readonly server: Server, readonly port: number, private readonly onPost?: (r: Received) => void) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Listens on `port` (0: a free one). */
  static async start(port = 0, onPost?: (r: Received) => void): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (receiver!.failWith !== undefined) {
          receiver!.refused++;
          res.writeHead(receiver!.failWith).end("not now");
          return;
        }
        const r: Received = { at: Date.now(), key: req.headers["idempotency-key"] as string | undefined,
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")) };
        receiver!.received.push(r);
        receiver!.onPost?.(r);
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      });
    });
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    receiver = new WebhookReceiver(server, (server.address() as AddressInfo).port, onPost);
    return receiver;
  }

  /** Alerts received (one per alert of each payload), in order. */
  alerts() {
    return this.received.flatMap((r) => r.body.alerts.map((a) => ({ ...a, at: r.at, key: r.key })));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
