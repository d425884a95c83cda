// target.host is a DNS name or an IP literal: brackets or a port are configuration errors
// reported at load, not 600s at run time; a missing required field says "is required".

import { describe, expect, it } from "vitest";
import { parseTask } from "../../host/task/load.js";

const task = (target: object, step: object = { verify: "none" }) =>
  JSON.stringify({ id: "t", target: { port: 6379, ...target }, steps: [step] });

describe("task file: target.host", () => {
  it.each([
    ["[::1]", 'target.host "[::1]": an IP address without brackets (write "::1")'],
    ["10.0.0.1:6379", 'target.host "10.0.0.1:6379": a host without a port (the port goes in target.port)'],
    ["cache.example.internal:6379", 'target.host "cache.example.internal:6379": a host without a port (the port goes in target.port)'],
    ["redis://cache", 'target.host "redis://cache": a DNS name or an IP address (no scheme, path, port or spaces)'],
  ])("refuses %s", (host, problem) => {
    expect(() => parseTask("t.json", task({ host }))).toThrow(`t.json: ${problem}`);
  });

  it.each(["::1", "10.0.0.1", "cache.example.internal", "localhost", "nxdomain.lab.test", "host.example."])("accepts %s", (host) => {
    expect(parseTask("t.json", task({ host })).target.host).toBe(host);
  });

  it("says a missing verify (a list of options) is required", () => {
    expect(() => parseTask("t.json", task({ host: "localhost" }, { send: "x" }))).toThrow("t.json: steps[0].verify: is required");
  });
});
