// The benchmark's load: a separate process that publishes COUNT result records with QoS 1 as
// fast as the broker takes them, so the publisher does not share a thread with the receiver
// being measured. Prints "connected" once connected, waits for a line on stdin, publishes,
// prints "done <CPU ms>" when every PUBACK is in (the CPU it used from the start line on), and
// exits.
//   node --import tsx test/bench/publisher-process.ts URL CLIENT_ID COUNT

import { once } from "node:events";
import mqtt from "mqtt";
import { resultTopic } from "../../host/wire/topics.js";
import { record } from "../helpers/records.js";

const [url, clientId, count] = process.argv.slice(2);
const client = await mqtt.connectAsync(url, { protocolVersion: 4, clientId });
console.log("connected");
await once(process.stdin, "data");
const cpu = process.cpuUsage();
const now = Date.now();
const sends: Promise<unknown>[] = [];
for (let i = 0; i < Number(count); i++) {
  const r = record(`p${i % 50}`, `t${i % 10}`, now - i, i % 3 ? 607 : null);
  sends.push(client.publishAsync(resultTopic(r.probe, r.task), JSON.stringify(r), { qos: 1 }));
}
await Promise.all(sends);
const { user, system } = process.cpuUsage(cpu);
console.log(`done ${(user + system) / 1000}`);
await client.endAsync();
process.exit(0);
