// A bulk action over a query's kiosks: pick the change, see the dry run (how many, a
// sample with what changes for each, whether a second admin must approve), then run it —
// or, for a dangerous one, leave it in the approval queue (/fleet/approvals).
import { useId, useState } from "react";
import { Link } from "react-router";
import { useMutation } from "@connectrpc/connect-query";
import type { JsonObject } from "@bufbuild/protobuf";
import { BulkActionService, BulkActionState, type BulkAction, type PlanBulkActionRequest } from "@adminkiosk/proto/adminkiosk/fleet/v1/bulk_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PlanBulkActionRequestSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/bulk_pb";
import { describeError } from "../../api/errors";
import { ErrorNotice } from "../../ui/feedback";
import { FormField } from "../../ui/form";
import { formatNumber } from "../../ui/format";
import { ActionFields, emptyAction, toAction, type ActionDraft } from "../CommandAction";

type Kind = "tags" | "group" | "config" | "command" | "revoke";
const kinds: { kind: Kind; label: string }[] = [
  { kind: "tags", label: "Change tags" },
  { kind: "group", label: "Move to a group" },
  { kind: "config", label: "Change configuration" },
  { kind: "command", label: "Send a command" },
  { kind: "revoke", label: "Delete and revoke" },
];

const splitTags = (s: string) => s.split(/[\s,]+/).filter(Boolean);

export function BulkActionDialog({ query, total, onClose }: { query: string; total: number; onClose: () => void }) {
  const id = useId();
  const [kind, setKind] = useState<Kind>("tags");
  const [add, setAdd] = useState("");
  const [remove, setRemove] = useState("");
  const [groupId, setGroupId] = useState("");
  const [patch, setPatch] = useState('{\n  "volume": 5\n}');
  const [action, setAction] = useState<ActionDraft>(emptyAction);
  const [description, setDescription] = useState("");
  const [localError, setLocalError] = useState("");
  const plan = useMutation(BulkActionService.method.planBulkAction);
  const run = useMutation(BulkActionService.method.runBulkAction);
  const planned: BulkAction | undefined = run.data?.bulkAction ?? plan.data?.bulkAction;
  const fieldErrors = plan.error ? describeError(plan.error).fields : {};

  const request = (): MessageInitShape<typeof PlanBulkActionRequestSchema> | undefined => {
    const base = { query, description };
    switch (kind) {
      case "tags":
        return { ...base, change: { change: { case: "tags", value: { add: splitTags(add), remove: splitTags(remove) } } } };
      case "group":
        return { ...base, change: { change: { case: "group", value: { groupId } } } };
      case "config": {
        try {
          const parsed = JSON.parse(patch) as JsonObject;
          return { ...base, change: { change: { case: "configPatch", value: parsed } } };
        } catch {
          setLocalError("The configuration patch must be a JSON object.");
          return undefined;
        }
      }
      case "command":
        return { ...base, change: { change: { case: "command", value: toAction(action) } } };
      case "revoke":
        return { ...base, change: { change: { case: "revoke", value: { reason: description } } } };
    }
  };

  return (
    <section className="card dry-run" role="dialog" aria-labelledby={`${id}-title`} data-testid="bulk-dialog">
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Bulk action on the query's {formatNumber(total)} kiosks
        </h2>
        <button type="button" className="button button-small button-quiet" onClick={onClose}>
          Close
        </button>
      </div>
      {!planned && (
        <form
          className="form"
          onSubmit={(e) => {
            e.preventDefault();
            setLocalError("");
            const req = request();
            if (req) plan.mutate(req as PlanBulkActionRequest);
          }}
        >
          <div className="segmented" role="radiogroup" aria-label="What to do">
            {kinds.map((k) => (
              <label key={k.kind} className={kind === k.kind ? "tab tab-active" : "tab"}>
                <input type="radio" className="visually-hidden" name={`${id}-kind`} checked={kind === k.kind} onChange={() => setKind(k.kind)} />
                {k.label}
              </label>
            ))}
          </div>
          {kind === "tags" && (
            <div className="form-columns">
              <FormField id={`${id}-add`} label="Add tags" hint="separated by spaces or commas" error={fieldErrors["change.tags.add[0]"]}>
                <input id={`${id}-add`} value={add} onChange={(e) => setAdd(e.target.value)} data-testid="bulk-add-tags" />
              </FormField>
              <FormField id={`${id}-remove`} label="Remove tags" error={fieldErrors["change.tags.remove[0]"]}>
                <input id={`${id}-remove`} value={remove} onChange={(e) => setRemove(e.target.value)} />
              </FormField>
            </div>
          )}
          {kind === "group" && (
            <FormField id={`${id}-group`} label="Group" hint="empty: no group" error={fieldErrors["change.group.group_id"]}>
              <input id={`${id}-group`} value={groupId} onChange={(e) => setGroupId(e.target.value)} />
            </FormField>
          )}
          {kind === "config" && (
            <FormField id={`${id}-patch`} label="Merged into each kiosk's own configuration (null removes a key)" error={localError || fieldErrors["change.config_patch"]}>
              <textarea id={`${id}-patch`} className="json-editor mono" rows={6} value={patch} onChange={(e) => setPatch(e.target.value)} />
            </FormField>
          )}
          {kind === "command" && <ActionFields draft={action} onChange={setAction} fieldErrors={fieldErrors} />}
          <FormField id={`${id}-description`} label={kind === "revoke" ? "Reason" : "Description (optional)"}>
            <input id={`${id}-description`} value={description} onChange={(e) => setDescription(e.target.value)} />
          </FormField>
          {plan.error && Object.keys(fieldErrors).length === 0 && <ErrorNotice error={plan.error} compact />}
          <div className="form-actions">
            <button type="submit" className="button button-primary" disabled={plan.isPending} data-testid="bulk-dry-run">
              {plan.isPending ? "Working out the dry run…" : "Dry run"}
            </button>
          </div>
        </form>
      )}
      {planned && <DryRun action={planned} running={run.isPending} onRun={() => run.mutate({ bulkActionId: planned.bulkActionId })} error={run.error} />}
    </section>
  );
}

export function DryRun({ action, running, onRun, error }: { action: BulkAction; running?: boolean; onRun?: () => void; error?: unknown }) {
  const done = action.state === BulkActionState.DONE;
  return (
    <div data-testid="bulk-plan">
      <p>
        <strong data-testid="bulk-count">{formatNumber(action.kioskCount)} kiosks</strong> — {action.summary}
      </p>
      {action.dangerous && !done && (
        <div className="notice notice-warn" role="status">
          <div className="notice-body">
            <p className="notice-title">Needs a second admin</p>
            <p className="notice-detail">
              {action.dangerReason}: it waits in the <Link to="/fleet/approvals">approval queue</Link> until another admin approves it.
            </p>
          </div>
        </div>
      )}
      {done && (
        <div className="notice notice-ok" role="status" data-testid="bulk-done">
          <div className="notice-body">
            <p className="notice-title">
              Done: {formatNumber(action.touched)} kiosks touched{action.skipped ? `, ${formatNumber(action.skipped)} skipped (deleted since the dry run)` : ""}
            </p>
            {action.jobId && (
              <p className="notice-detail">
                The command goes out as <Link to={`/jobs/${action.jobId}`}>a job</Link>.
              </p>
            )}
          </div>
        </div>
      )}
      <table className="table table-compact">
        <caption className="muted small">
          {action.sample.length < action.kioskCount ? `The first ${action.sample.length} of ${formatNumber(action.kioskCount)}` : "Every kiosk"}
        </caption>
        <thead>
          <tr>
            <th scope="col">Kiosk</th>
            <th scope="col">What changes</th>
          </tr>
        </thead>
        <tbody>
          {action.sample.map((s) => (
            <tr key={s.kioskId}>
              <td>
                {s.name} <span className="muted mono small">{s.kioskId}</span>
              </td>
              <td>{s.change}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {error ? <ErrorNotice error={error} compact /> : null}
      {onRun && !done && action.state === BulkActionState.PLANNED && (
        <div className="form-actions">
          <button type="button" className="button button-danger" disabled={running} onClick={onRun} data-testid="bulk-run">
            {running ? "Running…" : `Run on ${formatNumber(action.kioskCount)} kiosks`}
          </button>
        </div>
      )}
    </div>
  );
}
