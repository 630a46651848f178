// Fleet overview: counts, then every kiosk as a table or a map, with search and filters
// kept in the URL (a filtered view can be bookmarked or shared).
import { lazy, Suspense, useCallback, useEffect, useId, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { ErrorNotice, EmptyState, Loading, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatNumber } from "../ui/format";
import { Icon } from "../ui/icons";
import { Pager, usePageTokens } from "../ui/pager";
import { StatusBadge } from "./StatusBadge";
import { filterableStatuses, KioskStatus, statusFromParam, statusInfo } from "./status";
import type { FleetSummary } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { InventoryService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { useQuery } from "@connectrpc/connect-query";
import { useCan } from "../api/context";
import { LiveBadge } from "../ui/LiveBadge";
import { kioskPageSize, useFleetLive, useFleetSummary, useKioskLocations, useKioskPage, type FleetFilter } from "./use-fleet";

const KioskMap = lazy(() => import("./KioskMap"));

export function FleetPage() {
  const [params, setParams] = useSearchParams();
  const filter: FleetFilter = useMemo(
    () => ({
      query: params.get("q") ?? "",
      status: statusFromParam(params.get("status")),
      groupId: params.get("group") ?? "",
      tag: params.get("tag") ?? "",
      orderBy: sortOrders.includes(params.get("sort") ?? "") ? (params.get("sort") ?? "") : "",
    }),
    [params],
  );
  const view = params.get("view") === "map" ? "map" : "table";
  const live = useFleetLive();
  const summary = useFleetSummary();
  const statuses = [...filterableStatuses];
  // One update for several parameters: react-router's functional updates do not compose
  // within one event.
  const setParam = useCallback(
    (changes: Record<string, string>) =>
      setParams(
        (p) => {
          const next = new URLSearchParams(p);
          for (const [name, value] of Object.entries(changes)) {
            if (value) next.set(name, value);
            else next.delete(name);
          }
          return next;
        },
        { replace: true },
      ),
    [setParams],
  );


  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Fleet</h1>
          <p className="page-lede">Every kiosk, its status and where it stands.</p>
        </div>
        <LiveBadge state={live} />
      </header>
      {summary.error && !summary.data && <ErrorNotice error={summary.error} onRetry={() => void summary.refetch()} compact />}
      <FleetCountCards summary={summary.data} onPick={(status) => setParam({ status: statusInfo[status].param })} active={filter.status} />
      <section className="card" aria-labelledby="kiosks-heading">
        <div className="card-toolbar">
          <h2 id="kiosks-heading" className="card-title">
            Kiosks
          </h2>
          <div className="segmented" role="group" aria-label="View">
            <button type="button" aria-pressed={view === "table"} onClick={() => setParam({ view: "" })}>
              <Icon name="table" /> Table
            </button>
            <button type="button" aria-pressed={view === "map"} onClick={() => setParam({ view: "map" })}>
              <Icon name="map" /> Map
            </button>
          </div>
        </div>
        <FleetFilters filter={filter} setParam={setParam} statuses={statuses} />
        {view === "table" ? <KioskTable filter={filter} onSort={(orderBy) => setParam({ sort: orderBy })} /> : <KioskMapView filter={filter} />}
      </section>
    </div>
  );
}

function FleetCountCards({ summary, onPick, active }: { summary: FleetSummary | undefined; onPick: (s: KioskStatus) => void; active: KioskStatus }) {
  const total = summary?.total;
  // Fleet's own threshold (FleetSummary.thresholds), never one of the web's.
  const lowPaper = summary?.thresholds ? `paper below ${formatNumber(summary.thresholds.lowPaperPercent)}%` : "paper running low";
  const cards: { status: KioskStatus; label: string; count: number | undefined; hint: string }[] = [
    { status: KioskStatus.ONLINE, label: "Online", count: summary?.online, hint: "streaming, alerting ones included" },
    { status: KioskStatus.OFFLINE, label: "Offline", count: summary?.offline, hint: "stream closed or lost" },
    { status: KioskStatus.ALERTING, label: "Alerting", count: summary?.alerting, hint: `a fault, or ${lowPaper}` },
    { status: KioskStatus.PROVISIONED, label: "Not yet connected", count: summary?.provisioned, hint: "registered, never seen" },
  ];
  const skeleton = <span className="skeleton skeleton-number" />;
  return (
    <div className="stat-grid" aria-live="polite">
      {cards.map(({ status, label, count, hint }) => (
        <button key={status} type="button" className={`stat-card tone-border-${statusInfo[status].tone}`} aria-pressed={active === status} onClick={() => onPick(active === status ? KioskStatus.UNSPECIFIED : status)}>
          <span className="stat-label">
            <span className={`legend-dot tone-${statusInfo[status].tone}`} aria-hidden="true" />
            {label}
          </span>
          <span className="stat-value" data-testid={`count-${statusInfo[status].param}`}>
            {count === undefined ? skeleton : formatNumber(count)}
          </span>
          <span className="stat-hint">
            {count !== undefined && total ? `${Math.round((count / total) * 100)}% · ` : ""}
            {hint}
          </span>
        </button>
      ))}
      <div className="stat-card stat-card-static">
        <span className="stat-label">
          <Icon name="box" size={14} /> Low paper
        </span>
        <span className="stat-value" data-testid="count-low-paper">
          {summary === undefined ? skeleton : formatNumber(summary.lowPaper)}
        </span>
        <span className="stat-hint">
          {lowPaper} · of {summary ? formatNumber(summary.total) : "…"} kiosks
        </span>
      </div>
      <LowStockCard />
    </div>
  );
}

/** Products at or below their low-stock threshold, over every kiosk (catalog; no stream, so re-read every 30 s). */
function LowStockCard() {
  const allowed = useCan(InventoryService.method.listStock);
  const low = useQuery(InventoryService.method.listStock, { lowOnly: true, pageSize: 1 }, { enabled: allowed, refetchInterval: 30_000 });
  if (!allowed) return null;
  return (
    <Link to="/catalog" className="stat-card stat-card-static">
      <span className="stat-label">
        <Icon name="box" size={14} /> Low stock
      </span>
      <span className="stat-value" data-testid="count-low-stock">
        {low.data ? formatNumber(low.data.totalSize) : low.isError ? "–" : <span className="skeleton skeleton-number" />}
      </span>
      <span className="stat-hint">{low.isError ? "catalog cannot be reached" : "products at or below their threshold, all kiosks"}</span>
    </Link>
  );
}

function FleetFilters({ filter, setParam, statuses }: { filter: FleetFilter; setParam: (changes: Record<string, string>) => void; statuses: KioskStatus[] }) {
  const id = useId();
  const [query, setQuery] = useState(filter.query);
  // Search as the person types, once they pause.
  useEffect(() => {
    if (query === filter.query) return;
    const timer = setTimeout(() => setParam({ q: query.trim() }), 250);
    return () => clearTimeout(timer);
  }, [query, filter.query, setParam]);
  const active = filter.query || filter.status || filter.groupId || filter.tag;
  return (
    <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
      <div className="field field-grow">
        <label htmlFor={`${id}-q`}>Search</label>
        <div className="input-icon">
          <Icon name="search" />
          <input id={`${id}-q`} type="search" placeholder="Kiosk id, name or address" value={query} onChange={(e) => setQuery(e.target.value)} />
        </div>
      </div>
      <div className="field">
        <label htmlFor={`${id}-status`}>Status</label>
        <select id={`${id}-status`} value={statusInfo[filter.status].param} onChange={(e) => setParam({ status: e.target.value })}>
          <option value="">Any status</option>
          {statuses.map((s) => (
            <option key={s} value={statusInfo[s].param}>
              {statusInfo[s].label}
            </option>
          ))}
        </select>
      </div>
      <TextFilter id={`${id}-group`} label="Group" placeholder="e.g. sim-cz" value={filter.groupId} onCommit={(v) => setParam({ group: v })} />
      <TextFilter id={`${id}-tag`} label="Tag" placeholder="e.g. tickets" value={filter.tag} onCommit={(v) => setParam({ tag: v })} />
      {active && (
        <button
          type="button"
          className="button button-quiet filters-clear"
          onClick={() => {
            setQuery("");
            setParam({ q: "", status: "", group: "", tag: "" });
          }}
        >
          Clear filters
        </button>
      )}
    </form>
  );
}

/** A filter applied on Enter or when focus leaves (exact match at the server). */
function TextFilter({ id, label, placeholder, value, onCommit }: { id: string; label: string; placeholder: string; value: string; onCommit: (v: string) => void }) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  const commit = () => draft.trim() !== value && onCommit(draft.trim());
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={draft}
        placeholder={placeholder}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === "Enter") commit();
        }}
      />
    </div>
  );
}

/** The orders the table offers (fleet's ListKiosks order_by); "" is by kiosk id. */
const sortOrders = ["", "name", "name desc", "last_seen_time", "last_seen_time desc"];

/** A column header that sorts: first click ascending (newest first for times), then the other way. */
function SortHeader({ label, field, current, onSort, newestFirst }: { label: string; field: string; current: string; onSort: (orderBy: string) => void; newestFirst?: boolean }) {
  const asc = current === field;
  const desc = current === `${field} desc`;
  const next = newestFirst ? (desc ? field : `${field} desc`) : asc ? `${field} desc` : field;
  return (
    <th scope="col" aria-sort={asc ? "ascending" : desc ? "descending" : "none"}>
      <button type="button" className="sort-button" onClick={() => onSort(next)} title={`Sort by ${label.toLowerCase()}`}>
        {label} {asc ? "▲" : desc ? "▼" : ""}
      </button>
    </th>
  );
}

function KioskTable({ filter, onSort }: { filter: FleetFilter; onSort: (orderBy: string) => void }) {
  const pages = usePageTokens(filter);
  const page = useKioskPage(filter, pages.token);
  const kiosks = page.data?.kiosks ?? [];
  const columns = 7;
  return (
    <>
      {page.error && <ErrorNotice error={page.error} onRetry={() => void page.refetch()} compact />}
      <div className="table-wrap">
        <table className="table" aria-busy={page.isFetching} aria-describedby="kiosks-heading">
          <thead>
            <tr>
              <th scope="col">Status</th>
              <SortHeader label="Kiosk" field="name" current={filter.orderBy ?? ""} onSort={onSort} />
              <th scope="col">Location</th>
              <th scope="col">Group</th>
              <th scope="col">Tags</th>
              <th scope="col" className="num">
                Paper
              </th>
              <SortHeader label="Last seen" field="last_seen_time" current={filter.orderBy ?? ""} onSort={onSort} newestFirst />
            </tr>
          </thead>
          <tbody>
            {page.isPending && <SkeletonRows rows={10} columns={columns} />}
            {kiosks.map((k) => (
              <tr key={k.kioskId} data-testid="kiosk-row" data-status={statusInfo[k.status].param}>
                <td>
                  <StatusBadge status={k.status} />
                </td>
                <td>
                  <Link to={`/kiosks/${encodeURIComponent(k.kioskId)}`} className="row-link">
                    {k.name || k.kioskId}
                  </Link>
                  <div className="muted mono">{k.kioskId}</div>
                </td>
                <td>{k.location?.address || <span className="muted">—</span>}</td>
                <td>{k.groupId || <span className="muted">—</span>}</td>
                <td>
                  <div className="tags">
                    {k.tags.map((t) => (
                      <span key={t} className="tag">
                        {t}
                      </span>
                    ))}
                  </div>
                </td>
                <td className="num">{k.state?.sampleTime ? `${Math.round(k.state.paperLevelPercent)}%` : <span className="muted">—</span>}</td>
                <td className="nowrap">{formatAgo(k.lastSeenTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!page.isPending && kiosks.length === 0 && !page.error && (
          <EmptyState icon="kiosk" title={filter.query || filter.status || filter.groupId || filter.tag ? "No kiosk matches these filters" : "No kiosks yet"}>
            {filter.query || filter.status || filter.groupId || filter.tag ? (
              <p>Try a shorter search or clear a filter.</p>
            ) : (
              <p>
                Register a kiosk, then give it an enrollment code from <Link to="/admin/enrollment">Enrollment</Link>. It appears here as soon as it is registered.
              </p>
            )}
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={page.data?.nextPageToken} shown={kiosks.length} pageSize={kioskPageSize} total={page.data?.totalSize} noun="kiosks" />
    </>
  );
}

function KioskMapView({ filter }: { filter: FleetFilter }) {
  const locations = useKioskLocations(filter, true);
  if (locations.error && !locations.data) return <ErrorNotice error={locations.error} onRetry={() => void locations.refetch()} />;
  if (!locations.data) return <Loading label="Loading kiosk locations…" />;
  return (
    <Suspense fallback={<Loading label="Drawing the map…" />}>
      <KioskMap points={locations.data.points} total={locations.data.total} />
    </Suspense>
  );
}
