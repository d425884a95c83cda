import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startBlackhole, type Blackhole } from "../../simulator/servers/blackhole.js";

type Attempt = "connected" | "pending" | string;

/** One connection attempt: "connected", "pending" if nothing happened within waitMs, or the error code. */
function attempt(host: string, port: number, waitMs: number): Promise<Attempt> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (result: Attempt): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish("pending"), waitMs);
    socket.once("connect", () => finish("connected"));
    socket.once("error", (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
  });
}

describe("blackhole listener", () => {
  let blackhole: Blackhole | undefined;

  afterEach(async () => {
    await blackhole?.close();
    blackhole = undefined;
  });

  it("leaves a new connection attempt pending (connect timeout)", { timeout: 10_000 }, async () => {
    blackhole = await startBlackhole();
    expect(blackhole.host).toBe("127.0.0.1");
    expect(blackhole.port).toBeGreaterThan(0);
    expect(await attempt(blackhole.host, blackhole.port, 500)).toBe("pending");
  });

  it("refuses connections once closed", { timeout: 10_000 }, async () => {
    const closed = await startBlackhole();
    await closed.close();
    await closed.close(); // idempotent
    expect(await attempt(closed.host, closed.port, 2_000)).toBe("ECONNREFUSED");
  });

  it("works on IPv6 loopback", { timeout: 10_000 }, async () => {
    blackhole = await startBlackhole({ host: "::1" });
    expect(await attempt("::1", blackhole.port, 500)).toBe("pending");
  });
});
