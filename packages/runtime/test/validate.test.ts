// The input checks every handler uses: InvalidArgument naming the field, with a BadRequest detail.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { cursorPatterns, decodePageToken, encodePageToken, invalidArgument, pageSize, requireEmail, requireKioskId, requireText, requireUuid } from "../src/index.js";

/** The InvalidArgument `fn` throws. */
function refusal(fn: () => unknown): ConnectError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected InvalidArgument");
}

describe("invalidArgument", () => {
  it("names the field in the message and in a google.rpc.BadRequest field violation", () => {
    const err = invalidArgument("kiosk.display_name", "must not be empty");
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe("kiosk.display_name: must not be empty");
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations).toMatchObject([{ field: "kiosk.display_name", description: "must not be empty" }]);
  });
});

describe("requireText", () => {
  it("returns the value unchanged when it fits", () => {
    expect(requireText("name", " Kiosk 1 ", { max: 20 })).toBe(" Kiosk 1 ");
  });

  it("refuses empty, too short and too long values", () => {
    expect(refusal(() => requireText("name", "", { max: 5 })).rawMessage).toBe("name: must not be empty");
    expect(refusal(() => requireText("name", "ab", { min: 3, max: 5 })).rawMessage).toBe("name: must be at least 3 characters");
    expect(refusal(() => requireText("name", "abcdef", { max: 5 })).rawMessage).toBe("name: must be at most 5 characters");
    expect(requireText("note", "", { min: 0, max: 5 })).toBe("");
  });

  it("refuses control characters, but free text keeps them and refuses only NUL", () => {
    for (const c of ["\u0000", "\u0007", "\u001b", "\u007f"]) expect(refusal(() => requireText("name", `a${c}b`, { max: 10 })).rawMessage).toBe("name: must not contain control characters");
    expect(requireText("name", "tab\tand\nnewline\r", { max: 30 })).toContain("\t");
    expect(requireText("error", "\u001b[31mred\u001b[0m", { max: 30, allowControl: true })).toContain("\u001b");
    expect(refusal(() => requireText("error", "a\u0000b", { max: 30, allowControl: true })).rawMessage).toBe("error: must not contain NUL characters");
  });

  it("checks a pattern, with its hint or its source", () => {
    expect(refusal(() => requireText("code", "x", { max: 5, pattern: /^\d+$/, patternHint: "must be digits" })).rawMessage).toBe("code: must be digits");
    expect(refusal(() => requireText("code", "x", { max: 5, pattern: /^\d+$/ })).rawMessage).toBe("code: must match ^\\d+$");
  });
});

describe("ids and addresses", () => {
  it("kiosk ids are letters, digits, '_' and '-' (no '.', they are NATS subject tokens), up to 64", () => {
    expect(requireKioskId("kiosk_id", "prague-001_A")).toBe("prague-001_A");
    expect(refusal(() => requireKioskId("kiosk_id", "a.b")).rawMessage).toBe("kiosk_id: may contain only letters, digits, '_' and '-'");
    expect(refusal(() => requireKioskId("kiosk_id", "a>")).code).toBe(Code.InvalidArgument);
    expect(refusal(() => requireKioskId("kiosk_id", "k".repeat(65))).rawMessage).toMatch(/at most 64/);
  });

  it("emails are trimmed and lower-cased", () => {
    expect(requireEmail("email", "  Ada@Example.COM ")).toBe("ada@example.com");
    expect(refusal(() => requireEmail("email", "ada@example")).rawMessage).toBe("email: must be an email address");
  });

  it("uuids in either case", () => {
    expect(requireUuid("id", "0B7A3C2E-1D4F-4A5B-8C9D-0E1F2A3B4C5D")).toBeTruthy();
    expect(refusal(() => requireUuid("id", "0b7a3c2e1d4f4a5b8c9d0e1f2a3b4c5d")).rawMessage).toBe("id: must be a UUID");
  });
});

describe("pageSize", () => {
  it("0 is the default; anything else must be within 1..max", () => {
    expect(pageSize("page_size", 0)).toBe(50);
    expect(pageSize("page_size", 0, 100, 1000)).toBe(100);
    expect(pageSize("page_size", 1)).toBe(1);
    expect(pageSize("page_size", 500)).toBe(500);
    expect(refusal(() => pageSize("page_size", 501)).rawMessage).toBe("page_size: must be between 1 and 500");
    expect(refusal(() => pageSize("page_size", -1)).code).toBe(Code.InvalidArgument);
  });
});

describe("page tokens", () => {
  const shape = { at: cursorPatterns.timestamp, id: cursorPatterns.uuid };
  const cursor = { at: "2024-11-20T10:00:00.123Z", id: "0b7a3c2e-1d4f-4a5b-8c9d-0e1f2a3b4c5d" };

  it("round-trip opaquely (base64url, no padding or '+/')", () => {
    const token = encodePageToken(cursor);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodePageToken("page_token", token, shape)).toEqual(cursor);
  });

  it("an empty token is the first page", () => {
    expect(decodePageToken("page_token", "", shape)).toBeUndefined();
  });

  it("ignores keys the shape does not ask for", () => {
    expect(decodePageToken("page_token", encodePageToken({ ...cursor, extra: "x" }), shape)).toEqual(cursor);
  });

  it.each([
    ["not base64 JSON", "!!!"],
    ["JSON but not an object", Buffer.from("42").toString("base64url")],
    ["null", Buffer.from("null").toString("base64url")],
    ["a key missing", encodePageToken({ at: cursor.at })],
    ["a key of the wrong form", encodePageToken({ ...cursor, id: "1; DROP TABLE kiosks" })],
    ["a number where text belongs", Buffer.from(JSON.stringify({ ...cursor, at: 5 })).toString("base64url")],
  ])("refuses %s as InvalidArgument, never a database error", (_what, token) => {
    expect(refusal(() => decodePageToken("page_token", token, shape)).rawMessage).toBe("page_token: is not a page token this service issued");
  });

  it("integer cursors are up to 19 digits (bigint)", () => {
    expect(decodePageToken("t", encodePageToken({ before: "9223372036854775807" }), { before: cursorPatterns.integer })).toEqual({ before: "9223372036854775807" });
    expect(() => decodePageToken("t", encodePageToken({ before: "-1" }), { before: cursorPatterns.integer })).toThrow(/page token/);
  });
});
