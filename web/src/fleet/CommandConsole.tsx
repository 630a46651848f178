// The kiosk page's command console (operators and admins: send, follow each command's
// lifecycle live from WatchKiosk, cancel) and its command history (everyone who may see the
// kiosk; ListCommands' newest page, kept current by the same stream).
import { useId, useState } from "react";
import { useMutation } from "@connectrpc/connect-query";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { CommandService, type Command } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatDateTime } from "../ui/format";
import { ActionFields, CommandStateBadge, TtlField, cancelable, describeAction, emptyAction, toAction, type ActionDraft } from "./CommandAction";
import { commandHistorySize, useKioskCommands } from "./use-fleet";

export function CommandConsole({ kioskId, online }: { kioskId: string; online: boolean }) {
  const id = useId();
  const [draft, setDraft] = useState<ActionDraft>(emptyAction);
  const [ttlSeconds, setTtlSeconds] = useState(600);
  const [lastId, setLastId] = useState<string>();
  const commands = useKioskCommands(kioskId);
  const send = useMutation(CommandService.method.sendCommand, { onSuccess: (r) => setLastId(r.command?.commandId) });
  const fields = send.error ? describeError(send.error).fields : {};
  // The stream updates the history; the answer to SendCommand is only the first state.
  const last = commands.data?.commands.find((c) => c.commandId === lastId) ?? (send.data?.command?.commandId === lastId ? send.data?.command : undefined);
  return (
    <section className="card" aria-labelledby={`${id}-title`} data-testid="command-console">
      <h2 id={`${id}-title`} className="card-title">
        Command console
      </h2>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          // A fresh key per click: a retried request is one command, a second click another.
          send.mutate({ kioskId, action: toAction(draft), ttl: durationFromMs(ttlSeconds * 1_000), idempotencyKey: crypto.randomUUID() });
        }}
      >
        <ActionFields draft={draft} onChange={setDraft} fieldErrors={fields} />
        <TtlField value={ttlSeconds} onChange={setTtlSeconds} />
        <button type="submit" className="button button-primary" disabled={send.isPending}>
          {send.isPending ? "Sending…" : "Send command"}
        </button>
      </form>
      {!online && <p className="field-hint">The kiosk is not connected: the command waits for it until it gives up.</p>}
      {send.error && <ErrorNotice error={send.error} compact />}
      {last && (
        <div className="notice notice-info" role="status" data-testid="last-command">
          <div className="notice-body">
            <p className="notice-title">
              {describeAction(last.action)} · <CommandStateBadge state={last.state} outcome={last.outcome} />
            </p>
            <p className="notice-detail">
              <CommandTimeline command={last} />
            </p>
          </div>
          <CancelButton command={last} />
        </div>
      )}
    </section>
  );
}

function CommandTimeline({ command }: { command: Command }) {
  const steps: [string, typeof command.createTime][] = [
    ["queued", command.createTime],
    ["sent", command.sentTime],
    ["acknowledged", command.ackTime],
    ["finished", command.finishTime],
  ];
  return (
    <>
      {steps
        .filter(([, t]) => t)
        .map(([label, t]) => `${label} ${formatDateTime(t)}`)
        .join(" → ")}
      {command.errorMessage && ` · ${command.errorMessage}`}
    </>
  );
}

function CancelButton({ command }: { command: Command }) {
  const canCancel = useCan(CommandService.method.cancelCommand);
  const cancel = useMutation(CommandService.method.cancelCommand);
  if (!canCancel || !cancelable(command.state)) return null;
  return (
    <>
      <button type="button" className="button button-small button-danger" disabled={cancel.isPending} onClick={() => cancel.mutate({ commandId: command.commandId })}>
        Cancel
      </button>
      {cancel.error && <ErrorNotice error={cancel.error} compact />}
    </>
  );
}

export function CommandHistory({ kioskId }: { kioskId: string }) {
  const id = useId();
  const commands = useKioskCommands(kioskId);
  const list = commands.data?.commands ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        Command history
      </h2>
      {commands.error && <ErrorNotice error={commands.error} onRetry={() => void commands.refetch()} compact />}
      <div className="table-wrap">
        <table className="table table-dense">
          <thead>
            <tr>
              <th scope="col">Sent</th>
              <th scope="col">Command</th>
              <th scope="col">State</th>
              <th scope="col">Detail</th>
              <th scope="col" className="actions">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {commands.isPending && <SkeletonRows rows={4} columns={5} />}
            {list.map((c) => (
              <tr key={c.commandId} data-testid="command-row">
                <td className="nowrap" title={formatDateTime(c.createTime)}>
                  {formatAgo(c.createTime)}
                </td>
                <td>
                  {describeAction(c.action)}
                  {c.jobId && <div className="muted small">job {c.jobId.slice(0, 8)}</div>}
                </td>
                <td>
                  <CommandStateBadge state={c.state} outcome={c.outcome} />
                </td>
                <td className="small">
                  {c.errorMessage || (c.result && Object.keys(c.result).length ? <code>{JSON.stringify(c.result)}</code> : <span className="muted">{c.deliveryAttempts ? `${c.deliveryAttempts} deliveries` : "—"}</span>)}
                </td>
                <td className="actions">
                  <CancelButton command={c} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!commands.isPending && list.length === 0 && !commands.error && (
          <EmptyState icon="jobs" title="No commands yet">
            <p>Commands sent to this kiosk, by hand or by a job, appear here as they happen.</p>
          </EmptyState>
        )}
      </div>
      {list.length === commandHistorySize && <p className="field-hint">The newest {commandHistorySize} commands.</p>}
    </section>
  );
}
