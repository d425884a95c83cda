// The exporter's small pure parts: Go's number format, Go's %q, blackbox's IP hash and its
// timeout rule, the target parser.

import { describe, expect, it } from "vitest";
import { goFloat } from "../../host/exporter/go-float.js";
import { goQuote } from "../../host/exporter/go-quote.js";
import type { ResultRecord } from "../../host/wire/record.js";
import { ipHash, probeFamilies, tlsVersionName } from "../../host/exporter/probe-metrics.js";
import { parseTarget } from "../../host/exporter/target.js";
import { probeBudgetMs } from "../../host/exporter/timeout.js";

describe("goFloat: strconv.FormatFloat(v, 'g', -1, 64)", () => {
  it.each([
    [4, "4"], [0, "0"], [-1, "-1"], [1, "1"], [120, "120"], [0.5, "0.5"], [29.5, "29.5"],
    [0.000867243, "0.000867243"], [1.6474e-05, "1.6474e-05"], [3668918509, "3.668918509e+09"],
    [1798771094, "1.798771094e+09"], [-62135596800, "-6.21355968e+10"], [1e6, "1e+06"], [123456, "123456"],
    [1234567, "1.234567e+06"], [100000, "100000"], [0.0001, "0.0001"], [1e-5, "1e-05"], [1e21, "1e+21"], [1e100, "1e+100"],
    [NaN, "NaN"], [Infinity, "+Inf"], [-Infinity, "-Inf"],
  ])("%s → %s", (v, text) => expect(goFloat(v)).toBe(text));
});

describe("goQuote: Go's %q", () => {
  it.each([
    ["nope", '"nope"'], ['a"b\\c', '"a\\"b\\\\c"'], ["模块", '"模块"'], ["\u0001\n\t\u007f", '"\\x01\\n\\t\\x7f"'], ["\u2028", '"\\u2028"'],
  ])("%j", (text, quoted) => expect(goQuote(text)).toBe(quoted));
});

describe("blackbox's figures", () => {
  it("durations in seconds without float noise", () => {
    const record = { ok: true, code: null, step: null, address: "127.0.0.1", timings: { totalMs: 9.89, dnsMs: 0.07 } } as unknown as ResultRecord;
    const families = probeFamilies(record);
    expect(families.find((f) => f.name === "probe_duration_seconds")!.samples[0].value).toBe(0.00989);
    expect(families.find((f) => f.name === "probe_dns_lookup_time_seconds")!.samples[0].value).toBe(0.00007);
  });

  it("ipHash: FNV-1a of the address bytes", () => {
    expect(ipHash("127.0.0.1")).toBe(3668918509); // what blackbox 0.23 reports for 127.0.0.1
    expect(ipHash("::1")).toBe(ipHash("0:0:0:0:0:0:0:1"));
    expect(ipHash("::ffff:127.0.0.1")).toBe(ipHash("::ffff:7f00:1"));
  });

  it("TLS versions as Go names them", () => {
    expect(tlsVersionName("TLSv1.3")).toBe("TLS 1.3");
    expect(tlsVersionName("TLSv1")).toBe("TLS 1.0");
  });

  it("the probe's budget: the header less the offset; 120 s without it; never nothing", () => {
    expect(probeBudgetMs("10")).toBe(9500);
    expect(probeBudgetMs("1")).toBe(500);
    expect(probeBudgetMs(undefined)).toBe(119_500);
    expect(probeBudgetMs("0")).toBe(119_500);
    expect(probeBudgetMs("0.4")).toBe(400);
    expect(probeBudgetMs("2", 0)).toBe(2000);
    expect(() => probeBudgetMs("abc")).toThrow('strconv.ParseFloat: parsing "abc": invalid syntax');
  });
});

describe("parseTarget", () => {
  it.each([
    ["db.example:6379", { host: "db.example", port: 6379 }],
    ["10.0.0.1:1", { host: "10.0.0.1", port: 1 }],
    ["[::1]:443", { host: "::1", port: 443 }],
    ["::1", { host: "::1", port: undefined }],
    ["db.example", { host: "db.example", port: undefined }],
  ])("%s", (text, target) => expect(parseTarget(text)).toEqual(target));

  it.each([
    ["db.example:0", "is not a number from 1 to 65535"],
    ["db.example:", "is not a number from 1 to 65535"],
    ["tcp://db:1", "without a scheme"],
    ["[::1", "the host must be"],
    ["a b:1", "the host must be"],
    [":80", "the host must not be empty"],
    ["x".repeat(300), "the host must be"],
    ["1.2.3.4:5:6", "[address]:port"],
  ])("%s is refused", (text, why) => expect(() => parseTarget(text)).toThrow(why));
});
