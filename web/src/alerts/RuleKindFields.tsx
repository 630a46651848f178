// The rule form's pieces for the rule kinds judged from catalog's, payments', orders', ai's
// events and link's telemetry (alerting status, telemetry errors, low stock, payment failure
// rate, orders stuck, silent failure) and from the services' health announcements (service not
// serving), a kiosk's call for help (customers), and for the SMS and Web Push receivers. Kept apart from
// the form itself so any rule editor can use them.
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RuleDefinition, RuleDefinitionSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { FormField } from "../ui/form";

export const moreKindLabels = {
  alertingStatus: "Kiosk alerting",
  telemetryErrors: "Telemetry errors",
  lowStock: "Low stock",
  paymentFailureRate: "Payment failure rate",
  ordersStuck: "Orders stuck",
  silentFailure: "Silent failure (ai)",
  serviceNotServing: "Service not serving",
  helpRequested: "Call for help (customers)",
} as const;
export type MoreKind = keyof typeof moreKindLabels;
/** The proto field of each kind (errors name definition.<field>.…). */
export const moreKindFields: Record<MoreKind, string> = {
  alertingStatus: "alerting_status",
  telemetryErrors: "telemetry_errors",
  lowStock: "low_stock",
  paymentFailureRate: "payment_failure_rate",
  ordersStuck: "orders_stuck",
  silentFailure: "silent_failure",
  serviceNotServing: "service_not_serving",
  helpRequested: "help_requested",
};
export const isMoreKind = (k: string | undefined): k is MoreKind => k !== undefined && k in moreKindLabels;
/** Kinds without a for-duration (payment failure rate is judged over its window; a call for help fires at once). */
export const hasForDuration = (k: string) => k !== "paymentFailureRate" && k !== "helpRequested";

export interface MoreKindState {
  sku: string;
  threshold: string;
  windowMinutes: string;
  minPayments: string;
  service: string;
}

export function initialMoreKindState(d: RuleDefinition | undefined): MoreKindState {
  const k = d?.kind;
  return {
    sku: k?.case === "lowStock" ? k.value.sku : "",
    threshold: k?.case === "paymentFailureRate" ? String(k.value.threshold) : "20",
    windowMinutes: k?.case === "paymentFailureRate" && k.value.window ? String(Math.round(durationMs(k.value.window) / 60_000)) : "15",
    minPayments: k?.case === "paymentFailureRate" ? String(k.value.minPayments) : "5",
    service: k?.case === "serviceNotServing" ? k.value.service : "",
  };
}

/** The definition's kind for one of these kinds. */
export function moreKindValue(kind: MoreKind, s: MoreKindState, forMs: number): MessageInitShape<typeof RuleDefinitionSchema>["kind"] {
  const forDuration = durationFromMs(Number.isFinite(forMs) ? forMs : 0);
  switch (kind) {
    case "lowStock":
      return { case: kind, value: { sku: s.sku.trim(), forDuration } };
    case "serviceNotServing":
      return { case: kind, value: { service: s.service.trim(), forDuration } };
    case "helpRequested":
      return { case: kind, value: {} };
    case "paymentFailureRate": {
      const minutes = Number(s.windowMinutes);
      return { case: kind, value: { threshold: Number(s.threshold), window: durationFromMs(Number.isFinite(minutes) ? minutes * 60_000 : 0), minPayments: Math.max(0, Math.trunc(Number(s.minPayments) || 0)) } };
    }
    default:
      return { case: kind, value: { forDuration } };
  }
}

/** The kind's own inputs (the for-duration is the form's). */
export function MoreKindInputs({ id, kind, state, onChange, error }: { id: string; kind: MoreKind; state: MoreKindState; onChange: (s: MoreKindState) => void; error: (field: string) => string | undefined }) {
  const set = (patch: Partial<MoreKindState>) => onChange({ ...state, ...patch });
  if (kind === "lowStock")
    return (
      <FormField id={`${id}-sku`} label="Product (SKU)" hint="Empty: every product" error={error("low_stock.sku")}>
        <input id={`${id}-sku`} value={state.sku} onChange={(e) => set({ sku: e.target.value })} placeholder="e.g. cola-05" />
      </FormField>
    );
  if (kind === "serviceNotServing")
    return (
      <FormField id={`${id}-service`} label="Service" hint="Empty: every service (kiosk groups and tags do not apply)" error={error("service_not_serving.service")}>
        <input id={`${id}-service`} value={state.service} onChange={(e) => set({ service: e.target.value })} placeholder="e.g. catalog" />
      </FormField>
    );
  if (kind === "paymentFailureRate")
    return (
      <>
        <FormField id={`${id}-threshold`} label="More than (% failed)" error={error("payment_failure_rate.threshold")}>
          <input id={`${id}-threshold`} type="number" step="any" value={state.threshold} onChange={(e) => set({ threshold: e.target.value })} />
        </FormField>
        <FormField id={`${id}-window`} label="Within (minutes)" error={error("payment_failure_rate.window")}>
          <input id={`${id}-window`} type="number" value={state.windowMinutes} onChange={(e) => set({ windowMinutes: e.target.value })} />
        </FormField>
        <FormField id={`${id}-min`} label="Of at least (payments)" error={error("payment_failure_rate.min_payments")}>
          <input id={`${id}-min`} type="number" value={state.minPayments} onChange={(e) => set({ minPayments: e.target.value })} />
        </FormField>
      </>
    );
  return null;
}

/** How the rule list shows one of these kinds; undefined for the others. */
export function describeMoreCondition(d: RuleDefinition | undefined): string | undefined {
  const k = d?.kind;
  if (!k?.case || !isMoreKind(k.case)) return undefined;
  if (k.case === "paymentFailureRate") {
    const minutes = k.value.window ? Math.round(durationMs(k.value.window) / 60_000) : 0;
    return `More than ${k.value.threshold} % of payments failed within ${minutes} min (at least ${k.value.minPayments})`;
  }
  if (k.case === "helpRequested") return "A buyer or technician calls for help at the kiosk";
  const secs = k.value.forDuration ? Math.round(durationMs(k.value.forDuration) / 1000) : 0;
  const what =
    k.case === "lowStock"
      ? `Low stock${k.value.sku ? ` of ${k.value.sku}` : ""}`
      : k.case === "serviceNotServing"
        ? `Service ${k.value.service || "(any)"} not serving`
        : moreKindLabels[k.case];
  return `${what}${secs ? ` for ${secs} s` : ""}`;
}

/** Phone numbers as typed: separated by commas or semicolons (spaces inside a number are fine). */
export const splitPhones = (v: string) =>
  v
    .split(/[,;]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** SMS numbers and Web Push for a rule's receivers. */
export function ChannelReceiverInputs({
  id,
  phones,
  onPhones,
  webPush,
  onWebPush,
  error,
}: {
  id: string;
  phones: string;
  onPhones: (v: string) => void;
  webPush: boolean;
  onWebPush: (v: boolean) => void;
  error: (field: string) => string | undefined;
}) {
  return (
    <>
      <FormField id={`${id}-phones`} label="SMS to" hint='E.164, separated by commas ("+420601234567")' error={error("receivers.phone_numbers")}>
        <input id={`${id}-phones`} value={phones} onChange={(e) => onPhones(e.target.value)} placeholder="+420601234567" />
      </FormField>
      <FormField id={`${id}-push`} label="Web Push to every browser that turned it on" error={error("receivers.web_push")}>
        <input id={`${id}-push`} type="checkbox" checked={webPush} onChange={(e) => onWebPush(e.target.checked)} />
      </FormField>
    </>
  );
}
