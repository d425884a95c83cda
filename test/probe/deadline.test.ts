import { describe, expect, it } from "vitest";
import { Limit, TaskLimit, earliest, within } from "../../host/probe/deadline.js";

describe("deadlines", () => {
  it("the earliest decides; at a tie the first listed, the narrowest scope, wins", () => {
    const step = new Limit(100, 609, "step");
    const task = new TaskLimit(100);
    (task as { at: number }).at = step.at; // the same moment
    expect(earliest([step, task]).fault().code).toBe(609);
    const later = new Limit(200, 609, "later");
    expect(earliest([later, task]).fault().code).toBe(604);
  });

  it("names the phase the run was in when the task limit passed", () => {
    const task = new TaskLimit(250);
    task.phase = "step 3";
    task.step = 2;
    expect(task.fault()).toMatchObject({ code: 604, step: 2, message: "task did not complete within 250 ms (during step 3)" });
  });

  it("within: the work's own result when it settles first, the fault and cleanup otherwise", async () => {
    expect(await within(Promise.resolve(7), [new Limit(1000, 601, "x")])).toBe(7);
    let cleaned = false;
    const never = new Promise<number>(() => {});
    await expect(within(never, [new Limit(20, 601, "too slow")], () => { cleaned = true; }))
      .rejects.toMatchObject({ code: 601, message: "too slow" });
    expect(cleaned).toBe(true);
  });
});
