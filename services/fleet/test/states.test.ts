// The command and job lifecycles and the rollout bucket: pure, no servers.
import { describe, expect, it } from "vitest";
import { allowanceNow, maxCommandsPerTick, takeFromBucket } from "../src/rollout.js";
import {
  cancelableCommandStates,
  commandStateNames,
  commandStatesFor,
  isFinishedJobState,
  isOpenCommandState,
  jobMay,
  jobStateNames,
  jobTransitions,
  nextCommandState,
  openCommandStates,
  progressBucket,
  sqlNextState,
  sqlStates,
  type CommandEvent,
} from "../src/states.js";

const events: CommandEvent[] = ["deliver", "ack", "succeed", "fail", "expire", "cancel"];
const finished = ["succeeded", "failed", "expired", "canceled"] as const;

describe("command lifecycle", () => {
  it("moves queued → sent → acked → succeeded or failed", () => {
    expect(nextCommandState("queued", "deliver")).toBe("sent");
    expect(nextCommandState("sent", "ack")).toBe("acked");
    expect(nextCommandState("acked", "succeed")).toBe("succeeded");
    expect(nextCommandState("acked", "fail")).toBe("failed");
  });

  it("lets an ack overtake the dispatcher's 'sent' and a result overtake the ack", () => {
    expect(nextCommandState("queued", "ack")).toBe("acked");
    expect(nextCommandState("queued", "succeed")).toBe("succeeded");
    expect(nextCommandState("sent", "fail")).toBe("failed");
  });

  it("keeps a resent command's state, and an ack of an acked command changes nothing", () => {
    expect(nextCommandState("sent", "deliver")).toBe("sent");
    expect(nextCommandState("acked", "deliver")).toBe("acked");
    expect(nextCommandState("acked", "ack")).toBeUndefined();
  });

  it("cancels only what the kiosk has not acknowledged; expires anything unfinished", () => {
    expect(cancelableCommandStates).toEqual(["queued", "sent"]);
    expect(nextCommandState("acked", "cancel")).toBeUndefined();
    expect(commandStatesFor("expire")).toEqual(["queued", "sent", "acked"]);
  });

  it("never changes a finished command", () => {
    for (const state of finished) for (const event of events) expect(nextCommandState(state, event), `${state} + ${event}`).toBeUndefined();
  });

  it("every transition ends in a known state, and only open states have any", () => {
    for (const state of commandStateNames)
      for (const event of events) {
        const next = nextCommandState(state, event);
        if (next) expect(commandStateNames).toContain(next);
        if (next) expect(isOpenCommandState(state)).toBe(true);
      }
  });

  it("the open states are the unfinished ones, as the partial indexes list them", () => {
    expect(openCommandStates).toEqual(["queued", "sent", "acked"]);
    // 1800610000002_commands-open-flag.sql: the commands' stored `open` column, which the partial indexes name.
    expect(sqlStates(openCommandStates)).toBe("'queued', 'sent', 'acked'");
  });

  it("counts a job's commands: expired as failed, the open ones in flight", () => {
    expect(commandStateNames.map(progressBucket)).toEqual(["inFlight", "inFlight", "inFlight", "succeeded", "failed", "failed", "canceled"]);
  });

  it("builds SQL from the table, refusing anything that is not a state name", () => {
    expect(sqlNextState("deliver")).toBe("CASE state WHEN 'queued' THEN 'sent' WHEN 'sent' THEN 'sent' WHEN 'acked' THEN 'acked' END");
    expect(sqlNextState("cancel", "c.state")).toBe("CASE c.state WHEN 'queued' THEN 'canceled' WHEN 'sent' THEN 'canceled' END");
    expect(() => sqlStates(["queued'); DROP TABLE commands; --"])).toThrow(/not a state name/);
    expect(() => sqlStates([])).toThrow(/no states/);
  });
});

describe("job lifecycle", () => {
  it("pauses a running job, resumes a paused one, cancels either", () => {
    expect(jobMay("running", jobTransitions.pause)).toBe(true);
    expect(jobMay("paused", jobTransitions.pause)).toBe(false);
    expect(jobMay("paused", jobTransitions.resume)).toBe(true);
    expect(jobMay("running", jobTransitions.resume)).toBe(false);
    expect(jobMay("running", jobTransitions.cancel) && jobMay("paused", jobTransitions.cancel)).toBe(true);
  });

  it("only a running job completes or aborts; finished jobs stay finished", () => {
    expect(jobMay("paused", jobTransitions.complete)).toBe(false);
    expect(jobMay("paused", jobTransitions.abort)).toBe(false);
    expect(jobStateNames.filter(isFinishedJobState)).toEqual(["completed", "aborted", "canceled"]);
  });
});

describe("rollout bucket", () => {
  it("refills at the rate a second, holding at most one second's worth", () => {
    expect(allowanceNow(0, 1, 600)).toBe(10);
    expect(allowanceNow(0, 0.5, 600)).toBe(5);
    expect(allowanceNow(3, 60, 600)).toBe(10);
    expect(allowanceNow(0, 3600, 6_000_000)).toBe(100_000);
  });

  it("holds at least one token, so slow jobs (under 60 a minute) still move", () => {
    expect(allowanceNow(0, 30, 2)).toBe(1);
    expect(allowanceNow(0, 15, 2)).toBe(0.5);
    expect(allowanceNow(0.5, 3600, 1)).toBe(1);
  });

  it("ignores time going backwards (another replica's clock)", () => {
    expect(allowanceNow(2, -5, 600)).toBe(2);
  });

  it("takes whole tokens, no more than are left to dispatch or fit one tick, and keeps the rest", () => {
    expect(takeFromBucket(10, 100)).toEqual({ take: 10, left: 0 });
    expect(takeFromBucket(2.5, 100)).toEqual({ take: 2, left: 0.5 });
    expect(takeFromBucket(10, 3)).toEqual({ take: 3, left: 7 });
    expect(takeFromBucket(0.9, 100)).toEqual({ take: 0, left: 0.9 });
    expect(takeFromBucket(100_000, 1_000_000)).toEqual({ take: maxCommandsPerTick, left: 100_000 - maxCommandsPerTick });
    expect(takeFromBucket(5, 0).take).toBe(0);
  });

  it("dispatches a rate-per-minute job at that rate over ticks", () => {
    // 120 a minute, ticks every 250 ms: two a second once the bucket is warm.
    let allowance = 1;
    let sent = 0;
    for (let tick = 0; tick < 40; tick++) {
      const { take, left } = takeFromBucket(allowanceNow(allowance, 0.25, 120), 1_000);
      sent += take;
      allowance = left;
    }
    expect(sent).toBeGreaterThanOrEqual(20);
    expect(sent).toBeLessThanOrEqual(21);
  });
});
