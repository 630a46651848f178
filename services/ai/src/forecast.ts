// What GetForecast computes for one kiosk × SKU once the request is validated: the days (or
// hours) asked for, the serving model's quantiles for them at the pair's last seen price, and
// beside them the seasonal-naive value and, for past days, what was sold. Shared by the RPC
// handler and `npm run bench:ai` (so the serving-overhead benchmark times the handler's work).
// The points are ForecastPoint messages, ready for the response.
import type { ForecastPoint } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { dayOf } from "./generator.js";
import { seasonalNaiveDay, type Granularity } from "./model.js";
import type { ServedModel } from "./onnx.js";

/** Day strings, kept: a request names ~30 days, and formatting a date costs more than the rest of a point. */
const dayNames = new Map<number, string>();
function dayName(d: number): string {
  let name = dayNames.get(d);
  if (name === undefined) {
    if (dayNames.size >= 4096) dayNames.clear();
    dayNames.set(d, (name = dayOf(d)));
  }
  return name;
}

export interface RecentDay {
  quantity: number;
  hourly: number[] | null;
}

/**
 * `origin`: the first forecast day (tomorrow); `historyDays` before it (up to today; today has no
 * actual: it is not over), `horizonDays` from it. `recent`: the pair's sales from 7 days before
 * the first day shown.
 */
export async function forecastPoints(
  served: ServedModel,
  pairIdx: number,
  origin: number,
  historyDays: number,
  horizonDays: number,
  granularity: Granularity,
  recent: Map<number, RecentDay>,
): Promise<ForecastPoint[]> {
  const perDay = granularity === "hourly" ? 24 : 1;
  const n = (historyDays + horizonDays) * perDay;
  const pairs = new Int32Array(n).fill(pairIdx);
  const days = new Int32Array(n);
  const hours = granularity === "hourly" ? new Int32Array(n) : undefined;
  for (let i = 0; i < n; i++) {
    days[i] = origin - historyDays + Math.floor(i / perDay);
    if (hours) hours[i] = i % 24;
  }
  const prices = new Float32Array(n).fill(served.layout.lastPrice[pairIdx]!);
  const { p10, p50, p90 } = await served.predictArrays(pairs, days, prices, hours);
  const points = new Array<ForecastPoint>(n);
  for (let day = 0; day < historyDays + horizonDays; day++) {
    const d = origin - historyDays + day;
    const date = dayName(d);
    const naive = recent.get(seasonalNaiveDay(Math.min(origin, d), d));
    // Today is not over: its sales are not yet the day's.
    const sold = d < origin - 1 ? recent.get(d) : undefined;
    const hasActual = d < origin - 1 && (!hours || !sold || sold.hourly !== null);
    for (let h = 0; h < perDay; h++) {
      const i = day * perDay + h;
      // Built as the message itself (protobuf-es messages are plain objects with $typeName), so
      // the response takes the points as they are instead of copying each.
      points[i] = {
        $typeName: "adminkiosk.ai.v1.ForecastPoint",
        date,
        hour: h,
        p10: p10[i]!,
        p50: p50[i]!,
        p90: p90[i]!,
        seasonalNaive: (hours ? naive?.hourly?.[h] : naive?.quantity) ?? 0,
        hasActual,
        actual: !hasActual || !sold ? 0 : hours ? (sold.hourly?.[h] ?? 0) : sold.quantity,
      };
    }
  }
  return points;
}
