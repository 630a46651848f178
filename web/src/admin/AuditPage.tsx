// The audit log (admins), from two services side by side: auth's (sign-ins, role changes,
// enrollments, revocations) and fleet's (registry changes, commands, configuration, jobs).
// Each keeps its own log with its own pages, so the source is a switch, kept in the URL.
import { Fragment, useId, useState } from "react";
import { useSearchParams } from "react-router";
import { skipToken, useQuery } from "@connectrpc/connect-query";
import { AuditService, type AuditEvent } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { AuditService as FleetAuditService, type AuditEvent as FleetAuditEvent } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { useCan } from "../api/context";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatDateTime } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";

const pageSize = 50;
const commonTypes = { auth: ["login.", "sso.", "token.", "user.", "device.", "key."], fleet: ["kiosk.", "command.", "config.", "job."] } as const;
type Source = keyof typeof commonTypes;

export function AuditPage() {
  const id = useId();
  const [draft, setDraft] = useState({ type: "", actor: "", subject: "" });
  const filter = useDebounced(draft, 300);
  const [params, setParams] = useSearchParams();
  const canFleet = useCan(FleetAuditService.method.listAuditEvents);
  const source: Source = params.get("source") === "fleet" && canFleet ? "fleet" : "auth";
  const pages = usePageTokens(filter, source);
  const input = { ...filter, pageSize, pageToken: pages.token };
  const authEvents = useQuery(AuditService.method.listAuditEvents, source === "auth" ? input : skipToken, { refetchInterval: 15_000 });
  const fleetEvents = useQuery(FleetAuditService.method.listAuditEvents, source === "fleet" ? input : skipToken, { refetchInterval: 15_000 });
  const events = source === "fleet" ? fleetEvents : authEvents;
  const list = events.data?.events ?? [];
  const set = (name: keyof typeof draft) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [name]: e.target.value.trim() }));
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Audit log</h1>
          <p className="page-lede">Newest first. Each event names who acted, on what, from where, and the request id.</p>
        </div>
        {canFleet && (
          <div className="segmented" role="group" aria-label="Source">
            <button type="button" aria-pressed={source === "auth"} onClick={() => setParams({}, { replace: true })}>
              Sign-ins and accounts
            </button>
            <button type="button" aria-pressed={source === "fleet"} onClick={() => setParams({ source: "fleet" }, { replace: true })}>
              Fleet changes
            </button>
          </div>
        )}
      </header>
      <section className="card" aria-labelledby={`${id}-title`}>
        <h2 id={`${id}-title`} className="visually-hidden">
          Events
        </h2>
        <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
          <div className="field">
            <label htmlFor={`${id}-type`}>Type</label>
            <input id={`${id}-type`} list={`${id}-types`} placeholder={source === "fleet" ? "e.g. command. or job.created" : "e.g. login. or user.created"} value={draft.type} onChange={set("type")} />
            <datalist id={`${id}-types`}>
              {commonTypes[source].map((t) => (
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
            <input id={`${id}-subject`} placeholder={source === "fleet" ? "Kiosk, group, command or job id" : "User, kiosk or key id"} value={draft.subject} onChange={set("subject")} />
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
              <p>A type filter matches exactly, or by prefix when it ends in a dot ({source === "fleet" ? "command." : "login."}).</p>
            </EmptyState>
          )}
        </div>
        <Pager pages={pages} nextToken={events.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="events" />
      </section>
    </div>
  );
}

function AuditRow({ event }: { event: AuditEvent | FleetAuditEvent }) {
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
