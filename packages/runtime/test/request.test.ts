import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { bindLogFields, requestContextValues, requestKey, type NodeServerRequest } from "../src/request.js";

/** A logger writing JSON lines into `lines`. */
function capture(level = "info") {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level }, out), lines };
}

const request = (headers: Record<string, string> = {}) => ({ headers, socket: { remoteAddress: "10.0.0.9" } }) as unknown as NodeServerRequest;

describe("a call's request info", () => {
  it("logs the request id and, once bound, the caller's fields on every line, however late they were bound", async () => {
    const { log, lines } = capture();
    const info = requestContextValues(log, false, () => "10.0.0.9")(request({ "x-request-id": "req-1" })).get(requestKey)!;
    bindLogFields(info, { userId: "u-1" });
    info.log.info("first");
    bindLogFields(info, { kioskId: "k-1" });
    info.log.info("second");
    await new Promise((r) => setImmediate(r));
    expect(lines).toMatchObject([
      { msg: "first", requestId: "req-1", userId: "u-1" },
      { msg: "second", requestId: "req-1", userId: "u-1", kioskId: "k-1" },
    ]);
    expect(info.peer).toBe("10.0.0.9");
  });

  it("a copy of it (auth's client address) still logs with the call's fields", async () => {
    const { log, lines } = capture();
    const info = requestContextValues(log, false, () => "10.0.0.9")(request()).get(requestKey)!;
    const copy = { ...info, peer: "203.0.113.5" };
    bindLogFields(copy, { userId: "u-2" });
    copy.log.info("from the copy");
    await new Promise((r) => setImmediate(r));
    expect(lines).toMatchObject([{ msg: "from the copy", requestId: info.id, userId: "u-2" }]);
    expect(info.id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
