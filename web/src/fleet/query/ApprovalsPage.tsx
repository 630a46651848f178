// The approval queue: dangerous bulk actions waiting for a second admin, and the latest
// ones decided. The planner sees their own but cannot approve them (fleet refuses too).
import { useQuery, useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { BulkActionService, BulkActionState } from "@adminkiosk/proto/adminkiosk/fleet/v1/bulk_pb";
import { useSessionState } from "../../api/context";
import { EmptyState, ErrorNotice, Loading } from "../../ui/feedback";
import { formatAgo } from "../../ui/format";
import { DryRun } from "./BulkActionDialog";

const stateLabels: Record<BulkActionState, string> = {
  [BulkActionState.UNSPECIFIED]: "—",
  [BulkActionState.PLANNED]: "Planned",
  [BulkActionState.AWAITING_APPROVAL]: "Awaiting approval",
  [BulkActionState.RUNNING]: "Running",
  [BulkActionState.DONE]: "Done",
  [BulkActionState.REJECTED]: "Rejected",
  [BulkActionState.EXPIRED]: "Expired",
};

export function ApprovalsPage() {
  const session = useSessionState();
  const me = session.status === "signed-in" ? session.user.userId : "";
  const client = useQueryClient();
  const waiting = useQuery(BulkActionService.method.listBulkActions, { state: BulkActionState.AWAITING_APPROVAL }, { refetchInterval: 10_000 });
  const recent = useQuery(BulkActionService.method.listBulkActions, { pageSize: 20 });
  const approve = useMutation(BulkActionService.method.approveBulkAction, { onSettled: () => void client.invalidateQueries() });
  const reject = useMutation(BulkActionService.method.rejectBulkAction, { onSettled: () => void client.invalidateQueries() });
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Approvals</h1>
          <p className="page-lede">Dangerous bulk actions run only when a second admin approves them.</p>
        </div>
      </header>
      {(approve.error || reject.error) && <ErrorNotice error={approve.error ?? reject.error} compact />}
      <section className="card" aria-label="Waiting for approval">
        <h2 className="card-title">Waiting</h2>
        {waiting.isPending && <Loading label="Loading the queue" />}
        {waiting.error && <ErrorNotice error={waiting.error} onRetry={() => void waiting.refetch()} compact />}
        {waiting.data?.bulkActions.length === 0 && <EmptyState icon="audit" title="Nothing waits for approval" />}
        {waiting.data?.bulkActions.map((a) => (
          <article key={a.bulkActionId} className="card card-muted" data-testid="approval-item">
            <p className="small muted">
              Planned {formatAgo(a.createTime)} by <span className="mono">{a.requestedBy === me ? "you" : a.requestedBy}</span> · query <code>{a.query || "(every kiosk)"}</code>
              {a.description ? ` · ${a.description}` : ""}
            </p>
            <DryRun action={a} />
            <div className="form-actions">
              <button
                type="button"
                className="button button-danger"
                disabled={a.requestedBy === me || approve.isPending}
                title={a.requestedBy === me ? "Another admin must approve what you planned" : undefined}
                onClick={() => approve.mutate({ bulkActionId: a.bulkActionId })}
                data-testid="approve"
              >
                Approve and run
              </button>
              <button type="button" className="button" disabled={reject.isPending} onClick={() => reject.mutate({ bulkActionId: a.bulkActionId })}>
                {a.requestedBy === me ? "Withdraw" : "Reject"}
              </button>
              {a.requestedBy === me && <span className="muted small">Another admin must approve what you planned.</span>}
            </div>
          </article>
        ))}
      </section>
      <section className="card" aria-label="Latest bulk actions">
        <h2 className="card-title">Latest</h2>
        <div className="table-wrap">
          <table className="table table-compact">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">What</th>
                <th scope="col">Kiosks</th>
                <th scope="col">State</th>
                <th scope="col">By</th>
              </tr>
            </thead>
            <tbody>
              {recent.data?.bulkActions.map((a) => (
                <tr key={a.bulkActionId}>
                  <td className="nowrap">{formatAgo(a.createTime)}</td>
                  <td>{a.summary}</td>
                  <td>
                    {a.state === BulkActionState.DONE ? `${a.touched} touched${a.skipped ? `, ${a.skipped} skipped` : ""}` : a.kioskCount}
                  </td>
                  <td>{stateLabels[a.state]}</td>
                  <td className="small mono">
                    {a.requestedBy === me ? "you" : a.requestedBy}
                    {a.approvedBy ? ` · approved by ${a.approvedBy === me ? "you" : a.approvedBy}` : ""}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </div>
  );
}
