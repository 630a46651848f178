// A rollout's plan and gate arithmetic (pure): wave sizes, windows across midnight, the
// quietest hours of a forecast, and how a gate judges small and large counts.
import { describe, expect, it } from "vitest";
import { defaultGate, judge, type Measured } from "../src/rollouts/gates.js";
import { inWindow, quietestHours, waveEnds, waveSizes } from "../src/rollouts/plan.js";

const waves = [1, 10, 50, 100].map((percent) => ({ percent, bakeMs: 0 }));

describe("waves", () => {
  it("hold their share of the target, every wave at least one kiosk while kiosks are left", () => {
    expect(waveSizes(waveEnds(100_000, waves))).toEqual([1_000, 9_000, 40_000, 50_000]);
    expect(waveSizes(waveEnds(200, waves))).toEqual([2, 18, 80, 100]);
    expect(waveSizes(waveEnds(50, waves))).toEqual([1, 4, 20, 25]);
    expect(waveSizes(waveEnds(3, waves))).toEqual([1, 1, 1, 0]);
    expect(waveSizes(waveEnds(1, waves))).toEqual([1, 0, 0, 0]);
    expect(waveEnds(0, waves)).toEqual([0, 0, 0, 0]);
  });
});

describe("windows", () => {
  it("are local hours [start, end), wrapping midnight; start = end is the whole day", () => {
    expect([1, 2, 4, 5].map((h) => inWindow(h, 2, 5))).toEqual([false, true, true, false]);
    expect([21, 22, 23, 0, 3, 4].map((h) => inWindow(h, 22, 4))).toEqual([false, true, true, true, true, false]);
    expect(inWindow(13, 7, 7)).toBe(true);
  });

  it("AUTO's quietest hours are the three consecutive hours of the lowest forecast, across midnight too", () => {
    const day: number[] = Array.from({ length: 24 }, (_, h) => (h >= 8 && h < 20 ? 10 : 3));
    day[23] = 0;
    day[0] = 0;
    day[1] = 1;
    expect(quietestHours(day)).toEqual({ start: 23, end: 2 });
  });
});

const cohort = (kiosks: number, sales: number, baselineSales = 0, samples = 0, faultySamples = 0, reconnects = 0) => ({
  kiosks,
  measuredKiosks: kiosks,
  sales,
  baselineSales,
  failedOrders: 0,
  paymentFailures: 0,
  samples,
  faultySamples,
  reconnects,
});
const measured = (o: Partial<Measured>): Measured => ({
  updated: cohort(10, 0),
  control: cohort(90, 0),
  installsFinished: 10,
  installsFailed: 0,
  hours: 1,
  baselineHours: 24,
  ...o,
});
const metric = (m: Measured, name: string, gate = defaultGate) => judge(m, gate).find((x) => x.name === name)!;

describe("gates", () => {
  it("judge install failures from the first finished install", () => {
    expect(metric(measured({ installsFinished: 1, installsFailed: 1 }), "install_failure_share")).toMatchObject({ judged: true, passed: false, updated: 1 });
    expect(metric(measured({ installsFinished: 10, installsFailed: 2 }), "install_failure_share").passed).toBe(true);
  });

  it("do not judge sales before enough are expected in the updated cohort", () => {
    // 10 updated kiosks for 1 h at the control's 1 a kiosk-hour: 10 expected, fewer than 20.
    const few = metric(measured({ updated: cohort(10, 0), control: cohort(90, 90) }), "sales_per_kiosk_hour");
    expect(few).toMatchObject({ judged: false, passed: true });
    const enough = metric(measured({ updated: cohort(10, 35), control: cohort(90, 450) }), "sales_per_kiosk_hour");
    expect(enough).toMatchObject({ judged: true, passed: false, updated: 3.5, control: 5, threshold: 4 });
  });

  it("compare sales against each cohort's own baseline: kiosks that always sold more do not hide a 30 % drop", () => {
    // The updated kiosks sold twice the control's rate before; now 1.4x: 30 % less than expected, though above the control.
    const m = measured({ updated: cohort(10, 140, 10 * 24 * 20), control: cohort(90, 900, 90 * 24 * 10) });
    const x = metric(m, "sales_per_kiosk_hour");
    expect(x.updated).toBeCloseTo(14);
    expect(x.control).toBeCloseTo(10);
    expect(x.threshold).toBeCloseTo(16);
    expect(x.passed).toBe(false);
    // The same kiosks selling as they always did pass.
    expect(metric(measured({ updated: cohort(10, 200, 10 * 24 * 20), control: cohort(90, 900, 90 * 24 * 10) }), "sales_per_kiosk_hour").passed).toBe(true);
  });

  it("allow a near-zero fault rate some slack above a control that has none", () => {
    const one = metric(measured({ updated: cohort(10, 0, 0, 40, 1), control: cohort(90, 0, 0, 400, 0) }), "fault_rate");
    expect(one).toMatchObject({ judged: true, passed: true });
    const broken = metric(measured({ updated: cohort(10, 0, 0, 40, 40), control: cohort(90, 0, 0, 400, 2) }), "fault_rate");
    expect(broken.passed).toBe(false);
  });

  it("judge reconnects per kiosk-hour once the updated kiosks reconnected min_samples times or were watched that long", () => {
    // 10 updated kiosks for 0.1 h: 3 reconnects are too few to say anything.
    const few = metric(measured({ hours: 0.1, updated: cohort(10, 0, 0, 0, 0, 3), control: cohort(90, 0, 0, 0, 0, 0) }), "reconnect_rate");
    expect(few).toMatchObject({ judged: false, passed: true });
    // A version that crashes after it came up: 25 reconnects in 1 kiosk-hour against a control at 0.01.
    const crashing = metric(measured({ hours: 0.1, updated: cohort(10, 0, 0, 0, 0, 25), control: cohort(90, 0, 0, 0, 0, 0) }), "reconnect_rate");
    expect(crashing).toMatchObject({ judged: true, passed: false, updated: 25, control: 0 });
    // Over 10 kiosk-hours, one reconnect each in both cohorts passes.
    expect(metric(measured({ hours: 2, updated: cohort(10, 0, 0, 0, 0, 10), control: cohort(90, 0, 0, 0, 0, 90) }), "reconnect_rate")).toMatchObject({ judged: true, passed: true });
  });

  it("hold the updated kiosks' sales of the forecast SKU to the control's ratio against ai's forecast", () => {
    const side = (sold: number, forecast: number) => ({ sold, forecast, kiosks: 20, asked: 20 });
    const low = metric(measured({ forecast: { sku: "SNK-WATER-05", updated: side(70, 100), control: side(98, 100) } }), "sales_vs_forecast");
    expect(low).toMatchObject({ judged: true, passed: false, signal: "business" });
    expect(low.updated).toBeCloseTo(0.7);
    expect(low.control).toBeCloseTo(0.98);
    expect(metric(measured({ forecast: { sku: "SNK-WATER-05", updated: side(95, 100), control: side(98, 100) } }), "sales_vs_forecast").passed).toBe(true);
    // Without ai there is no such metric.
    expect(judge(measured({}), defaultGate).some((x) => x.name === "sales_vs_forecast")).toBe(false);
  });
});
