// Lease sizing from ai's demand forecast (docs/offline.md, GrantLeaseRequest.forecast_hours):
// for each SKU, the sum of the hourly 90 % quantiles of the kiosk's demand over the next N
// hours, rounded up. catalog asks ai as itself (its service token; GetForecast lists
// "catalog"). When ai cannot answer (not configured, unreachable, no model trained yet, a
// kiosk or SKU it has no history for) the item falls back to a fixed number of units — the
// lease still goes out, and its item says which it was.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { ForecastService, Granularity } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { callOptions, serviceCredentials, serviceTransport, type Logger } from "@adminkiosk/runtime";

export interface ForecastSizing {
  /** Units (rounded up), or undefined when ai could not answer (then `sizing` says why). */
  units: number | undefined;
  sizing: string;
}

export interface LeaseForecaster {
  size(kioskId: string, sku: string, hours: number): Promise<ForecastSizing>;
}

const hourMs = 3_600_000;

/** The forecast window [now, now + hours) in ai's hourly points: today's hours come with history_days 1. */
export async function sizeFromForecast(client: Client<typeof ForecastService> | undefined, kioskId: string, sku: string, hours: number, now = Date.now()): Promise<ForecastSizing> {
  if (!client) return { units: undefined, sizing: "fallback: no ai connection (AI_URL, AUTH_URL, SERVICE_SECRET)" };
  const from = Math.floor(now / hourMs) * hourMs;
  const until = now + hours * hourMs;
  const hourOfDay = new Date(from).getUTCHours();
  const horizonDays = Math.min(14, Math.max(1, Math.ceil((hourOfDay + hours) / 24)));
  try {
    const res = await client.getForecast({ kioskId, sku, horizonDays, historyDays: 1, granularity: Granularity.HOURLY }, callOptions(undefined, { timeoutMs: 3_000 }));
    let p90 = 0;
    for (const p of res.points) {
      const start = Date.parse(`${p.date}T00:00:00Z`) + p.hour * hourMs;
      if (start >= from && start < until) p90 += Math.max(0, p.p90);
    }
    return { units: Math.ceil(p90 - 1e-9), sizing: `forecast: p90 ${p90.toFixed(1)} units over ${hours} h (model v${res.modelVersion})` };
  } catch (err) {
    const e = ConnectError.from(err);
    return { units: undefined, sizing: `fallback: ai answered ${Code[e.code]}: ${e.rawMessage}`.slice(0, 200) };
  }
}

export function createLeaseForecaster(settings: { aiUrl?: string; authUrl?: string; secret?: string; log: Logger }): LeaseForecaster {
  const { aiUrl, authUrl, secret, log } = settings;
  const client =
    aiUrl && authUrl && secret ? createClient(ForecastService, serviceTransport(aiUrl, serviceCredentials({ authUrl, service: "catalog", secret }), { upstream: "ai" })) : undefined;
  if (!client) log.warn("AI_URL, AUTH_URL or SERVICE_SECRET is not set: leases sized from the forecast use the fallback (LEASE_FORECAST_FALLBACK_UNITS)");
  return { size: (kioskId, sku, hours) => sizeFromForecast(client, kioskId, sku, hours) };
}
