// The fleet query page: the query bar (with completion), the matching kiosks in the
// query's order, its stats as a table and a chart, saved views, a shareable link
// (/fleet/query?q=… or ?view=…), and for admins a bulk action over the match.
import { useEffect, useId, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { Code, ConnectError } from "@connectrpc/connect";
import { BulkActionService } from "@adminkiosk/proto/adminkiosk/fleet/v1/bulk_pb";
import { FleetQueryService, type QueryStats } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { useCan } from "../../api/context";
import { describeError } from "../../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../../ui/feedback";
import { formatAgo, formatNumber } from "../../ui/format";
import { StatusBadge } from "../StatusBadge";
import { BulkActionDialog } from "./BulkActionDialog";
import { errorOffset } from "./completion";
import { QueryBar } from "./QueryBar";
import "./query.css";

const pageSize = 50;

export function QueryPage() {
  const [params, setParams] = useSearchParams();
  const viewId = params.get("view") ?? "";
  const view = useQuery(FleetQueryService.method.getSavedView, { viewId }, { enabled: viewId !== "" });
  const query = params.get("q") ?? view.data?.view?.query ?? "";
  const [draft, setDraft] = useState(query);
  useEffect(() => setDraft(query), [query]);
  const language = useQuery(FleetQueryService.method.getQueryLanguage, {}, { staleTime: Infinity });
  const [pageToken, setPageToken] = useState("");
  useEffect(() => setPageToken(""), [query]);
  const result = useQuery(FleetQueryService.method.queryKiosks, { query, pageSize, pageToken }, { enabled: params.has("q") || view.isSuccess, retry: false });
  const canBulk = useCan(BulkActionService.method.planBulkAction);
  const [bulkOpen, setBulkOpen] = useState(false);
  const queryError = result.error && ConnectError.from(result.error).code === Code.InvalidArgument ? describeError(result.error).fields["query"] : undefined;
  const run = (q: string) => setParams({ q }, { replace: false });

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Fleet query</h1>
          <p className="page-lede">
            Filter, sort and total the fleet in one line (the language: docs/fleet-query.md). Enter runs it; the bar suggests as you type.
          </p>
        </div>
        <div className="header-actions">
          {canBulk && result.data && result.data.totalSize > 0 && (
            <button type="button" className="button button-primary" onClick={() => setBulkOpen(true)} data-testid="bulk-open">
              Bulk action on {formatNumber(result.data.totalSize)}
            </button>
          )}
        </div>
      </header>
      <section className="card">
        <QueryBar value={draft} onChange={setDraft} onRun={run} language={language.data} invalidAt={queryError ? errorOffset(queryError) : undefined} />
        <div className="form-actions">
          <button type="button" className="button button-primary" onClick={() => run(draft)} data-testid="query-run">
            Run
          </button>
          <SavedViews query={query} onPick={(id) => setParams({ view: id })} />
        </div>
        {queryError && <QueryErrorNotice query={query} description={queryError} />}
        {result.error && !queryError && <ErrorNotice error={result.error} onRetry={() => void result.refetch()} compact />}
      </section>
      {bulkOpen && result.data && <BulkActionDialog query={query} total={result.data.totalSize} onClose={() => setBulkOpen(false)} />}
      {result.data?.stats && <StatsCard stats={result.data.stats} />}
      {(result.data || result.isFetching) && (
        <section className="card" aria-label="Matching kiosks">
          <div className="card-toolbar">
            <h2 className="card-title" data-testid="query-total">
              {result.data ? `${formatNumber(result.data.totalSize)} kiosk${result.data.totalSize === 1 ? "" : "s"}` : "…"}
            </h2>
          </div>
          <div className="table-wrap">
            <table className="table table-compact">
              <thead>
                <tr>
                  <th scope="col">Kiosk</th>
                  <th scope="col">Status</th>
                  <th scope="col">Group</th>
                  <th scope="col">App</th>
                  <th scope="col">Paper</th>
                  <th scope="col">CPU</th>
                  <th scope="col">Last seen</th>
                </tr>
              </thead>
              <tbody>
                {result.isFetching && !result.data && <SkeletonRows rows={5} columns={7} />}
                {result.data?.kiosks.map((k) => (
                  <tr key={k.kioskId} data-testid="query-row">
                    <td>
                      <Link to={`/kiosks/${k.kioskId}`} className="row-link">
                        {k.name}
                      </Link>
                      <div className="muted mono small">{k.kioskId}</div>
                    </td>
                    <td>
                      <StatusBadge status={k.status} />
                    </td>
                    <td>{k.groupId || <span className="muted">none</span>}</td>
                    <td className="mono">{k.appVersion || "—"}</td>
                    <td>{k.state ? `${Math.round(k.state.paperLevelPercent)} %` : "—"}</td>
                    <td>{k.state ? `${Math.round(k.state.cpuPercent)} %` : "—"}</td>
                    <td className="nowrap">{k.lastSeenTime ? formatAgo(k.lastSeenTime) : "never"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {result.data && result.data.kiosks.length === 0 && (
              <EmptyState icon="search" title="No kiosk matches">
                <p>Loosen a condition, or remove one.</p>
              </EmptyState>
            )}
          </div>
          {result.data && (result.data.nextPageToken || pageToken) && (
            <div className="pager">
              <button type="button" className="button button-small" disabled={!pageToken} onClick={() => setPageToken("")}>
                First page
              </button>
              <button type="button" className="button button-small" disabled={!result.data.nextPageToken} onClick={() => setPageToken(result.data!.nextPageToken)}>
                Next {pageSize}
              </button>
            </div>
          )}
        </section>
      )}
    </div>
  );
}

/** The server's message, and the query with a marker under the place it points at. */
function QueryErrorNotice({ query, description }: { query: string; description: string }) {
  const offset = errorOffset(description);
  const lineStart = offset === undefined ? 0 : query.lastIndexOf("\n", offset - 1) + 1;
  const lineEnd = query.indexOf("\n", lineStart);
  const line = query.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
  return (
    <div className="notice notice-error" role="alert" data-testid="query-error">
      <div className="notice-body">
        <p className="notice-title">The query has a mistake</p>
        <p className="notice-detail">{description}</p>
        {offset !== undefined && (
          <pre className="code-display small" aria-hidden="true">
            {line}
            {"\n"}
            {" ".repeat(offset - lineStart)}^
          </pre>
        )}
      </div>
    </div>
  );
}

function StatsCard({ stats }: { stats: QueryStats }) {
  const [chartOf, setChartOf] = useState(0);
  const values = stats.groups.map((g) => g.values[chartOf]?.value ?? 0);
  const max = Math.max(1e-9, ...values.map(Math.abs));
  const label = (keys: string[]) => (keys.length ? keys.map((k) => k || "(none)").join(" · ") : "all");
  return (
    <section className="card" aria-label="Stats">
      <div className="card-toolbar">
        <h2 className="card-title">Stats{stats.groupBy.length ? ` by ${stats.groupBy.join(", ")}` : ""}</h2>
        {stats.aggregates.length > 1 && (
          <div className="field">
            <label htmlFor="stats-chart-of" className="visually-hidden">
              Chart
            </label>
            <select id="stats-chart-of" value={chartOf} onChange={(e) => setChartOf(Number(e.target.value))}>
              {stats.aggregates.map((a, i) => (
                <option key={a} value={i}>
                  Chart {a}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>
      {stats.truncated && <p className="muted small">The first 1,000 groups.</p>}
      <div className="stats-chart" role="img" aria-label={`${stats.aggregates[chartOf]} per group`} data-testid="stats-chart">
        {stats.groups.slice(0, 30).map((g, i) => (
          <div key={i} className="stats-bar-row">
            <span className="stats-bar-label small">{label(g.keys)}</span>
            <span className="stats-bar" style={{ width: `${(Math.abs(values[i]!) / max) * 100}%` }} />
            <span className="stats-bar-value small">{formatValue(g.values[chartOf]?.value)}</span>
          </div>
        ))}
      </div>
      <div className="table-wrap">
        <table className="table table-compact" data-testid="stats-table">
          <thead>
            <tr>
              {stats.groupBy.map((f) => (
                <th key={f} scope="col">
                  {f}
                </th>
              ))}
              {stats.aggregates.map((a) => (
                <th key={a} scope="col" className="mono">
                  {a}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {stats.groups.map((g, i) => (
              <tr key={i}>
                {g.keys.map((k, j) => (
                  <td key={j}>{k || <span className="muted">none</span>}</td>
                ))}
                {g.values.map((v, j) => (
                  <td key={j}>{formatValue(v.value)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

const formatValue = (v: number | undefined) => (v === undefined ? "—" : Number.isInteger(v) ? formatNumber(v) : v.toFixed(2));

function SavedViews({ query, onPick }: { query: string; onPick: (viewId: string) => void }) {
  const id = useId();
  const client = useQueryClient();
  const views = useQuery(FleetQueryService.method.listSavedViews, {});
  const save = useMutation(FleetQueryService.method.createSavedView, { onSuccess: () => void client.invalidateQueries() });
  const [name, setName] = useState("");
  const [shared, setShared] = useState(false);
  const [copied, setCopied] = useState(false);
  const link = useMemo(() => `${window.location.origin}/fleet/query?q=${encodeURIComponent(query)}`, [query]);
  return (
    <>
      <div className="field">
        <label htmlFor={`${id}-views`} className="visually-hidden">
          Saved views
        </label>
        <select id={`${id}-views`} value="" onChange={(e) => e.target.value && onPick(e.target.value)} data-testid="saved-views">
          <option value="">Saved views…</option>
          {views.data?.views.map((v) => (
            <option key={v.viewId} value={v.viewId}>
              {v.name}
              {v.shared ? " (shared)" : ""}
            </option>
          ))}
        </select>
      </div>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate({ name, query, shared }, { onSuccess: () => setName("") });
        }}
      >
        <label htmlFor={`${id}-name`} className="visually-hidden">
          View name
        </label>
        <input id={`${id}-name`} placeholder="Save as…" value={name} onChange={(e) => setName(e.target.value)} data-testid="view-name" />
        <label className="checkbox">
          <input type="checkbox" checked={shared} onChange={(e) => setShared(e.target.checked)} /> shared
        </label>
        <button type="submit" className="button button-small" disabled={!name.trim() || save.isPending}>
          Save view
        </button>
        <button
          type="button"
          className="button button-small button-quiet"
          onClick={() => void navigator.clipboard?.writeText(link).then(() => setCopied(true))}
          title={link}
        >
          {copied ? "Link copied" : "Copy link"}
        </button>
      </form>
      {save.error && <ErrorNotice error={save.error} compact />}
    </>
  );
}
