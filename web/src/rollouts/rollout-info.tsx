// How a rollout's state, waves and gate metrics read.
import { RolloutState, type GateMetric, type Rollout, type RolloutTarget } from "@adminkiosk/proto/adminkiosk/fleet/v1/rollouts_pb";

export const rolloutStateInfo: Record<RolloutState, { label: string; tone: string; param: string }> = {
  [RolloutState.UNSPECIFIED]: { label: "Unknown", tone: "neutral", param: "unknown" },
  [RolloutState.RUNNING]: { label: "Running", tone: "new", param: "running" },
  [RolloutState.PAUSED]: { label: "Paused", tone: "warn", param: "paused" },
  [RolloutState.COMPLETED]: { label: "Completed", tone: "ok", param: "completed" },
  [RolloutState.CANCELED]: { label: "Canceled", tone: "off", param: "canceled" },
  [RolloutState.ROLLED_BACK]: { label: "Rolled back", tone: "alert", param: "rolled-back" },
};

export const rolloutFinished = (s: RolloutState) => s === RolloutState.COMPLETED || s === RolloutState.CANCELED || s === RolloutState.ROLLED_BACK;

export function RolloutStateBadge({ state }: { state: RolloutState }) {
  const info = rolloutStateInfo[state];
  return (
    <span className={`badge badge-${info.tone}`} data-testid="rollout-state" data-state={info.param}>
      <span className="dot" aria-hidden="true" />
      {info.label}
    </span>
  );
}

export function describeRolloutTarget(t: RolloutTarget | undefined, rollbackOf = ""): string {
  if (rollbackOf) return `the kiosks rollout ${rollbackOf.slice(0, 8)} updated`;
  if (!t) return "—";
  const parts = [
    t.groupId && `group ${t.groupId}`,
    t.tags.length > 0 && `tags ${t.tags.join(", ")}`,
    t.hardwareModel && `model ${t.hardwareModel}`,
    t.currentVersion && `on ${t.currentVersion}`,
    t.query && `matching “${t.query}”`,
  ].filter(Boolean);
  return parts.join(" and ") || "—";
}

export const metricLabels: Record<string, string> = {
  install_failure_share: "Install failures and reverts",
  fault_rate: "App errors, printer and scanner faults per sample",
  sales_per_kiosk_hour: "Sales per kiosk-hour",
  payment_failure_rate: "Payment failures per order",
  conversion: "Checkout conversion",
};

export const formatMetric = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toFixed(3));

export const metricVerdict = (m: GateMetric) => (!m.judged ? "not judged yet" : m.passed ? "passed" : "failed");

/** Kiosks installed of all targeted. */
export function rolloutProgress(r: Rollout) {
  const installed = r.waveStatus.reduce((a, w) => a + w.installed, 0);
  return { installed, total: r.total };
}
