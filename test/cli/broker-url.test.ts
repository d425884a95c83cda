// `--broker URL[,URL…]` checked at start: a list is a broker cluster's nodes, each checked as
// one URL, all sharing what mqtt.js takes from the first (scheme family, path, credentials).

import { describe, expect, it } from "vitest";
import { checkBrokerUrl } from "../../cli/broker-url.js";

describe("checkBrokerUrl", () => {
  it("takes one URL or a list, blanks around items dropped", () => {
    expect(checkBrokerUrl("mqtt://127.0.0.1:1883")).toBe("mqtt://127.0.0.1:1883");
    expect(checkBrokerUrl("mqtt://a:1, mqtts://b:2 ,mqtt://[::1]:3")).toBe("mqtt://a:1,mqtts://b:2,mqtt://[::1]:3");
    expect(checkBrokerUrl("ws://a:1/mqtt,wss://b/mqtt")).toBe("ws://a:1/mqtt,wss://b/mqtt");
  });

  it.each([
    ["mqtt://a:1,b:2", "item 2 (b:2): no scheme: expected one of mqtt://, mqtts://, ws://, wss:// (e.g. mqtt://b:2)"],
    ["mqtt://a:1,", "item 2 (): no URL: a list has one between every two commas"],
    ["mqtt://a:1,mqtt://b:0", "item 2 (mqtt://b:0): the port must be from 1 to 65535"],
    ["mqtt://a:1,http://b:2", "item 2 (http://b:2): the scheme must be one of mqtt, mqtts, ws, wss, not http"],
    ["mqtt://a:1,ws://b:2", "item 2 (ws://b:2) differs from item 1: a list is all mqtt/mqtts or all ws/wss"],
    ["ws://a:1/mqtt,ws://b:2/other", "item 2 (ws://b:2/other) differs from item 1 in its path: the nodes of a list share one path"],
    ["mqtt://u:p@a:1,mqtt://b:2", "item 2 (mqtt://b:2) differs from item 1 in its credentials: give them with --username/--password-file, once for the list"],
  ])("refuses %s, naming the option, the item and what is wrong", (value, why) => {
    expect(() => checkBrokerUrl(value)).toThrow(`--broker ${value}: ${why}`);
  });
});
