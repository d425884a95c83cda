// Step data, converted and checked once per task before anything touches the network
// (DESIGN.md order of checks: step by step, send before verify). Buffer-mode hex and MD5
// digests are converted by the core; invalid data becomes the run's 605 or 606.

import type { Core } from "../core/core.js";
import { VerifyDataError } from "../core/errors.js";
import { HexError, hexToBytes } from "../core/hex.js";
import { checkVerifySpec, type VerifySpec } from "../core/verifier.js";
import type { StepSpec, TaskSpec } from "../task/schema.js";
import { RunFault } from "./fault.js";

export interface PreparedStep {
  index: number;
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

/** A short, printable form of data for messages. */
export function showData(bytes: Uint8Array, format: "text" | "buffer", max = 40): string {
  if (format === "buffer") {
    const hex = Buffer.from(bytes.subarray(0, max)).toString("hex");
    return `0x${hex}${bytes.length > max ? "…" : ""}`;
  }
  const text = Buffer.from(bytes.subarray(0, max)).toString("utf8");
  return `${JSON.stringify(text)}${bytes.length > max ? "…" : ""}`;
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
      return [{ mode: "md5", digest }, `MD5 ${Buffer.from(digest).toString("hex")}`];
    }
    case "partial": {
      const keyword = convert(core, expect, format);
      return [{ mode: "partial", keyword }, `keyword ${showData(keyword, format)}`];
    }
    case "full": {
      const expected = convert(core, expect, format);
      return [{ mode: "full", expected }, `expected reply ${showData(expected, format)}`];
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
    index, send, verify, expectLabel,
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
