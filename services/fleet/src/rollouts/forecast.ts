// ai's forecast for a rollout's gate (sales_vs_forecast, gates.ts): the units of one SKU
// (ROLLOUT_AUTO_SKU, the one AUTO windows read) a kiosk is expected to sell over the gate's
// window, from GetForecast hourly p50 — asked as fleet through the same client as AUTO
// windows. A kiosk's answer is kept for the hour (the model changes at most daily), so a gate
// that waits for samples tick after tick asks ai once per kiosk and hour, not per tick.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { Granularity, type ForecastService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { callOptions, type Logger } from "@adminkiosk/runtime";
import type { GateForecasts } from "./gates.js";

const hourMs = 3_600_000;

export function createGateForecasts(o: { client: Client<typeof ForecastService>; sku: string; log: Logger; keepMs?: number }): GateForecasts {
  const keepMs = o.keepMs ?? hourMs;
  /** Per kiosk: p50 by UTC hour start (ms), or undefined when ai could not answer. */
  const kept = new Map<string, { at: number; hours?: Map<number, number> }>();
  let failures = 0;

  async function hourly(kioskId: string): Promise<Map<number, number> | undefined> {
    const k = kept.get(kioskId);
    if (k && Date.now() - k.at < keepMs) return k.hours;
    let hours: Map<number, number> | undefined;
    try {
      // Yesterday and today (history) and tomorrow: a window may cross midnight.
      const res = await o.client.getForecast({ kioskId, sku: o.sku, horizonDays: 1, historyDays: 2, granularity: Granularity.HOURLY }, callOptions(undefined, { timeoutMs: 3_000 }));
      hours = new Map(res.points.map((p) => [Date.parse(`${p.date}T00:00:00Z`) + p.hour * hourMs, Math.max(0, p.p50)]));
    } catch (err) {
      // A kiosk ai has no model or history for is left out of the metric (NotFound); others are logged now and then.
      const code = ConnectError.from(err).code;
      if (code !== Code.NotFound && failures++ % 100 === 0) o.log.warn({ err, kioskId }, "ai's forecast for a rollout gate failed");
    }
    if (kept.size > 10_000) kept.clear();
    kept.set(kioskId, { at: Date.now(), hours });
    return hours;
  }

  return {
    sku: o.sku,
    async expectedUnits(kioskId, from, to) {
      const hours = await hourly(kioskId);
      if (!hours) return undefined;
      let units = 0;
      for (let h = Math.floor(from.getTime() / hourMs) * hourMs; h < to.getTime(); h += hourMs) {
        const p50 = hours.get(h);
        if (p50 === undefined) return undefined;
        units += (p50 * (Math.min(h + hourMs, to.getTime()) - Math.max(h, from.getTime()))) / hourMs;
      }
      return units;
    },
  };
}
