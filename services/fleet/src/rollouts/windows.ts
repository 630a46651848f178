// AUTO maintenance windows (docs/rollouts.md): each kiosk's quietest consecutive hours in its
// own time zone, from ai's demand forecast. fleet asks ai's GetForecast as itself (its service
// token; the RPC lists "fleet") for the next 7 days hourly of one SKU (ROLLOUT_AUTO_SKU): ai's
// hour-of-day shares are per kiosk, the same for every SKU it sells, so one SKU gives the
// kiosk's profile. ai has no many-kiosk call, so at most `maxForecasts` kiosks of a rollout are
// asked one by one (a spread sample by hash, `concurrency` calls at once, each kiosk once per
// plan: the answers are kept for that rollout only, so a stopped ai shows at once); the rest take the mean profile of the
// asked kiosks of their group. A kiosk ai cannot answer for (no connection, no model, no
// history, ai down) and with no group profile gets the fallback, 02:00-05:00 local, and the
// rollout's window note says how many did and why.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { ForecastService, Granularity } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { callOptions, serviceCredentials, serviceTransport, type Logger } from "@adminkiosk/runtime";
import { defaultWindow, localHour, quietestHours } from "./plan.js";

export interface TargetKiosk {
  kioskId: string;
  groupId: string | null;
  timezone: string;
}

export interface Window {
  start: number;
  end: number;
}

export interface AutoPlan {
  /** Every kiosk's window (the fallback's hours for those ai could not answer for). */
  windows: Map<string, Window>;
  note: string;
  /** Kiosks given the fallback. */
  fallback: number;
}

export interface AutoWindows {
  plan(kiosks: readonly TargetKiosk[]): Promise<AutoPlan>;
}

const hh = (h: number) => `${String(h).padStart(2, "0")}:00`;

/** A UTC-hour profile (24 values) as local hours of `timeZone` today. */
export function toLocal(utc: readonly number[], timeZone: string, now = new Date()): number[] {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const local = new Array<number>(24).fill(0);
  for (let h = 0; h < 24; h++) local[localHour(new Date(midnight + h * 3_600_000), timeZone)]! += utc[h] ?? 0;
  return local;
}

/** ai's ForecastService called as fleet (its service token from auth), or undefined without AI_URL and SERVICE_SECRET. */
export function forecastClient(s: { aiUrl?: string; authUrl?: string; secret?: string }): Client<typeof ForecastService> | undefined {
  return s.aiUrl && s.authUrl && s.secret ? createClient(ForecastService, serviceTransport(s.aiUrl, serviceCredentials({ authUrl: s.authUrl, service: "fleet", secret: s.secret }), { upstream: "ai" })) : undefined;
}

export function createAutoWindows(settings: {
  aiUrl?: string;
  authUrl?: string;
  secret?: string;
  sku: string;
  maxForecasts: number;
  hours: number;
  concurrency?: number;
  /** ai's ForecastService as fleet (forecastClient), shared with the rollout gates' sales_vs_forecast. */
  client?: Client<typeof ForecastService>;
  log: Logger;
}): AutoWindows {
  const { aiUrl, authUrl, secret, sku, maxForecasts, hours, log } = settings;
  const concurrency = settings.concurrency ?? 8;
  const client = settings.client ?? forecastClient({ aiUrl, authUrl, secret });
  if (!client) log.warn("AI_URL or SERVICE_SECRET is not set: AUTO rollout windows use the fallback 02:00-05:00 local");

  /** The kiosk's forecast demand per UTC hour over the next 7 days (p50 summed), or why not. */
  async function profile(kioskId: string): Promise<{ utc?: number[]; error?: string }> {
    try {
      const res = await client!.getForecast({ kioskId, sku, horizonDays: 7, historyDays: 0, granularity: Granularity.HOURLY }, callOptions(undefined, { timeoutMs: 3_000 }));
      const utc = new Array<number>(24).fill(0);
      for (const p of res.points) utc[p.hour]! += Math.max(0, p.p50);
      return utc.some((v) => v > 0) ? { utc } : { error: "no forecast demand" };
    } catch (err) {
      return { error: Code[ConnectError.from(err).code] };
    }
  }

  return {
    async plan(kiosks) {
      const windows = new Map<string, Window>();
      const fallbackNote = (why: string) => `AUTO: ${kiosks.length} kiosks use the default window ${hh(defaultWindow.start)}-${hh(defaultWindow.end)} in their time zone (${why})`;
      if (!client) {
        for (const k of kiosks) windows.set(k.kioskId, defaultWindow);
        return { windows, fallback: kiosks.length, note: fallbackNote("fleet has no ai connection: AI_URL, SERVICE_SECRET") };
      }
      const asked = kiosks.slice(0, maxForecasts);
      const profiles = new Map<string, number[]>();
      const errors = new Map<string, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(concurrency, asked.length) }, async () => {
          while (next < asked.length) {
            const k = asked[next++]!;
            const p = await profile(k.kioskId);
            if (p.utc) profiles.set(k.kioskId, p.utc);
            else errors.set(p.error!, (errors.get(p.error!) ?? 0) + 1);
          }
        }),
      );
      // Each group's mean hour shares over its asked kiosks (for the kiosks not asked or not answered).
      const groups = new Map<string, number[]>();
      for (const k of asked) {
        const utc = profiles.get(k.kioskId);
        if (!utc || !k.groupId) continue;
        const total = utc.reduce((a, b) => a + b, 0);
        const g = groups.get(k.groupId) ?? new Array<number>(24).fill(0);
        utc.forEach((v, h) => (g[h]! += v / total));
        groups.set(k.groupId, g);
      }
      let own = 0;
      let byGroup = 0;
      let fallback = 0;
      // A group's window in a time zone is the same for each of its kiosks there: computed once.
      const groupWindows = new Map<string, Window>();
      for (const k of kiosks) {
        const utc = profiles.get(k.kioskId) ?? (k.groupId ? groups.get(k.groupId) : undefined);
        if (!utc) {
          windows.set(k.kioskId, defaultWindow);
          fallback++;
          continue;
        }
        if (profiles.has(k.kioskId)) {
          own++;
          windows.set(k.kioskId, quietestHours(toLocal(utc, k.timezone), hours));
          continue;
        }
        byGroup++;
        const key = `${k.groupId}\u0000${k.timezone}`;
        let w = groupWindows.get(key);
        if (!w) groupWindows.set(key, (w = quietestHours(toLocal(utc, k.timezone), hours)));
        windows.set(k.kioskId, w);
      }
      const failed = [...errors.values()].reduce((a, b) => a + b, 0);
      const why = [...errors].map(([e, n]) => `${e} ${n}`).join(", ");
      if (fallback === kiosks.length && kiosks.length > 0) return { windows, fallback, note: fallbackNote(`ai could not answer: ${why || "not asked"}`) };
      let note = `AUTO: each kiosk's quietest ${hours} h in its time zone from ai's forecast — ${own} from its own forecast, ${byGroup} from its group's, ${fallback} use the default ${hh(defaultWindow.start)}-${hh(defaultWindow.end)}`;
      if (failed) note += `; ai could not answer for ${failed} (${why})`;
      if (kiosks.length > asked.length) note += `; ${kiosks.length - asked.length} not asked (ROLLOUT_AUTO_MAX_FORECASTS ${maxForecasts})`;
      return { windows, fallback, note: note.slice(0, 500) };
    },
  };
}
