// The collector's HTTP guard over real HTTP (DESIGN.md "Identity and security"): the API token,
// the Host check against DNS rebinding, the refusals at start, and the security headers on
// every kind of answer. Requests go through node:http, which sends Host and header bytes as given.

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector, type CollectorOptions } from "../../host/collector/collector.js";

const TOKEN = "s3cret-Token_42";
/** Non-ASCII, with a character outside the BMP: 12 characters, 18 UTF-8 bytes. */
const WIDE_TOKEN = "pässwörd-🐈ü";
const PROTECTED = ["/api/top-errors?window=1h", "/api/summary", "/api/codes", "/api/dropped", "/api/events", "/metrics", "/healthz"];

let dir: string;
let collector: Collector | undefined;

beforeAll(() => { dir = mkdtempSync(join(tmpdir(), "catprobe-http-security-")); });
afterEach(async () => {
  await collector?.close();
  collector = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let dbs = 0;
async function start(opts: Partial<CollectorOptions> = {}): Promise<Collector> {
  collector = await startCollector({ http: "127.0.0.1:0", mqttListen: "127.0.0.1:0", db: join(dir, `c${dbs++}.db`), ...opts });
  return collector;
}

interface Answer { status: number; headers: IncomingHttpHeaders; body: string }

/**
 * GET `path` with exactly `headers` (a Host of undefined sends none); header values go out as
 * latin1, one byte a character. An event stream is cut off once its headers arrive.
 */
function get(path: string, headers: Record<string, string | undefined> = {}, base = collector!.httpUrl): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, setHost: false }, (res) => {
      const answer = { status: res.statusCode!, headers: res.headers, body: "" };
      if (res.headers["content-type"] === "text/event-stream") {
        res.destroy();
        return resolve(answer);
      }
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => { answer.body += chunk; });
      res.on("end", () => resolve(answer));
    }).on("error", reject);
    const all = { host: url.host, ...headers };
    for (const [name, value] of Object.entries(all)) if (value !== undefined) req.setHeader(name, value);
    req.end();
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** The header value a client sends for a token: its UTF-8 bytes. */
const utf8 = (token: string) => Buffer.from(token, "utf8").toString("latin1");

function expectSecurityHeaders(a: Answer): void {
  expect(a.headers["content-security-policy"]).toMatch(/^default-src 'self'; script-src 'sha256-[^;]+'; style-src 'sha256-/);
  expect(a.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
  expect(a.headers["content-security-policy"]).not.toContain("unsafe");
  expect(a.headers["x-frame-options"]).toBe("DENY");
  expect(a.headers["x-content-type-options"]).toBe("nosniff");
  expect(a.headers["referrer-policy"]).toBe("no-referrer");
}

describe("without a token (loopback)", () => {
  it("answers every endpoint as before, with the security headers on every kind of answer", async () => {
    await start();
    for (const path of ["/", ...PROTECTED]) {
      const a = await get(path);
      expect(a.status, path).toBe(200);
      expectSecurityHeaders(a);
    }
    for (const [path, status] of [["/nope", 404], ["/api/top-errors?window=nope", 400]] as const) {
      const a = await get(path);
      expect(a.status, path).toBe(status);
      expectSecurityHeaders(a);
    }
  });

  it("answers a request Node's parser refuses with the security headers too", async () => {
    await start();
    const { port } = new URL(collector!.httpUrl);
    const socket = connect(Number(port), "127.0.0.1");
    socket.end("NOT HTTP AT ALL\r\n\r\n");
    let raw = "";
    for await (const chunk of socket) raw += chunk;
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(raw).toContain("x-frame-options: DENY\r\n");
    expect(raw).toContain("content-security-policy: default-src 'self';");
  });
});

describe("with --api-token", () => {
  it("requires the token of every endpoint but the dashboard page, answering 401 with WWW-Authenticate", async () => {
    await start({ apiToken: TOKEN });
    for (const path of [...PROTECTED, "/nope"]) {
      const missing = await get(path);
      expect(missing.status, path).toBe(401);
      expect(missing.headers["www-authenticate"]).toBe('Bearer realm="catprobe"');
      expect(JSON.parse(missing.body)).toEqual({ error: "this collector requires Authorization: Bearer <its --api-token>" });
      expectSecurityHeaders(missing);
      for (const wrong of [bearer(`${TOKEN}x`), bearer(TOKEN.slice(0, -1)), { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }]) {
        const refused = await get(path, wrong);
        expect(refused.status, `${path} ${wrong.authorization}`).toBe(401);
        expect(refused.headers["www-authenticate"]).toMatch(/^Bearer realm="catprobe"/);
      }
      const ok = await get(path, bearer(TOKEN));
      expect(ok.status, path).toBe(path === "/nope" ? 404 : 200);
      expectSecurityHeaders(ok);
    }
    expect((await get("/api/summary", { authorization: `bearer  ${TOKEN}` })).status).toBe(200); // the scheme is case-insensitive
    const page = await get("/");
    expect(page.status).toBe(200);
    expect(page.body).toContain('data-testid="token-form"');
  });

  it("tells a wrong token from a missing one", async () => {
    await start({ apiToken: TOKEN });
    const a = await get("/api/summary", bearer("guess"));
    expect(a.headers["www-authenticate"]).toBe('Bearer realm="catprobe", error="invalid_token"');
    expect(JSON.parse(a.body)).toEqual({ error: "the API token is not this collector's" });
  });

  it("leaves /metrics open with --metrics-public, and nothing else", async () => {
    await start({ apiToken: TOKEN, metricsPublic: true });
    const metrics = await get("/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain("# TYPE");
    expectSecurityHeaders(metrics);
    for (const path of PROTECTED.filter((p) => p !== "/metrics")) expect((await get(path)).status, path).toBe(401);
  });

  it("compares a non-ASCII token as UTF-8 bytes, and answers every guess alike", async () => {
    await start({ apiToken: WIDE_TOKEN });
    expect((await get("/api/summary", bearer(utf8(WIDE_TOKEN)))).status).toBe(200);
    const guesses = [
      "pässwörd-🐈ü".replace("🐈", "xx"), // as many characters as the token, fewer bytes
      utf8(WIDE_TOKEN).slice(0, -1), // a byte short
      `${utf8(WIDE_TOKEN)}\u00ff`, // a byte too many
      `${utf8(WIDE_TOKEN).slice(0, -1)}\u00bd`, // as many bytes, the last one different
      "p\u00e4ssw\u00f6rd-", // the token's start in latin1 bytes, not UTF-8
      "\u00ff".repeat(10_000),
    ];
    for (const guess of guesses) {
      const a = await get("/api/summary", bearer(guess));
      expect(a.status, guess.slice(0, 20)).toBe(401);
      expect(a.headers["www-authenticate"]).toBe('Bearer realm="catprobe", error="invalid_token"');
    }
  });

  it("serves `catprobe top --token-file`, and says what is wrong on a 401", async () => {
    await start({ apiToken: WIDE_TOKEN });
    const file = join(dir, "top-token");
    writeFileSync(file, `${WIDE_TOKEN}\nsecond line\n`);
    const top = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      promisify(execFile)(process.execPath, ["bin/catprobe.js", "top", "--collector", collector!.httpUrl, ...args],
        { env: { ...process.env, CATPROBE_API_TOKEN: "", ...env } })
        .then(({ stdout }) => ({ code: 0, stdout, stderr: "" }), (err: { code: number; stdout: string; stderr: string }) => err);
    expect(await top(["--token-file", file])).toMatchObject({ code: 0, stdout: expect.stringContaining("no results in this window") });
    expect((await top([], { CATPROBE_API_TOKEN: WIDE_TOKEN })).code).toBe(0);
    const missing = await top([]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`the collector at ${collector!.httpUrl} requires its API token: give --token-file FILE, --token T or CATPROBE_API_TOKEN`);
    const wrong = await top(["--token", "nope"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`the collector at ${collector!.httpUrl} refused the API token`);
  }, 30_000);
});

describe("the Host check", () => {
  it("answers 421 to a Host that is not this collector's, before the token and on every path", async () => {
    await start({ apiToken: TOKEN, publicHosts: ["collector.example", "10.9.8.7"] });
    const { port } = new URL(collector!.httpUrl);
    for (const host of ["evil.example", `evil.example:${port}`, "127.0.0.1.evil.example", "collector.example.evil", "localhost@evil", "", undefined]) {
      for (const path of ["/", "/api/summary", "/metrics"]) {
        const a = await get(path, { host, ...bearer(TOKEN) });
        expect(a.status, `${host} ${path}`).toBe(421);
        expect(JSON.parse(a.body).error).toContain("is not a name of this collector (see --public-host)");
        expectSecurityHeaders(a);
      }
    }
    // The port is ignored: only the name tells a rebinding page from this collector.
    for (const host of [`127.0.0.1:${port}`, "127.0.0.1", "127.8.9.10:1", "localhost", "LocalHost.:99", "[::1]:80", "[::1]",
      "collector.example", "Collector.Example:443", "10.9.8.7:8080"]) {
      expect((await get("/api/summary", { host, ...bearer(TOKEN) })).status, host).toBe(200);
    }
  });

  it("takes any address of this machine for a wildcard listen address", async () => {
    const lan = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === "IPv4");
    await start({ apiToken: TOKEN, http: "0.0.0.0:0" });
    const base = collector!.httpUrl.replace("0.0.0.0", "127.0.0.1");
    expect((await get("/api/summary", bearer(TOKEN), base)).status).toBe(200);
    expect((await get("/api/summary", { host: "0.0.0.0", ...bearer(TOKEN) }, base)).status).toBe(200);
    expect((await get("/api/summary", { host: "192.0.2.1", ...bearer(TOKEN) }, base)).status).toBe(421); // TEST-NET-1: nobody's
    if (lan) expect((await get("/api/summary", { host: `${lan.address}:1`, ...bearer(TOKEN) }, base)).status).toBe(200);
  });
});

describe("refusals at start", () => {
  it("refuses a non-loopback --http without a token, naming the flag and the value", async () => {
    for (const http of ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"]) {
      await expect(start({ http }), http).rejects.toThrow(
        `--http ${http} is reachable beyond this machine: give an API token (--api-token-file FILE, --api-token or CATPROBE_API_TOKEN), or listen on loopback`);
    }
    for (const http of ["127.0.0.1:0", "127.1.2.3:0", "[::1]:0", "localhost:0"]) {
      await start({ http });
      await collector!.close();
      collector = undefined;
    }
  });

  it("refuses a token a header cannot carry and a --public-host that is not a name", async () => {
    await expect(start({ apiToken: "" })).rejects.toThrow("--api-token: the token is empty");
    await expect(start({ apiToken: " x" })).rejects.toThrow("--api-token: the token starts or ends with white space");
    await expect(start({ apiToken: "a\nb" })).rejects.toThrow("--api-token: the token contains a control character");
    await expect(start({ publicHosts: ["collector.example:8080"] })).rejects.toThrow(
      "--public-host collector.example:8080: expected a DNS name or an IP address, without a port");
  });
});
