// A rollout's plan, pure: how many kiosks each wave holds, and whether a local hour is
// inside a maintenance window. The database assigns each kiosk its place in the order
// (a hash of the rollout id and the kiosk id, so the canary is a spread sample of the
// target, not the first kiosks by name) and its wave from the cumulative ends here.

export interface WavePlan {
  /** Cumulative share of the target, 0 < percent <= 100, increasing, the last 100. */
  percent: number;
  bakeMs: number;
}

export const defaultWaves: WavePlan[] = [
  { percent: 1, bakeMs: 3_600_000 },
  { percent: 10, bakeMs: 3_600_000 },
  { percent: 50, bakeMs: 3_600_000 },
  { percent: 100, bakeMs: 3_600_000 },
];

/**
 * The position (0-based, in hash order) where each wave ends, exclusive: wave i holds
 * positions ends[i-1] .. ends[i]-1. Every wave holds at least one kiosk while kiosks are
 * left (a 1 % canary of 50 kiosks is one kiosk); the last ends at `total`.
 */
export function waveEnds(total: number, waves: readonly WavePlan[]): number[] {
  const ends: number[] = [];
  let prev = 0;
  waves.forEach((w, i) => {
    const left = waves.length - 1 - i;
    let end = i === waves.length - 1 ? total : Math.round((total * w.percent) / 100);
    end = Math.max(end, prev + 1);
    // Leave a kiosk for each later wave when there are enough (earlier waves first).
    end = Math.min(end, Math.max(prev + 1, total - left), total);
    ends.push(end);
    prev = end;
  });
  return ends;
}

/** Kiosks per wave from waveEnds. */
export const waveSizes = (ends: readonly number[]) => ends.map((e, i) => e - (i === 0 ? 0 : ends[i - 1]!));

/**
 * Local hour `hour` (0..23) inside [start, end): start > end wraps midnight (22 .. 4 is
 * 22:00-04:00), start == end is the whole day. The same rule as windowSql.
 */
export function inWindow(hour: number, start: number, end: number): boolean {
  if (start === end) return true;
  return start < end ? hour >= start && hour < end : hour >= start || hour < end;
}

/** inWindow in SQL over a kiosk's time zone and its window columns (rollout_targets t). */
export const windowSql = (t = "t") => {
  const hour = `extract(hour FROM now() AT TIME ZONE ${t}.timezone)::int`;
  return `(${t}.window_start = ${t}.window_end OR (CASE WHEN ${t}.window_start < ${t}.window_end
    THEN ${hour} >= ${t}.window_start AND ${hour} < ${t}.window_end
    ELSE ${hour} >= ${t}.window_start OR ${hour} < ${t}.window_end END))`;
};

/**
 * The plan's kiosks of rollout `idParam` that have no rollout_targets row yet, as rows like
 * rollout_targets' (wave, kiosk_id, timezone, window_start, window_end; release_id and
 * from_version NULL where the rollout's own apply), in plan order within each wave.
 */
export const unwrittenSql = (idParam = "$1") =>
  `SELECT p.wave, u.kiosk_id, u.timezone, COALESCE(u.ws, r.window_start_hour)::smallint AS window_start, COALESCE(u.we, r.window_end_hour)::smallint AS window_end,
          u.release_id, u.from_version, w.materialised + u.ord AS ord
   FROM rollout_waves w JOIN rollout_wave_plans p USING (rollout_id, wave) JOIN rollouts r USING (rollout_id),
     unnest(p.kiosk_ids[w.materialised + 1:], p.timezones[w.materialised + 1:], p.window_starts[w.materialised + 1:], p.window_ends[w.materialised + 1:],
            p.release_ids[w.materialised + 1:], p.from_versions[w.materialised + 1:]) WITH ORDINALITY AS u(kiosk_id, timezone, ws, we, release_id, from_version, ord)
   WHERE w.rollout_id = ${idParam} AND w.materialised < w.kiosks`;

/** unwrittenSql's kiosk ids only (wave, kiosk_id): the gates' control cohort reads no more of the plans. */
export const unwrittenIdsSql = (idParam = "$1") =>
  `SELECT p.wave, u.kiosk_id FROM rollout_waves w JOIN rollout_wave_plans p USING (rollout_id, wave), unnest(p.kiosk_ids[w.materialised + 1:]) AS u(kiosk_id)
   WHERE w.rollout_id = ${idParam} AND w.materialised < w.kiosks`;

/** AUTO's window when ai cannot answer for a kiosk: 02:00-05:00 local. */
export const defaultWindow = { start: 2, end: 5 };

/** The hour (0..23) in `timeZone` at `at`. */
export function localHour(at: Date, timeZone: string): number {
  let f = hourFormats.get(timeZone);
  if (!f) hourFormats.set(timeZone, (f = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", hourCycle: "h23" })));
  return Number(f.format(at)) % 24;
}
/** One formatter per time zone: making one costs far more than formatting (a plan of 100,000 kiosks asks 2.4 million hours). */
const hourFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * The `length` consecutive local hours with the lowest total of `perHour` (24 values,
 * index = local hour), wrapping midnight; the earliest start wins a tie.
 */
export function quietestHours(perHour: readonly number[], length = 3): { start: number; end: number } {
  let best = 0;
  let bestSum = Infinity;
  for (let s = 0; s < 24; s++) {
    let sum = 0;
    for (let k = 0; k < length; k++) sum += perHour[(s + k) % 24] ?? 0;
    if (sum < bestSum - 1e-9) {
      bestSum = sum;
      best = s;
    }
  }
  return { start: best, end: (best + length) % 24 };
}
