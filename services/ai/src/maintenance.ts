// Maintenance risk from a kiosk's telemetry. Pure: no I/O (health.ts keeps the state in
// PostgreSQL and feeds it link's telemetry; the tests feed it the maintenance generator's).
//
// Each kiosk's state is small and bounded, whatever the sample rate:
//   - 15-minute buckets (means) of the paper level since the roll was last replaced (at most
//     24 h of them) and of the temperature (the last 24 h);
//   - exponentially weighted (EW) scalars: paper consumption per hour (across rolls) and per
//     UTC hour of day (24 numbers), the temperature's baseline and spread (half-life 3 days),
//     and the printer's and scanner's fault and degraded episodes against the hours observed
//     (half-life 3 days);
//   - the last sample's level, statuses and errors, and whether it is online and healthy.
//
// Paper. A level that jumps up by REFILL_JUMP points is a new roll: the buckets start again.
// The consumption rate is the Theil–Sen slope (median of pairwise slopes, robust to sensor
// noise and outliers) of the roll's buckets, blended with the EW rate across rolls while the
// roll is young; the level now is the robust line's value at the last sample. The time until
// paper runs out walks forward 15 minutes at a time with the kiosk's own hour-of-day shape of
// consumption (receipts follow sales, which follow the hour) scaled to that rate.
//
// Printer and scanner. A fault (degraded) episode starts when a sample says FAULT (WARNING)
// after one that did not. The hourly hazard of a fault is (faults + ¼·degraded + prior) /
// (hours observed + prior hours), all EW; the probability of a fault within 24 h is
// 1 − exp(−24·hazard). (A printer's WARNING while the paper is nearly out is the paper's, not
// the printer's, and does not count.)
//
// Temperature. The drift is the mean of the last 2 h minus the EW baseline (itself updated
// from each closed bucket, so a slow drift shows up before the baseline follows); the trend
// is the Theil–Sen slope of the last 24 h, per day.
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";

export const bucketMs = 15 * 60_000;
const hourMs = 3_600_000;
/** Buckets kept: 24 h. */
export const keepBuckets = 96;
/** A rise of this many points in the paper level is a new roll. */
export const refillJump = 15;
/** Samples further apart than this open a gap (a kiosk away) that adds no exposure. */
const maxGapMs = 30 * 60_000;
/** Half-lives. */
const rateHalfLifeH = 24;
const profileHalfLifeH = 7 * 24;
const baselineHalfLifeH = 72;
const deviceHalfLifeH = 72;
/** Paper below this (percent) makes a printer WARNING the paper's, not the printer's. */
const lowPaperWarning = 10;
/** The paper-out horizon: 14 days. */
export const paperHorizonHours = 14 * 24;

export interface Sample {
  /** ms since epoch. */
  time: number;
  paper: number;
  temperature: number;
  printer: DeviceStatus;
  scanner: DeviceStatus;
  errors: number;
}

export interface KioskState {
  /** The last sample's time (ms), level, statuses and error count. */
  last: { time: number; paper: number; temperature: number; printer: DeviceStatus; scanner: DeviceStatus; errors: number } | null;
  /** The open bucket (start ms) and its sums (paper without glitches and refill samples). */
  open: { start: number; n: number; nPaper: number; paper: number; temperature: number } | null;
  /** The last three paper readings taken (a refill is measured against their median), and whether the last one jumped. */
  recent: number[];
  jump: boolean;
  /** Closed buckets of the current roll: mid-times (ms) and mean levels. */
  paperT: number[];
  paperV: number[];
  /** Closed temperature buckets of the last 24 h. */
  tempT: number[];
  tempV: number[];
  /** EW paper consumption, percent per hour, and its weight (hours). */
  rate: number;
  rateW: number;
  /** EW consumption per UTC hour of day (percent per hour) and weights. */
  profile: number[];
  profileW: number[];
  /** EW temperature baseline, variance, weight (hours). */
  tBase: number;
  tVar: number;
  tW: number;
  /** EW fault/degraded episode counts and hours observed. */
  printerFaults: number;
  printerDegraded: number;
  scannerFaults: number;
  scannerDegraded: number;
  /** EW degraded-sample share over the last day (weights in hours). */
  printerBad: number;
  scannerBad: number;
  badW: number;
  exposure: number;
  /** When the kiosk last came online (connected) and went offline, ms. */
  connected: boolean;
  connectionTime: number;
  /** The start of the current online and healthy stretch (ms), null when not online and healthy. */
  healthySince: number | null;
}

export function emptyState(): KioskState {
  return {
    last: null,
    open: null,
    recent: [],
    jump: false,
    paperT: [],
    paperV: [],
    tempT: [],
    tempV: [],
    rate: 0,
    rateW: 0,
    profile: new Array<number>(24).fill(0),
    profileW: new Array<number>(24).fill(0),
    tBase: 0,
    tVar: 0,
    tW: 0,
    printerFaults: 0,
    printerDegraded: 0,
    scannerFaults: 0,
    scannerDegraded: 0,
    printerBad: 0,
    scannerBad: 0,
    badW: 0,
    exposure: 0,
    connected: false,
    connectionTime: 0,
    healthySince: null,
  };
}

/** The decay of an EW quantity over `hours` with half-life `halfLife` hours. */
const decay = (hours: number, halfLife: number) => Math.pow(0.5, hours / halfLife);
/** EW mean update: the mean `m` of weight `w` (already decayed) takes `x` with weight `dw`. */
const ewMean = (m: number, w: number, x: number, dw: number) => (w + dw > 0 ? (m * w + x * dw) / (w + dw) : x);

export const isHealthy = (s: Pick<Sample, "printer" | "scanner" | "errors">) => s.printer !== DeviceStatus.FAULT && s.scanner !== DeviceStatus.FAULT && s.errors === 0;
const degraded = (status: DeviceStatus) => status === DeviceStatus.WARNING || status === DeviceStatus.FAULT;

/** A connection (connected true) or disconnection at `time`; older news than what the state holds changes nothing. */
export function applyConnection(s: KioskState, connected: boolean, time: number): void {
  if (time < s.connectionTime) return;
  s.connected = connected;
  s.connectionTime = time;
  if (!connected) s.healthySince = null;
  else if (s.last && s.last.time >= time && isHealthy(s.last)) s.healthySince ??= time;
}

function closeBucket(s: KioskState) {
  const b = s.open;
  if (!b || b.n === 0) return;
  const mid = b.start + bucketMs / 2;
  const paper = b.nPaper > 0 ? b.paper / b.nPaper : NaN;
  const temperature = b.temperature / b.n;
  // Paper: consumption since the previous bucket of the same roll.
  const prevT = s.paperT[s.paperT.length - 1];
  const prevV = s.paperV[s.paperV.length - 1];
  if (b.nPaper > 0 && prevT !== undefined && prevV !== undefined && mid - prevT <= maxGapMs * 2) {
    const hours = (mid - prevT) / hourMs;
    const perHour = (prevV - paper) / hours;
    const d = decay(hours, rateHalfLifeH);
    s.rate = ewMean(s.rate, s.rateW * d, perHour, hours);
    s.rateW = s.rateW * d + hours;
    const h = new Date(mid).getUTCHours();
    const dp = decay(hours, profileHalfLifeH);
    s.profile[h] = ewMean(s.profile[h]!, s.profileW[h]! * dp, perHour, hours);
    for (let i = 0; i < 24; i++) s.profileW[i]! *= dp;
    s.profileW[h]! += hours;
  }
  if (b.nPaper > 0) {
    s.paperT.push(mid);
    s.paperV.push(paper);
  }
  // Temperature: the baseline follows each bucket (a bucket far outside the spread moves it less).
  const hours = bucketMs / hourMs;
  const d = decay(hours, baselineHalfLifeH);
  if (s.tW === 0) {
    s.tBase = temperature;
    s.tVar = 1;
  } else {
    const sd = Math.sqrt(Math.max(s.tVar, 0.25));
    const z = Math.abs(temperature - s.tBase) / sd;
    const dw = z > 3 ? hours * (3 / z) ** 2 : hours;
    const w = s.tW * d;
    const base = ewMean(s.tBase, w, temperature, dw);
    s.tVar = ewMean(s.tVar, w, (temperature - s.tBase) ** 2, dw);
    s.tBase = base;
  }
  s.tW = s.tW * d + hours;
  s.tempT.push(mid);
  s.tempV.push(temperature);
  const horizon = mid - keepBuckets * bucketMs;
  while (s.paperT.length > 0 && (s.paperT[0]! <= horizon || s.paperT.length > keepBuckets)) {
    s.paperT.shift();
    s.paperV.shift();
  }
  while (s.tempT.length > 0 && (s.tempT[0]! <= horizon || s.tempT.length > keepBuckets)) {
    s.tempT.shift();
    s.tempV.shift();
  }
  s.open = null;
}

/** One sample, in time order; a sample not newer than the last one is ignored (a resent batch). */
export function applySample(s: KioskState, x: Sample): void {
  const prev = s.last;
  if (prev && x.time <= prev.time) return;
  // Exposure and device episodes (gaps do not count as observed time).
  if (prev) {
    const gap = x.time - prev.time;
    const hours = Math.min(gap, maxGapMs) / hourMs;
    const d = decay(hours, deviceHalfLifeH);
    s.printerFaults *= d;
    s.printerDegraded *= d;
    s.scannerFaults *= d;
    s.scannerDegraded *= d;
    s.exposure = s.exposure * d + hours;
    const dd = decay(hours, 24);
    const printerWarning = x.printer === DeviceStatus.WARNING && x.paper < lowPaperWarning ? false : degraded(x.printer);
    s.printerBad = ewMean(s.printerBad, s.badW * dd, printerWarning ? 1 : 0, hours);
    s.scannerBad = ewMean(s.scannerBad, s.badW * dd, degraded(x.scanner) ? 1 : 0, hours);
    s.badW = s.badW * dd + hours;
    if (x.printer === DeviceStatus.FAULT && prev.printer !== DeviceStatus.FAULT) s.printerFaults += 1;
    else if (x.printer === DeviceStatus.WARNING && prev.printer === DeviceStatus.OK && x.paper >= lowPaperWarning) s.printerDegraded += 1;
    if (x.scanner === DeviceStatus.FAULT && prev.scanner !== DeviceStatus.FAULT) s.scannerFaults += 1;
    else if (x.scanner === DeviceStatus.WARNING && prev.scanner === DeviceStatus.OK) s.scannerDegraded += 1;
  }
  // A new roll: two samples in a row well above the recent readings (one alone is a glitch).
  // The buckets of the old roll go (the open one's paper too).
  const reference = s.recent.length ? median(s.recent) : x.paper;
  let paperCounts = true;
  if (x.paper > reference + refillJump) {
    if (!s.jump) {
      s.jump = true;
      paperCounts = false;
    } else {
      s.jump = false;
      s.recent = [];
      s.paperT = [];
      s.paperV = [];
      if (s.open) {
        const start = s.open.start;
        closeBucketTemperatureOnly(s);
        s.open = { start, n: 0, nPaper: 0, paper: 0, temperature: 0 };
      }
    }
  } else s.jump = false;
  if (paperCounts) {
    s.recent.push(x.paper);
    if (s.recent.length > 3) s.recent.shift();
  }
  const start = Math.floor(x.time / bucketMs) * bucketMs;
  if (s.open && s.open.start !== start) closeBucket(s);
  if (!s.open) s.open = { start, n: 0, nPaper: 0, paper: 0, temperature: 0 };
  s.open.n++;
  s.open.temperature += x.temperature;
  if (paperCounts) {
    s.open.nPaper++;
    s.open.paper += x.paper;
  }
  s.last = { time: x.time, paper: x.paper, temperature: x.temperature, printer: x.printer, scanner: x.scanner, errors: x.errors };
  // Telemetry arrives over a live stream: a sample newer than the last connection news says
  // the kiosk is connected (ai may have started after its connection event left the stream).
  if (x.time > s.connectionTime && !s.connected) {
    s.connected = true;
    s.connectionTime = x.time;
  }
  // Healthy while online and every sample says so.
  if (!isHealthy(x)) s.healthySince = null;
  else if (s.connected && s.healthySince === null) s.healthySince = Math.max(x.time, s.connectionTime);
}

/** On a refill inside a bucket: its temperature still counts, its paper (a mix of two rolls) does not. */
function closeBucketTemperatureOnly(s: KioskState) {
  const b = s.open;
  if (!b || b.n === 0) return;
  s.tempT.push(b.start + bucketMs / 2);
  s.tempV.push(b.temperature / b.n);
}

/** Theil–Sen: the median of pairwise slopes (per ms) and the median intercept at `at`. */
export function theilSen(tAll: number[], vAll: number[], at: number, maxPoints = 48): { slope: number; level: number } | undefined {
  // At most maxPoints points (every k-th, the newest always in): 1,128 pairs for 48.
  const k = Math.ceil(tAll.length / maxPoints);
  const t: number[] = [];
  const v: number[] = [];
  for (let i = tAll.length - 1; i >= 0; i -= k) {
    t.push(tAll[i]!);
    v.push(vAll[i]!);
  }
  const n = t.length;
  if (n < 2) return undefined;
  const slopes = new Float64Array((n * (n - 1)) / 2);
  let m = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (t[j]! !== t[i]!) slopes[m++] = (v[j]! - v[i]!) / (t[j]! - t[i]!);
  if (m === 0) return undefined;
  const slope = median(slopes.subarray(0, m));
  const level = median(Float64Array.from(t, (ti, i) => v[i]! - slope * (ti - at)));
  return { slope, level };
}

function median(xs: ArrayLike<number>): number {
  const s = Float64Array.from(xs).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Thresholds {
  /** Paper is due when it runs out within this many hours… */
  paperDueHours: number;
  /** …or is below this level (percent). */
  paperLowPercent: number;
  /** A device is due when its probability of a fault within 24 h reaches this. */
  faultDueProbability: number;
  /** The temperature is due when it drifts this far (°C) from the baseline. */
  temperatureDriftCelsius: number;
}

export const defaultThresholds: Thresholds = { paperDueHours: 8, paperLowPercent: 5, faultDueProbability: 0.5, temperatureDriftCelsius: 6 };

export type Item = "paper" | "printer" | "scanner" | "temperature";
export const items: Item[] = ["paper", "printer", "scanner", "temperature"];

export interface Risk {
  sampleTime: number;
  paperLevel: number;
  /** Percent per hour (0: not consuming). */
  paperRate: number;
  /** Hours from the last sample until paper runs out; NaN when not within the horizon or not consuming. */
  paperOutHours: number;
  printerFault: number;
  scannerFault: number;
  printerDegraded: number;
  scannerDegraded: number;
  temperature: number;
  temperatureBaseline: number;
  temperatureDrift: number;
  temperatureTrendPerDay: number;
  due: Item[];
}

/** The roll history (hours) from which its own trend counts fully (a whole day: the hours average out); younger rolls lean on the EW rate. */
const youngRollHours = 24;

/**
 * The kiosk's risk now (at its last sample). `wasDue`: what was due before; an item clears
 * only with a margin (paper: running out beyond 1.5 × the due horizon; a device: below 0.8 ×
 * the due probability; the temperature: drift below 0.75 × the threshold), so a borderline
 * kiosk does not flap between due and cleared.
 */
export function riskOf(s: KioskState, th: Thresholds = defaultThresholds, wasDue: readonly Item[] = []): Risk | undefined {
  const last = s.last;
  if (!last) return undefined;
  const now = last.time;
  // The roll's points: closed buckets plus the open one.
  const t = [...s.paperT];
  const v = [...s.paperV];
  if (s.open && s.open.nPaper > 0) {
    t.push(Math.min(now, s.open.start + bucketMs / 2));
    v.push(s.open.paper / s.open.nPaper);
  }
  const fit = t.length >= 4 ? theilSen(t, v, now) : undefined;
  const span = t.length > 1 ? (t[t.length - 1]! - t[0]!) / hourMs : 0;
  const rollRate = fit ? Math.max(0, -fit.slope * hourMs) : 0;
  const weight = Math.min(1, span / youngRollHours);
  const ewRate = s.rateW > 0 ? Math.max(0, s.rate) : rollRate;
  const rate = fit ? rollRate * weight + ewRate * (1 - weight) : ewRate;
  // The level now: the last readings' median (the line's value lags when consumption follows the hour).
  const level = Math.max(0, Math.min(100, s.recent.length ? median(s.recent) : last.paper));
  // A busier day than usual (a Saturday at the mall): the last 6 h used more than the shape
  // expects at this rate; the coming hours are taken to stay that much busier (never less busy:
  // running out early is what costs).
  const shape = shapeOf(s);
  let busier = 1;
  const since = now - 6 * hourMs;
  const i0 = t.findIndex((ti) => ti >= since);
  if (shape && i0 >= 0 && t.length - i0 >= 8) {
    const recentFit = theilSen(t.slice(i0), v.slice(i0), now, 24);
    let expected = 0;
    for (let ti = since; ti < now; ti += bucketMs) expected += rate * shape[hourOf(ti)]! * (bucketMs / hourMs);
    if (recentFit && expected >= 2) busier = Math.min(2.5, Math.max(1, (-recentFit.slope * 6 * hourMs) / expected));
  }
  const paperOutHours = paperOut(shape, level, rate * busier, now);

  const hazard = (faults: number, degradedEpisodes: number) => (faults + 0.25 * degradedEpisodes + 0.1) / (s.exposure + 72);
  const p24 = (h: number) => 1 - Math.exp(-24 * h);
  const printerFault = last.printer === DeviceStatus.FAULT ? 1 : p24(hazard(s.printerFaults, s.printerDegraded));
  const scannerFault = last.scanner === DeviceStatus.FAULT ? 1 : p24(hazard(s.scannerFaults, s.scannerDegraded));

  // Temperature: the last 2 h against the baseline.
  const recent: number[] = [];
  for (let i = s.tempT.length - 1; i >= 0 && s.tempT[i]! > now - 2 * hourMs; i--) recent.push(s.tempV[i]!);
  if (s.open && s.open.n > 0) recent.push(s.open.temperature / s.open.n);
  const temperature = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : last.temperature;
  const baselineKnown = s.tW >= 12;
  const drift = baselineKnown ? temperature - s.tBase : 0;
  const trend = s.tempT.length >= 8 ? (theilSen(s.tempT, s.tempV, now, 24)?.slope ?? 0) * 24 * hourMs : 0;

  const due: Item[] = [];
  const margin = (item: Item, held: number) => (wasDue.includes(item) ? held : 1);
  if ((Number.isFinite(paperOutHours) && paperOutHours <= th.paperDueHours * margin("paper", 1.5)) || level <= th.paperLowPercent) due.push("paper");
  if (printerFault >= th.faultDueProbability * margin("printer", 0.8)) due.push("printer");
  if (scannerFault >= th.faultDueProbability * margin("scanner", 0.8)) due.push("scanner");
  if (baselineKnown && Math.abs(drift) >= th.temperatureDriftCelsius * margin("temperature", 0.75)) due.push("temperature");
  return {
    sampleTime: now,
    paperLevel: level,
    paperRate: rate,
    paperOutHours,
    printerFault,
    scannerFault,
    printerDegraded: s.printerBad,
    scannerDegraded: s.scannerBad,
    temperature,
    temperatureBaseline: baselineKnown ? s.tBase : temperature,
    temperatureDrift: drift,
    temperatureTrendPerDay: trend,
    due,
  };
}

const hourOf = (ms: number) => Math.floor((((ms % 86_400_000) + 86_400_000) % 86_400_000) / hourMs);

/** The kiosk's consumption by UTC hour of day relative to its mean, once it has seen two days. */
function shapeOf(s: KioskState): number[] | undefined {
  const seen = s.profileW.reduce((a, b) => a + b, 0);
  if (seen < 48 || !s.profileW.every((w) => w > 0.5)) return undefined;
  const raw = s.profile.map((p) => Math.max(0, p));
  const mean = raw.reduce((a, b) => a + b, 0) / 24;
  return mean > 1e-6 ? raw.map((p) => p / mean) : undefined;
}

/** Hours until `level` is used up at `rate` shaped by the hour of day (flat without a shape). */
function paperOut(shape: number[] | undefined, level: number, rate: number, now: number): number {
  if (level <= 0) return 0;
  if (rate <= 1e-6) return NaN;
  const step = bucketMs / hourMs;
  let left = level;
  // Whole days first (a day uses 24 · rate whatever the shape), then 15 minutes at a time.
  const days = Math.min(Math.floor(left / (24 * rate) - 1e-9), paperHorizonHours / 24);
  let h = 0;
  if (days > 0) {
    left -= days * 24 * rate;
    h = days * 24;
  }
  for (; h < paperHorizonHours; h += step) {
    const hour = hourOf(now + h * hourMs);
    const use = rate * (shape ? shape[hour]! : 1) * step;
    if (use >= left) return h + (use > 0 ? (left / use) * step : 0);
    left -= use;
  }
  return NaN;
}
