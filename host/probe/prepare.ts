// Step data, converted and checked once per task before anything touches the network
// (DESIGN.md order of checks: step by step, send before verify). Buffer-mode hex and MD5
// digests are converted by the core; invalid data becomes the run's 605 or 606.

import type { Core } from "../core/core.js";
import { VerifyDataError } from "../core/errors.js";
import { HexError, bytesToHex, hexToBytes } from "../core/hex.js";
import { checkVerifySpec, type VerifySpec } from "../core/verifier.js";
import type { StepSpec, TaskSpec } from "../task/schema.js";
import { RunFault } from "./fault.js";

export interface PreparedStep {
  index: number;
  /** the step's own or the task's: how its data, and its reply in messages, are shown */
  format: "text" | "buffer";
  send: Uint8Array | null;
  verify: VerifySpec;
  /** how the expectation reads in messages: keyword "+PONG", expected reply 0x0a0b… */
  expectLabel: string;
  responseTimeoutMs: number;
  timeoutMs: number;
  idleMs: number;
  maxResponseBytes: number;
  starttls: boolean;
}

export interface PreparedTask {
  spec: TaskSpec;
  steps: PreparedStep[];
  /** the 605/606 every run of this task reports, or null when the data is valid */
  invalid: RunFault | null;
}

const utf8 = new TextDecoder();

/**
 * A short, printable form of data for messages: its first `max` bytes, as hex (through the
 * core) in buffer mode and as a JSON string in text mode, and "…" when the data, `length`
 * bytes in all, goes on.
 */
export function showData(core: Core, bytes: Uint8Array, format: "text" | "buffer", max = 40, length = bytes.length): string {
  const shown = bytes.subarray(0, max);
  const more = length > shown.length ? "…" : "";
  if (format === "buffer") return `0x${bytesToHex(core, shown)}${more}`;
  // A cut may fall inside a character: show the characters that are whole.
  const text = utf8.decode(more ? shown.subarray(0, wholeCharacters(shown)) : shown);
  return `${JSON.stringify(text)}${more}`;
}

/** The length of `bytes` less a UTF-8 sequence that is cut short at its end. */
function wholeCharacters(bytes: Uint8Array): number {
  let lead = bytes.length - 1;
  while (lead > bytes.length - 4 && lead > 0 && (bytes[lead] & 0xc0) === 0x80) lead--;
  const b = bytes[lead];
  const size = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
  return lead + size > bytes.length ? lead : bytes.length;
}

function convert(core: Core, data: string, format: "text" | "buffer"): Uint8Array {
  return format === "buffer" ? hexToBytes(core, data) : Buffer.from(data, "utf8");
}

function verifySpec(core: Core, step: StepSpec, format: "text" | "buffer"): [VerifySpec, string] {
  const expect = step.expect ?? "";
  switch (step.verify) {
    case "none":
      return [{ mode: "none" }, "any reply"];
    case "md5": {
      // The digest is hex whatever the step's format.
      const digest = hexToBytes(core, expect);
      if (digest.length !== 16) throw new VerifyDataError(`an MD5 digest is 32 hex digits, got ${digest.length * 2}`);
      return [{ mode: "md5", digest }, `MD5 ${bytesToHex(core, digest)}`];
    }
    case "partial": {
      const keyword = convert(core, expect, format);
      return [{ mode: "partial", keyword }, `keyword ${showData(core, keyword, format)}`];
    }
    case "full":
    case "prefix": {
      const expected = convert(core, expect, format);
      const label = step.verify === "full" ? "expected reply" : "expected prefix";
      return [{ mode: step.verify, expected }, `${label} ${showData(core, expected, format)}`];
    }
  }
}

function prepareStep(core: Core, step: StepSpec, index: number, taskFormat: "text" | "buffer"): PreparedStep {
  const format = step.format ?? taskFormat;
  const where = `step ${index + 1}`;
  let send: Uint8Array | null = null;
  if (step.send !== undefined && (step.send !== "" || format === "buffer")) {
    try {
      send = convert(core, step.send, format);
    } catch (err) {
      if (err instanceof HexError) throw new RunFault(605, `${where} send data: ${err.message}`, index);
      throw err;
    }
  }
  let verify: VerifySpec;
  let expectLabel: string;
  try {
    [verify, expectLabel] = verifySpec(core, step, format);
    checkVerifySpec(core, verify);
  } catch (err) {
    if (err instanceof HexError || err instanceof VerifyDataError) {
      throw new RunFault(606, `${where} verify data: ${err.message}`, index);
    }
    throw err;
  }
  return {
    index, format, send, verify, expectLabel,
    responseTimeoutMs: step.responseTimeoutMs,
    timeoutMs: step.timeoutMs,
    idleMs: step.idleMs,
    maxResponseBytes: step.maxResponseBytes,
    starttls: step.starttls,
  };
}

export function prepareTask(core: Core, spec: TaskSpec): PreparedTask {
  const steps: PreparedStep[] = [];
  try {
    spec.steps.forEach((step, i) => steps.push(prepareStep(core, step, i, spec.format)));
  } catch (err) {
    if (err instanceof RunFault) return { spec, steps: [], invalid: err };
    throw err;
  }
  return { spec, steps, invalid: null };
}
