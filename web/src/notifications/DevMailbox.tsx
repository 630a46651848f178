// The development mailbox (what the email channel sent, kept by the SMTP server npm start runs),
// read through notifications (DeliveryService.ListDevMail) like every other call of the app.
// Not in production: notifications answers FailedPrecondition there, shown as such.
import { useId, useState } from "react";
import { Code } from "@connectrpc/connect";
import { useQuery } from "@connectrpc/connect-query";
import { DeliveryService, type DevMail } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";
import { useDebounced } from "../ui/use-debounced";

export function DevMailbox() {
  const id = useId();
  const [draft, setDraft] = useState("");
  const to = useDebounced(draft.trim(), 300);
  const [open, setOpen] = useState<bigint | undefined>();
  const list = useQuery(DeliveryService.method.listDevMail, { to, pageSize: 100 }, { refetchInterval: 5_000 });
  const mails = list.data?.messages ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Dev mailbox
        </h2>
        {list.data && <span className="muted small">{formatNumber(list.data.total)} kept, newest first</span>}
      </div>
      <p className="muted small">Every email notifications sent on this development stack, as the local SMTP server received it. Nothing here leaves the machine.</p>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor={`${id}-to`}>To</label>
          <input id={`${id}-to`} type="email" value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="e.g. oncall@example.com" />
        </div>
      </form>
      {list.error && (
        <ErrorNotice error={list.error} onRetry={() => void list.refetch()} compact titles={{ [Code.FailedPrecondition]: "There is no development mailbox here: email goes to the configured SMTP server." }} />
      )}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Received</th>
              <th scope="col">To</th>
              <th scope="col">Subject</th>
            </tr>
          </thead>
          <tbody>
            {list.isPending && <SkeletonRows rows={4} columns={3} />}
            {mails.map((m) => (
              <MailRow key={m.id.toString()} mail={m} open={open === m.id} onToggle={() => setOpen(open === m.id ? undefined : m.id)} />
            ))}
          </tbody>
        </table>
        {!list.isPending && !list.error && mails.length === 0 && (
          <EmptyState icon="audit" title={to ? `Nothing to ${to}` : "No mail yet"}>
            <p>When a rule emails someone, the message shows up here within a few seconds.</p>
          </EmptyState>
        )}
      </div>
    </section>
  );
}

function MailRow({ mail, open, onToggle }: { mail: DevMail; open: boolean; onToggle: () => void }) {
  return (
    <>
      <tr data-testid="mail-row">
        <td className="nowrap" title={formatDateTime(mail.receiveTime)}>
          {formatAgo(mail.receiveTime)}
        </td>
        <td className="mono small">{mail.to.join(", ")}</td>
        <td>
          <button type="button" className="link-button" aria-expanded={open} onClick={onToggle}>
            {mail.subject || "(no subject)"}
          </button>
          <div className="muted small">from {mail.from}</div>
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={3}>
            <pre className="json mail-text">{mail.text || "(no text part)"}</pre>
          </td>
        </tr>
      )}
    </>
  );
}
