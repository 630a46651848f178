// When a kiosk's latest telemetry sample makes it ALERTING (fleet's KIOSK_STATUS_ALERTING while
// online), defined once: fleet judges its kiosks by it (and shows the thresholds in
// FleetSummary.thresholds), notifications' alerting_status rules fire on it.

/** The limits a kiosk's latest state is judged by. */
export const kioskThresholds = {
  /** Paper below this (percent) is low, and alerting while the kiosk is online. */
  lowPaperPercent: 10,
} as const;

/** The part of a kiosk's latest sample the judgement reads (statuses by their short names: "OK", "FAULT", ...). */
export interface JudgedState {
  paperLevelPercent?: number;
  printerStatus?: string;
  scannerStatus?: string;
  errors?: string[];
}

export function isLowOnPaper(state: JudgedState | null): boolean {
  return typeof state?.paperLevelPercent === "number" && state.paperLevelPercent < kioskThresholds.lowPaperPercent;
}

/** A fault or a reading past a threshold: an error reported, printer or scanner FAULT, or low paper (KIOSK_STATUS_ALERTING while online). */
export function isAlerting(state: JudgedState | null): boolean {
  if (!state) return false;
  return (state.errors?.length ?? 0) > 0 || state.printerStatus === "FAULT" || state.scannerStatus === "FAULT" || isLowOnPaper(state);
}
