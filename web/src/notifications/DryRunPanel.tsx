// The rules editor's dry run: which alerts the rule being edited would have fired over the last
// hour of events (RuleService.DryRunRule), shown before it is saved. The result says when it was
// run and is marked stale once the form changes.
import { useId } from "react";
import type { DryRunRuleResponse } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";

export function DryRunPanel({ result, stale }: { result: DryRunRuleResponse; stale: boolean }) {
  const id = useId();
  const groups = Object.entries(result.alertsByGroup).sort((a, b) => b[1] - a[1]);
  return (
    <section className={`notice ${result.alertCount > 0 ? "notice-warn" : "notice-info"} dry-run`} aria-labelledby={`${id}-title`} data-testid="dry-run">
      <div className="notice-body">
        <p id={`${id}-title`} className="notice-title">
          {result.alertCount === 0
            ? "Over the last hour this rule would have fired no alert."
            : `Over the last hour this rule would have fired ${formatNumber(result.alertCount)} alert${result.alertCount === 1 ? "" : "s"}${groups.length > 1 ? ` in ${groups.length} groups` : ""}.`}
          {stale && <span className="muted"> (The form changed since — run it again.)</span>}
        </p>
        <p className="notice-detail">
          {formatNumber(result.eventsEvaluated)} events from {formatDateTime(result.windowStart)} to {formatDateTime(result.windowEnd)}; {formatNumber(result.kiosksMatched)} of their kiosks selected by the rule.
          {groups.length > 0 && ` By group: ${groups.map(([g, n]) => `${g || "no group"} ${formatNumber(n)}`).join(", ")}.`}
        </p>
        {result.samples.length > 0 && (
          <div className="table-wrap">
            <table className="table table-compact">
              <thead>
                <tr>
                  <th scope="col">Kiosk</th>
                  <th scope="col">Group</th>
                  <th scope="col">Would have fired</th>
                  <th scope="col">Cleared</th>
                  <th scope="col">Summary</th>
                </tr>
              </thead>
              <tbody>
                {result.samples.map((a, i) => (
                  <tr key={`${a.kioskId}-${i}`} data-testid="dry-run-alert">
                    <td className="mono nowrap">{a.kioskId}</td>
                    <td>{a.groupId || <span className="muted">—</span>}</td>
                    <td className="nowrap" title={formatDateTime(a.fireTime)}>
                      {formatAgo(a.fireTime)}
                    </td>
                    <td className="nowrap" title={formatDateTime(a.resolveTime)}>
                      {a.resolveTime ? formatAgo(a.resolveTime) : <span className="muted">still holding</span>}
                    </td>
                    <td className="small">{a.summary}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {result.alertCount > result.samples.length && (
              <p className="muted small">
                The latest {result.samples.length} of {formatNumber(result.alertCount)}.
              </p>
            )}
          </div>
        )}
      </div>
    </section>
  );
}
