// The security audit log (admins): sign-ins, role changes, enrollments, revocations.
import { Fragment, useEffect, useId, useState } from "react";
import { useQuery } from "@connectrpc/connect-query";
import { AuditService, type AuditEvent } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatDateTime } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";

const pageSize = 50;
const commonTypes = ["login.", "token.", "user.", "device.", "key."];

export function AuditPage() {
  const id = useId();
  const [draft, setDraft] = useState({ type: "", actor: "", subject: "" });
  const filter = useDebounced(draft, 300);
  const pages = usePageTokens();
  const { reset } = pages;
  useEffect(reset, [filter, reset]);
  const events = useQuery(AuditService.method.listAuditEvents, { ...filter, pageSize, pageToken: pages.token }, { refetchInterval: 15_000 });
  const list = events.data?.events ?? [];
  const set = (name: keyof typeof draft) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [name]: e.target.value.trim() }));
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Audit log</h1>
          <p className="page-lede">Security events, newest first. Each names who acted, on what, from where, and the request id.</p>
        </div>
      </header>
      <section className="card" aria-labelledby={`${id}-title`}>
        <h2 id={`${id}-title`} className="visually-hidden">
          Events
        </h2>
        <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
          <div className="field">
            <label htmlFor={`${id}-type`}>Type</label>
            <input id={`${id}-type`} list={`${id}-types`} placeholder="e.g. login. or user.created" value={draft.type} onChange={set("type")} />
            <datalist id={`${id}-types`}>
              {commonTypes.map((t) => (
                <option key={t} value={t} />
              ))}
            </datalist>
          </div>
          <div className="field">
            <label htmlFor={`${id}-actor`}>Actor</label>
            <input id={`${id}-actor`} placeholder="User id or device:<kiosk>" value={draft.actor} onChange={set("actor")} />
          </div>
          <div className="field">
            <label htmlFor={`${id}-subject`}>Subject</label>
            <input id={`${id}-subject`} placeholder="User, kiosk or key id" value={draft.subject} onChange={set("subject")} />
          </div>
        </form>
        {events.error && <ErrorNotice error={events.error} onRetry={() => void events.refetch()} compact />}
        <div className="table-wrap">
          <table className="table table-dense">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">Actor</th>
                <th scope="col">Subject</th>
                <th scope="col">From</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {events.isPending && <SkeletonRows rows={8} columns={6} />}
              {list.map((e) => (
                <AuditRow key={String(e.eventId)} event={e} />
              ))}
            </tbody>
          </table>
          {!events.isPending && list.length === 0 && !events.error && (
            <EmptyState icon="audit" title="No events match">
              <p>A type filter matches exactly, or by prefix when it ends in a dot (login.).</p>
            </EmptyState>
          )}
        </div>
        <Pager pages={pages} nextToken={events.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="events" />
      </section>
    </div>
  );
}

function AuditRow({ event }: { event: AuditEvent }) {
  const details = parseDetails(event.detailsJson);
  return (
    <tr>
      <td className="nowrap">{formatDateTime(event.time)}</td>
      <td>
        <span className={`tag tag-${event.type.split(".")[0]}`}>{event.type}</span>
      </td>
      <td className="mono small ids">{event.actor || <span className="muted">anonymous</span>}</td>
      <td className="mono small ids">{event.subject || <span className="muted">—</span>}</td>
      <td className="small">
        {event.ip}
        <div className="muted mono" title="Request id">
          {event.requestId.slice(0, 8)}
        </div>
      </td>
      <td className="small">
        {details.length === 0 ? (
          <span className="muted">—</span>
        ) : (
          <dl className="kv">
            {details.map(([k, v]) => (
              <Fragment key={k}>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </Fragment>
            ))}
          </dl>
        )}
      </td>
    </tr>
  );
}

function parseDetails(json: string): [string, string][] {
  if (!json) return [];
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value !== "object" || value === null) return [["value", String(value)]];
    return Object.entries(value).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]);
  } catch {
    // Not JSON after all: show it as it is rather than nothing.
    return [["details", json]];
  }
}
