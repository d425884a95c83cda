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

  describe("its byte bound is exact in UTF-8 bytes, whatever the language", () => {
    // 3 bytes a character in UTF-8, 1 in SQLite's length(): 900 bytes, 300 characters.
    const payload = (i: number) => JSON.stringify({ i: i % 10, label: "站点".repeat(148) });
    const size = Buffer.byteLength(payload(0));

    it("across append, ack and reopen", () => {
      const path = file();
      const spool = new Spool(path);
      for (let i = 0; i < 40; i++) spool.append("t", payload(i));
      for (const e of spool.next(0, 15)) spool.ack(e.seq);
      expect(spool.bytes).toBe(25 * size);
      spool.close();
      const again = new Spool(path);
      expect(again.bytes).toBe(25 * size);
      expect(again.size).toBe(25);
      again.close();
    });

    it("keeps every result that fits, and no more, after results were delivered", () => {
      const bound = 150_000;
      const fit = Math.floor(bound / size);
      const spool = new Spool(file(), bound);
      // delivered ones first: a byte count that drifted on ack would shrink the room
      for (let i = 0; i < 500; i++) {
        spool.append("t", payload(i));
        spool.ack(spool.next(0, 1)[0].seq);
      }
      for (let i = 0; i < fit + 20; i++) spool.append("t", payload(i));
      expect(spool.size).toBe(fit);
      expect(spool.bytes).toBe(fit * size);
      expect(spool.dropped).toBe(20);
      spool.close();
    });
  });
});
