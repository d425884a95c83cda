import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Spool } from "../../host/mqtt/spool.js";

const file = () => join(mkdtempSync(join(tmpdir(), "catprobe-spool-")), "spool.db");

describe("spool", () => {
  it("gives entries back oldest first and forgets them once acknowledged", () => {
    const spool = new Spool(file());
    for (let i = 0; i < 5; i++) spool.append("t", `r${i}`);
    expect(spool.next(0, 3).map((e) => e.payload)).toEqual(["r0", "r1", "r2"]);
    const [first, second] = spool.next(0, 2);
    spool.ack(second.seq);
    spool.ack(second.seq); // twice is harmless
    expect(spool.next(0, 10).map((e) => e.payload)).toEqual(["r0", "r2", "r3", "r4"]);
    expect(spool.next(first.seq, 10)[0].payload).toBe("r2");
    expect(spool.size).toBe(4);
    expect(spool.bytes).toBe(8);
    spool.close();
  });

  it("keeps what it holds across a reopen, as after a crash", () => {
    const path = file();
    const a = new Spool(path);
    for (let i = 0; i < 100; i++) a.append("catprobe/v1/results/p/t", JSON.stringify({ i }));
    a.ack(a.next(0, 1)[0].seq);
    a.close();
    const b = new Spool(path);
    expect(b.size).toBe(99);
    expect(JSON.parse(b.next(0, 1)[0].payload)).toEqual({ i: 1 });
    b.close();
  });

  it("is bounded in bytes: the oldest are dropped and counted, and the count survives", () => {
    const path = file();
    const spool = new Spool(path, 1000);
    for (let i = 0; i < 30; i++) spool.append("t", "x".repeat(99) + (i % 10));
    expect(spool.bytes).toBeLessThanOrEqual(1000);
    expect(spool.size).toBe(10);
    expect(spool.dropped).toBe(20);
    expect(spool.next(0, 1)[0].payload.endsWith("0")).toBe(true); // entries 20..29 remain
    spool.close();
    const again = new Spool(path, 1000);
    expect(again.dropped).toBe(20);
    expect(() => again.append("t", "y".repeat(1001))).toThrow(/cannot fit a 1000-byte spool/);
    again.close();
  });
});
