import { describe, expect, it } from "vitest";
import { ERROR_CODES, errorCodeInfo, isErrorCode } from "../host/codes.js";

describe("the 600–609 table", () => {
  it("has exactly the codes 600 to 609, in order, with unique names", () => {
    expect(ERROR_CODES.map((c) => c.code)).toEqual([600, 601, 602, 603, 604, 605, 606, 607, 608, 609]);
    expect(new Set(ERROR_CODES.map((c) => c.name)).size).toBe(10);
    for (const info of ERROR_CODES) {
      expect(info.definition).toMatch(/^[A-Z].*\.$/);
      expect(info.description.length).toBeGreaterThan(10);
      expect(info.reportedWhen.length).toBeGreaterThan(10);
    }
  });

  it("looks codes up and rejects anything else", () => {
    expect(errorCodeInfo(607).definition).toBe("Failed to verify the keyword.");
    expect(errorCodeInfo(608).definition).toBe("SSL handshake failed.");
    expect([600, 609].every(isErrorCode)).toBe(true);
    expect([599, 610, "600", null, 600.5].some(isErrorCode)).toBe(false);
  });
});
