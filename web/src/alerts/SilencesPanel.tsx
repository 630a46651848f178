// Silences: the form that silences an alert (matchers prefilled from it: its rule's name and
// its kiosk, and its product when it names one; a duration; why) and the list of silences
// with Expire for operators and up. A silenced alert is still listed, marked silenced.
import { useId, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Alert } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { MatchOperator, SilenceService, type Matcher } from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatDateTime } from "../ui/format";
import { alertChanged } from "./alert-feed";

const operatorSigns: Record<MatchOperator, string> = {
  [MatchOperator.UNSPECIFIED]: "?",
  [MatchOperator.EQUAL]: "=",
  [MatchOperator.NOT_EQUAL]: "!=",
  [MatchOperator.REGEX]: "=~",
  [MatchOperator.NOT_REGEX]: "!~",
};

export const describeMatchers = (ms: Matcher[]) => ms.map((m) => `${m.label}${operatorSigns[m.operator]}"${m.value}"`).join(", ");

const durations = [
  { label: "1 hour", hours: 1 },
  { label: "4 hours", hours: 4 },
  { label: "1 day", hours: 24 },
  { label: "1 week", hours: 168 },
];

/** Silences one alert: its rule's alerts for its kiosk (and product), for a chosen time. */
export function SilenceForm({ alert, onDone }: { alert: Alert; onDone: () => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [hours, setHours] = useState("4");
  const [comment, setComment] = useState("");
  const [wholeRule, setWholeRule] = useState(false);
  const matchers = [
    { label: "alertname", operator: MatchOperator.EQUAL, value: alert.ruleName },
    ...(wholeRule ? [] : [{ label: "kiosk_id", operator: MatchOperator.EQUAL, value: alert.kioskId }]),
    ...(!wholeRule && alert.labels["sku"] ? [{ label: "sku", operator: MatchOperator.EQUAL, value: alert.labels["sku"] }] : []),
  ];
  const create = useMutation(SilenceService.method.createSilence, {
    onSuccess: async (r) => {
      if (r.silence) alertChanged({ ...alert, silencedBy: [...alert.silencedBy, r.silence.silenceId] });
      await queryClient.invalidateQueries();
      onDone();
    },
  });
  const fields = create.error ? describeError(create.error).fields : {};
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        Silence “{alert.ruleName}”
      </h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate({ matchers, endTime: timestampFromDate(new Date(Date.now() + Number(hours) * 3_600_000)), comment });
        }}
      >
        <p className="muted small">
          Matches {describeMatchers(matchers.map((m) => ({ ...m, $typeName: "adminkiosk.notifications.v1.Matcher" })))}. Silenced alerts stay listed; nothing is sent about them until the silence ends.
        </p>
        <div className="filters">
          <FormField id={`${id}-for`} label="For" error={fields["end_time"]}>
            <select id={`${id}-for`} value={hours} onChange={(e) => setHours(e.target.value)}>
              {durations.map((d) => (
                <option key={d.hours} value={d.hours}>
                  {d.label}
                </option>
              ))}
            </select>
          </FormField>
          <div className="field-grow">
            <FormField id={`${id}-comment`} label="Why" error={fields["comment"]}>
              <input id={`${id}-comment`} value={comment} onChange={(e) => setComment(e.target.value)} placeholder="e.g. technician on site" />
            </FormField>
          </div>
          <label className="checkbox">
            <input type="checkbox" checked={wholeRule} onChange={(e) => setWholeRule(e.target.checked)} /> Every kiosk of this rule
          </label>
        </div>
        {create.error && <ErrorNotice error={create.error} compact />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={create.isPending}>
            {create.isPending ? "Silencing…" : "Silence"}
          </button>
          <button type="button" className="button button-quiet" onClick={onDone}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}

/** Active and upcoming silences (and, on request, ended ones), with Expire for operators and up. */
export function SilenceList() {
  const id = useId();
  const queryClient = useQueryClient();
  const [includeExpired, setIncludeExpired] = useState(false);
  const canExpire = useCan(SilenceService.method.expireSilence);
  const list = useQuery(SilenceService.method.listSilences, { includeExpired, pageSize: 100 }, { refetchInterval: 10_000 });
  const expire = useMutation(SilenceService.method.expireSilence, { onSuccess: () => queryClient.invalidateQueries() });
  const rows = list.data?.silences ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Silences
        </h2>
        <label className="checkbox">
          <input type="checkbox" checked={includeExpired} onChange={(e) => setIncludeExpired(e.target.checked)} /> Show ended
        </label>
      </div>
      {(list.error ?? expire.error) && <ErrorNotice error={(list.error ?? expire.error)!} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">State</th>
              <th scope="col">Matches</th>
              <th scope="col">Why</th>
              <th scope="col">Ends</th>
              <th scope="col">By</th>
              {canExpire && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {list.isPending && <SkeletonRows rows={2} columns={canExpire ? 6 : 5} />}
            {rows.map((s) => {
              const ended = !s.active && (s.endTime?.seconds ?? 0n) * 1000n <= BigInt(Date.now());
              return (
                <tr key={s.silenceId} data-testid="silence-row">
                  <td>
                    <span className={`badge badge-${s.active ? "warn" : ended ? "neutral" : "new"}`}>
                      <span className="dot" aria-hidden="true" />
                      {s.active ? "Active" : ended ? "Ended" : "Pending"}
                    </span>
                  </td>
                  <td className="mono small">{describeMatchers(s.matchers)}</td>
                  <td>{s.comment}</td>
                  <td className="nowrap">{formatDateTime(s.endTime)}</td>
                  <td className="small">
                    {s.createdBy}
                    {s.expiredBy && <div className="muted small">expired by {s.expiredBy}</div>}
                  </td>
                  {canExpire && (
                    <td>
                      {!ended && (
                        <button type="button" className="button button-small button-quiet" disabled={expire.isPending} onClick={() => expire.mutate({ silenceId: s.silenceId })}>
                          Expire
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
        {!list.isPending && rows.length === 0 && !list.error && (
          <EmptyState icon="alert" title="No silences">
            <p>Silence an alert from the Alerts tab: it stays listed, but nobody is notified until the silence ends.</p>
          </EmptyState>
        )}
      </div>
    </section>
  );
}
