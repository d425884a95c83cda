// Task files that are too deep or too large are configuration errors naming the file, found
// before parsing: never a stack overflow, never a read without bound.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../host/config-error.js";
import { MAX_NESTING, MAX_TASK_FILE_BYTES, loadTaskFile, loadTasks } from "../../host/task/load.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-load-"));
const task = { id: "t", target: { host: "127.0.0.1", port: 7 }, steps: [{ send: "x", verify: "none" }] };

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The ConfigError's problems for loading `file`. */
function problems(file: string): string[] {
  try {
    loadTasks(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`${file} loaded`);
}

describe("nesting", () => {
  it("refuses arrays nested 100,000 deep, naming the file", () => {
    const file = write("arrays.json", "[".repeat(100_000) + "]".repeat(100_000));
    expect(problems(file)).toEqual([`${file}: nesting deeper than 64 levels of objects and arrays (at character 65)`]);
  });

  it('refuses {"a":{"a":…}} 100,000 deep', () => {
    const file = write("objects.json", '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000));
    expect(problems(file)).toEqual([`${file}: nesting deeper than 64 levels of objects and arrays (at character ${5 * 64 + 1})`]);
  });

  it("counts no brackets inside strings, escaped quotes included", () => {
    const keyword = `\\"${"[{".repeat(200)}`;
    const file = write("strings.json", JSON.stringify({ ...task, steps: [{ send: "x", verify: "partial", expect: keyword }] }));
    expect(loadTaskFile(file).spec.steps[0].expect).toBe(keyword);
  });

  it(`allows ${MAX_NESTING} levels (the schema judges them), refuses one more`, () => {
    const nested = (levels: number) => JSON.stringify({ ...task, labels: { a: JSON.parse("[".repeat(levels - 2) + "]".repeat(levels - 2)) } });
    const [atLimit] = problems(write("at-limit.json", nested(MAX_NESTING)));
    expect(atLimit).toMatch(/at-limit\.json: labels\.a: /);
    expect(problems(write("over-limit.json", nested(MAX_NESTING + 1)))[0]).toMatch(/over-limit\.json: nesting deeper than 64 levels/);
  });
});

describe("size", () => {
  const padded = (bytes: number) => {
    const text = JSON.stringify(task);
    return text + " ".repeat(bytes - text.length);
  };

  it("loads a file of exactly 1 MiB", () => {
    expect(loadTaskFile(write("max.json", padded(MAX_TASK_FILE_BYTES))).spec.id).toBe("t");
  });

  it("refuses a file one byte larger, naming it and the bound", () => {
    const file = write("big.json", padded(MAX_TASK_FILE_BYTES + 1));
    expect(problems(file)).toEqual([`${file}: larger than 1 MiB, the most a task file may hold`]);
  });

  it("reads an endless file only up to the bound", () => {
    expect(() => loadTaskFile("/dev/zero")).toThrow("/dev/zero: larger than 1 MiB, the most a task file may hold");
  });

  it("still reports a file that cannot be read", () => {
    expect(problems(join(dir, "missing.json"))).toEqual([`${join(dir, "missing.json")}: cannot read: ENOENT`]);
  });
});
