// A telemetry generator with known truth, for the maintenance-risk tests and demos (never for
// production data). Deterministic from a seed. Per kiosk, a sample every `sampleMinutes`:
//
//   paper     runs down with receipts: the kiosk's sales from the sales-history generator
//             (hour-of-day and weekday seasonality by location type), one receipt per order of
//             ~1.3 units, each taking 100 / (receipts per roll) points; the sensor adds noise
//             (σ 0.6 points) and now and then a glitch (a wild reading). A technician visits
//             every 3–6 days in the daytime and replaces the roll when it is below 35 %; a roll
//             that runs out is replaced 2–12 h later (the truth: when it ran out).
//   printer   a wear level per kiosk (most near 0, some worn): degraded episodes (WARNING, 5–30
//             min) and faults (FAULT, 30 min – 4 h) arrive at hourly rates that grow with wear;
//   scanner   the same, rarer;
//   temperature  a baseline per kiosk, a daily cycle and noise; some kiosks start drifting (a
//             failing fan: +0.2–0.6 °C per hour, up to +12 °C) at a known time.
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { dayOf, dayMs, generateSales, rng } from "./generator.js";
import type { Sample } from "./maintenance.js";

const hourMs = 3_600_000;

export interface KioskTruth {
  kioskId: string;
  /** When the paper ran out (level reached 0), ms. */
  paperOuts: number[];
  /** Roll replacements, ms. */
  refills: number[];
  /** Printer and scanner wear 0..1 and their true hourly fault rates. */
  printerWear: number;
  printerFaultRate: number;
  scannerFaultRate: number;
  /** When the temperature started drifting and how fast (°C/h); null: it does not. */
  driftStart: number | null;
  driftPerHour: number;
  baseline: number;
}

export interface GeneratedTelemetry {
  kiosks: { truth: KioskTruth; samples: Sample[] }[];
}

export interface TelemetryGeneratorOptions {
  seed: number;
  kiosks: number | string[];
  /** First sample's time (ms, UTC midnight) and how many days. */
  startMs: number;
  days: number;
  sampleMinutes?: number;
  /** Share of kiosks whose temperature drifts (default 0.2) and whose printers are worn (default 0.3). */
  driftShare?: number;
  wornShare?: number;
}

export function generateTelemetry(o: TelemetryGeneratorOptions): GeneratedTelemetry {
  const u = rng(o.seed * 7919 + 13);
  const stepMs = (o.sampleMinutes ?? 5) * 60_000;
  const startDay = Math.floor(o.startMs / dayMs);
  const { kiosks, sales } = generateSales({ seed: o.seed, kiosks: o.kiosks, days: o.days, endDay: dayOf(startDay + o.days - 1), stockoutRate: 0 });
  // Units per kiosk × hour since start.
  const hours = o.days * 24;
  const unitsByKiosk = new Map<string, Float64Array>();
  for (const s of sales) {
    let a = unitsByKiosk.get(s.kioskId);
    if (!a) unitsByKiosk.set(s.kioskId, (a = new Float64Array(hours)));
    const d = Math.floor(Date.parse(`${s.day}T00:00:00Z`) / dayMs) - startDay;
    for (let h = 0; h < 24; h++) a[d * 24 + h]! += s.hourly[h]!;
  }
  const normal = () => Math.sqrt(-2 * Math.log(Math.max(u(), 1e-12))) * Math.cos(2 * Math.PI * u());
  const driftShare = o.driftShare ?? 0.2;
  const wornShare = o.wornShare ?? 0.3;
  const out: GeneratedTelemetry = { kiosks: [] };
  for (const k of kiosks) {
    const units = unitsByKiosk.get(k.kioskId)!;
    const perReceipt = 100 / (250 + u() * 200);
    const worn = u() < wornShare;
    const printerWear = worn ? 0.4 + u() * 0.6 : u() * 0.1;
    const printerFaultRate = 0.001 + 0.03 * printerWear;
    const printerWarnRate = 0.005 + 0.15 * printerWear;
    const scannerWear = u() < 0.15 ? 0.4 + u() * 0.6 : u() * 0.1;
    const scannerFaultRate = 0.0005 + 0.02 * scannerWear;
    const scannerWarnRate = 0.003 + 0.1 * scannerWear;
    const baseline = 32 + u() * 10;
    const drifts = u() < driftShare;
    const driftStart = drifts ? o.startMs + (2 + u() * (o.days - 3)) * dayMs : null;
    const driftPerHour = drifts ? 0.2 + u() * 0.4 : 0;
    const truth: KioskTruth = { kioskId: k.kioskId, paperOuts: [], refills: [], printerWear, printerFaultRate, scannerFaultRate, driftStart, driftPerHour, baseline };
    let paper = 40 + u() * 60;
    let nextVisit = o.startMs + (u() * 3 + 0.4) * dayMs;
    let emergencyRefill: number | null = null;
    let printer = DeviceStatus.OK;
    let printerUntil = 0;
    let scanner = DeviceStatus.OK;
    let scannerUntil = 0;
    const samples: Sample[] = [];
    const stepHours = stepMs / hourMs;
    for (let t = o.startMs; t < o.startMs + o.days * dayMs; t += stepMs) {
      const hourIdx = Math.floor((t - o.startMs) / hourMs);
      // Receipts in this step: the hour's orders spread over its steps (Poisson).
      const mean = (units[hourIdx]! / 1.3) * stepHours;
      let receipts = 0;
      for (let l = Math.exp(-mean), p = u(); p > l; p *= u()) receipts++;
      if (paper > 0) {
        paper = Math.max(0, paper - receipts * perReceipt);
        if (paper === 0) {
          truth.paperOuts.push(t);
          emergencyRefill = t + (2 + u() * 10) * hourMs;
        }
      }
      // The technician: daytime visits; a roll below 35 % is replaced.
      if (t >= nextVisit) {
        const hourOfDay = new Date(t).getUTCHours();
        if (hourOfDay >= 8 && hourOfDay < 18) {
          if (paper < 35) {
            paper = 100;
            truth.refills.push(t);
            emergencyRefill = null;
          }
          nextVisit = t + (3 + u() * 3) * dayMs;
        }
      }
      if (emergencyRefill !== null && t >= emergencyRefill) {
        paper = 100;
        truth.refills.push(t);
        emergencyRefill = null;
      }
      // Devices.
      if (t >= printerUntil) printer = DeviceStatus.OK;
      if (printer === DeviceStatus.OK) {
        if (u() < printerFaultRate * stepHours) {
          printer = DeviceStatus.FAULT;
          printerUntil = t + (0.5 + u() * 3.5) * hourMs;
        } else if (u() < printerWarnRate * stepHours) {
          printer = DeviceStatus.WARNING;
          printerUntil = t + (5 + u() * 25) * 60_000;
        }
      }
      if (t >= scannerUntil) scanner = DeviceStatus.OK;
      if (scanner === DeviceStatus.OK) {
        if (u() < scannerFaultRate * stepHours) {
          scanner = DeviceStatus.FAULT;
          scannerUntil = t + (0.5 + u() * 3.5) * hourMs;
        } else if (u() < scannerWarnRate * stepHours) {
          scanner = DeviceStatus.WARNING;
          scannerUntil = t + (5 + u() * 25) * 60_000;
        }
      }
      const hourOfDay = (t % dayMs) / hourMs;
      const cycle = 1.5 * Math.cos(((hourOfDay - 15) / 24) * 2 * Math.PI);
      const drift = driftStart !== null && t > driftStart ? Math.min(12, ((t - driftStart) / hourMs) * driftPerHour) : 0;
      const glitch = u() < 0.005;
      const reported = glitch ? u() * 100 : Math.min(100, Math.max(0, paper + normal() * 0.6));
      samples.push({
        time: t,
        paper: Math.round(reported * 10) / 10,
        temperature: Math.round((baseline + cycle + drift + normal() * 0.5) * 10) / 10,
        printer: printer === DeviceStatus.OK && paper < 10 ? DeviceStatus.WARNING : printer,
        scanner,
        errors: (paper === 0 ? 1 : 0) + (printer === DeviceStatus.FAULT ? 1 : 0),
      });
    }
    out.kiosks.push({ truth, samples });
  }
  return out;
}
