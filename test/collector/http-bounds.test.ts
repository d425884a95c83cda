// Query bounds of the collector's HTTP API over real HTTP: from/to are decimal epoch ms, a window
// spans at most 400 days, and no answer has a negative `from`. A bad query is a 400 with a reason.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";

const DAY_MS = 86_400_000;
let collector: Collector;

beforeAll(async () => {
  collector = await startCollector({ db: join(mkdtempSync(join(tmpdir(), "catprobe-bounds-")), "c.db"), http: "127.0.0.1:0", mqttListen: "127.0.0.1:0" });
});
afterAll(() => collector.close());

async function query(path: string, q: string): Promise<{ status: number; body: { error?: string; from?: number; to?: number } }> {
  const res = await fetch(`${collector.httpUrl}${path}?${q}`);
  return { status: res.status, body: await res.json() };
}

describe("query bounds", () => {
  for (const path of ["/api/top-errors", "/api/summary"]) {
    it(`${path}: a window longer than 400 days is a 400, never a negative from`, async () => {
      expect(await query(path, "window=999999d")).toEqual({ status: 400, body: { error: 'a window spans at most 400 days (got "999999d")' } });
      expect((await query(path, "window=401d")).status).toBe(400);
      expect((await query(path, "window=9600h")).status).toBe(200);
      const longest = await query(path, "window=400d");
      expect(longest.status).toBe(200);
      expect(longest.body.to! - longest.body.from!).toBe(400 * DAY_MS);
      expect(longest.body.from).toBeGreaterThan(0);
    });
  }

  it.each(["from=0x10", "from=1e3", "from=%205", "from=", "from=-5", "from=1.5", "from=10&to=0x20", "to=1e13"])(
    "%s is a 400: only decimal digits", async (q) => {
      const r = await query("/api/top-errors", q);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(/^from\/to must be epoch milliseconds in decimal digits with from < to \(got from=/);
    });

  it("answers decimal from/to as given, up to 400 days apart", async () => {
    expect((await query("/api/top-errors", "from=10&to=20")).body).toMatchObject({ from: 10, to: 20 });
    const to = Date.now();
    expect((await query("/api/top-errors", `from=${to - 400 * DAY_MS}&to=${to}`)).status).toBe(200);
    expect(await query("/api/top-errors", `from=${to - 400 * DAY_MS - 1}&to=${to}`)).toEqual({
      status: 400, body: { error: `a window spans at most 400 days (got from=${to - 400 * DAY_MS - 1} to=${to})` },
    });
    expect((await query("/api/top-errors", "from=0")).body.error).toBe("a window spans at most 400 days (got from=0 to=now)");
  });
});
