// Insights (ai): forecast vs actual for a kiosk × product with the 10–90 % band, the
// stock-out risks and the restock plan, maintenance risks and silent failures (operators), and
// the model versions with their metrics beside the seasonal-naive baseline. Retrain, Rollback
// and Promote for admins (their access rules).
import { lazy, Suspense, useId, useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { ForecastService, Granularity, ModelService, ModelStatus, StockoutService, type Model } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, Loading, SkeletonRows } from "../ui/feedback";
import { formatDateTime, formatNumber } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";
import { MaintenanceSections } from "./MaintenanceSections";

// uPlot loads with the chart, not with the app.
const ForecastChart = lazy(() => import("./ForecastChart").then((m) => ({ default: m.ForecastChart })));

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const hours = (h: number) => (h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} d`);
const noModel = (err: unknown) => err instanceof ConnectError && err.code === Code.FailedPrecondition;

export function InsightsPage() {
  const models = useQuery(ModelService.method.listModels, {}, { refetchInterval: 30_000 });
  const serving = models.data?.models.find((m) => m.status === ModelStatus.SERVING);
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Insights</h1>
          <p className="page-lede">Demand forecasts, stock-out risks and what to bring at the next visit, from ai's serving model.</p>
        </div>
      </header>
      <ForecastSection serving={serving} />
      <RiskSection />
      <RestockSection />
      <MaintenanceSections />
      <ModelsSection models={models.data?.models} pending={models.isPending} error={models.error} onRetry={() => void models.refetch()} />
    </div>
  );
}

function ForecastSection({ serving }: { serving: Model | undefined }) {
  const id = useId();
  const pairs = (serving?.features ?? []).filter((f) => f.startsWith("pair:")).map((f) => f.slice("pair:".length));
  const [chosen, setChosen] = useState("");
  const pair = pairs.includes(chosen) ? chosen : (pairs[0] ?? "");
  const [kioskId = "", sku = ""] = pair.split("|");
  const [hourly, setHourly] = useState(false);
  // Hourly: the last 2 days and the next 3 (120 points); daily: 14 and 14.
  const request = hourly ? { horizonDays: 3, historyDays: 2, granularity: Granularity.HOURLY } : { horizonDays: 14, historyDays: 14, granularity: Granularity.DAILY };
  const forecast = useQuery(ForecastService.method.getForecast, { kioskId, sku, ...request }, { enabled: pair !== "" });
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Forecast vs actual
        </h2>
        {pairs.length > 0 && (
          <div className="header-actions">
            <div className="field">
              <label htmlFor={`${id}-pair`} className="visually-hidden">
                Kiosk and product
              </label>
              <select id={`${id}-pair`} value={pair} onChange={(e) => setChosen(e.target.value)}>
                {pairs.map((p) => (
                  <option key={p} value={p}>
                    {p.replace("|", " · ")}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor={`${id}-granularity`} className="visually-hidden">
                Per day or per hour
              </label>
              <select id={`${id}-granularity`} value={hourly ? "hourly" : "daily"} onChange={(e) => setHourly(e.target.value === "hourly")}>
                <option value="daily">Daily</option>
                <option value="hourly">Hourly (UTC)</option>
              </select>
            </div>
          </div>
        )}
      </div>
      {!serving ? (
        <EmptyState icon="insights" title="No model trained yet">
          <p>Forecasts appear once a model version serves (Retrain, below).</p>
        </EmptyState>
      ) : forecast.error ? (
        <ErrorNotice error={forecast.error} onRetry={() => void forecast.refetch()} compact />
      ) : forecast.isPending ? (
        <Loading label="Loading the forecast" />
      ) : (
        <>
          <p className="muted">
            {hourly ? "Units per UTC hour" : "Units per day"} at {kioskId} of {sku}: sold ({hourly ? "last 2 days" : "last 14 days"}) and model v{String(forecast.data.modelVersion)}'s median with
            its 10–90 % band.
          </p>
          <Suspense fallback={<Loading label="Loading the chart" />}>
            <ForecastChart points={forecast.data.points} hourly={forecast.data.granularity === Granularity.HOURLY} />
          </Suspense>
        </>
      )}
    </section>
  );
}

const riskPageSize = 10;

function RiskSection() {
  const id = useId();
  const [kiosk, setKiosk] = useState("");
  const kioskId = useDebounced(kiosk.trim());
  const pages = usePageTokens(kioskId);
  const risks = useQuery(StockoutService.method.getStockoutRisks, { kioskId, pageSize: riskPageSize, pageToken: pages.token }, { refetchInterval: 30_000, retry: (n, err) => !noModel(err) && n < 2 });
  const list = risks.data?.risks ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Stock-out risk{risks.data ? ` before the next visit (${hours(risks.data.visitIntervalHours)})` : ""}
        </h2>
        <div className="field">
          <label htmlFor={`${id}-kiosk`} className="visually-hidden">
            Kiosk
          </label>
          <input id={`${id}-kiosk`} value={kiosk} onChange={(e) => setKiosk(e.target.value)} placeholder="Kiosk id (all kiosks)" />
        </div>
      </div>
      {risks.error && !noModel(risks.error) && <ErrorNotice error={risks.error} onRetry={() => void risks.refetch()} compact />}
      {risks.error && noModel(risks.error) ? (
        <EmptyState icon="insights" title="No stock-out risks yet">
          <p>{describeError(risks.error).detail ?? "ai has no model or no stock levels yet."}</p>
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Kiosk</th>
                <th scope="col">SKU</th>
                <th scope="col">Available</th>
                <th scope="col">Risk</th>
                <th scope="col">Runs out in</th>
                <th scope="col">Demand to visit</th>
              </tr>
            </thead>
            <tbody>
              {risks.isPending && <SkeletonRows rows={4} columns={6} />}
              {list.map((r) => (
                <tr key={`${r.kioskId}/${r.sku}`} className={r.stockoutProbability >= 0.5 ? "row-low" : undefined} data-testid="risk-row">
                  <td className="mono">{r.kioskId}</td>
                  <td className="mono">{r.sku}</td>
                  <td>{formatNumber(r.available)}</td>
                  <td>
                    {pct(r.stockoutProbability)} {r.stockoutProbability >= 0.5 && <span className="badge badge-warn">At risk</span>}
                  </td>
                  <td className="nowrap">
                    {r.stockoutExpected ? (
                      <>
                        {hours(r.stockoutHours)}{" "}
                        <span className="muted small">
                          ({hours(r.stockoutEarlyHours)}–{r.stockoutLateHours > 0 ? hours(r.stockoutLateHours) : "later"})
                        </span>
                      </>
                    ) : (
                      "not within 14 d"
                    )}
                  </td>
                  <td>{r.demandToVisit.toFixed(1)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {!risks.isPending && list.length === 0 && !risks.error && (
            <EmptyState icon="insights" title="No stock to assess">
              <p>Kiosks' stock levels from catalog appear here for the products the model knows.</p>
            </EmptyState>
          )}
        </div>
      )}
      <Pager pages={pages} nextToken={risks.data?.nextPageToken} shown={list.length} pageSize={riskPageSize} total={risks.data?.totalSize} noun="products" />
    </section>
  );
}

function RestockSection() {
  const id = useId();
  const plan = useQuery(StockoutService.method.getRestockPlan, {}, { refetchInterval: 30_000, retry: (n, err) => !noModel(err) && n < 2 });
  const kiosks = plan.data?.kiosks ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Restock plan{plan.data ? ` at ${pct(plan.data.serviceLevel)} service level` : ""}
        </h2>
      </div>
      {plan.error && !noModel(plan.error) && <ErrorNotice error={plan.error} onRetry={() => void plan.refetch()} compact />}
      {plan.isPending && !plan.error && <Loading label="Loading the plan" />}
      {plan.data && kiosks.length === 0 && (
        <EmptyState icon="insights" title="Nothing to bring">
          <p>Every kiosk has enough until the next visit.</p>
        </EmptyState>
      )}
      {kiosks.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Kiosk</th>
                <th scope="col">SKU</th>
                <th scope="col">Available</th>
                <th scope="col">Expected demand</th>
                <th scope="col">Bring</th>
              </tr>
            </thead>
            <tbody>
              {kiosks.flatMap((k) =>
                k.lines.map((l, i) => (
                  <tr key={`${k.kioskId}/${l.sku}`} data-testid="restock-row">
                    <td className="mono">{i === 0 ? `${k.kioskId} (${formatNumber(k.totalUnits)} units)` : ""}</td>
                    <td className="mono">{l.sku}</td>
                    <td>{formatNumber(l.available)}</td>
                    <td>
                      {l.demandMean.toFixed(1)} <span className="muted small">(≤ {l.demandAtServiceLevel.toFixed(1)})</span>
                    </td>
                    <td>
                      <strong>{formatNumber(l.quantity)}</strong>
                    </td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ModelsSection({ models, pending, error, onRetry }: { models: Model[] | undefined; pending: boolean; error: unknown; onRetry: () => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const canRetrain = useCan(ModelService.method.retrain);
  const canRollback = useCan(ModelService.method.rollback);
  const canPromote = useCan(ModelService.method.promote);
  const [outcome, setOutcome] = useState("");
  const done = () => void queryClient.invalidateQueries();
  const retrain = useMutation(ModelService.method.retrain, {
    onSuccess: (r) => {
      setOutcome(`v${String(r.model?.version)} ${r.promoted ? "promoted" : "not promoted"}: ${r.model?.gateReason ?? ""}`);
      done();
    },
  });
  const rollback = useMutation(ModelService.method.rollback, {
    onSuccess: (r) => {
      setOutcome(`v${String(r.servingVersion)} serves again`);
      done();
    },
  });
  const promote = useMutation(ModelService.method.promote, {
    onSuccess: (r) => {
      setOutcome(`v${String(r.servingVersion)} promoted: it serves now`);
      done();
    },
  });
  const busy = rollback.isPending || promote.isPending;
  const list = models ?? [];
  const hasPrevious = list.some((m) => m.status === ModelStatus.RETIRED);
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Model versions
        </h2>
        <div className="filters">
          {canRollback && (
            <button type="button" className="button" disabled={rollback.isPending || !hasPrevious} onClick={() => rollback.mutate({ version: 0n })}>
              Rollback
            </button>
          )}
          {canRetrain && (
            <button type="button" className="button button-primary" disabled={retrain.isPending} onClick={() => retrain.mutate({})}>
              {retrain.isPending ? "Training…" : "Retrain"}
            </button>
          )}
        </div>
      </div>
      {error ? <ErrorNotice error={error} onRetry={onRetry} compact /> : null}
      {retrain.error && <ErrorNotice error={retrain.error} compact />}
      {rollback.error && <ErrorNotice error={rollback.error} compact />}
      {promote.error && <ErrorNotice error={promote.error} compact />}
      {outcome && (
        <p className="muted" role="status" data-testid="model-outcome">
          {outcome}
        </p>
      )}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Status</th>
              <th scope="col">WAPE</th>
              <th scope="col">Seasonal-naive WAPE</th>
              <th scope="col">vs naive</th>
              <th scope="col">MAE</th>
              <th scope="col">Bias</th>
              <th scope="col">80 % coverage</th>
              <th scope="col">Trained</th>
              {(canPromote || canRollback) && <th scope="col">Serve</th>}
            </tr>
          </thead>
          <tbody>
            {pending && <SkeletonRows rows={3} columns={canPromote || canRollback ? 10 : 9} />}
            {list.map((m) => (
              <tr key={String(m.version)} data-testid="model-row" data-status={ModelStatus[m.status]} title={m.gateReason}>
                <td className="mono">v{String(m.version)}</td>
                <td>
                  <span className={`badge ${m.status === ModelStatus.SERVING ? "badge-ok" : m.status === ModelStatus.REJECTED ? "badge-alert" : "badge-neutral"}`}>
                    {ModelStatus[m.status].toLowerCase()}
                  </span>
                </td>
                <td data-testid="model-wape">{m.metrics?.wape.toFixed(3)}</td>
                <td>{m.baseline?.wape.toFixed(3)}</td>
                <td>{m.metrics && m.baseline && m.baseline.wape > 0 ? `${((m.metrics.wape / m.baseline.wape - 1) * 100).toFixed(0)} %` : "—"}</td>
                <td>{m.metrics?.mae.toFixed(2)}</td>
                <td>{m.metrics?.bias.toFixed(2)}</td>
                <td>{m.metrics ? pct(m.metrics.coverage80) : "—"}</td>
                <td className="nowrap">
                  {formatDateTime(m.createdTime)} <span className="muted small">by {m.createdBy}</span>
                </td>
                {(canPromote || canRollback) && (
                  <td className="nowrap">
                    {/* A candidate the gate held is promoted; a version served before (retired) is rolled back to. */}
                    {m.status === ModelStatus.CANDIDATE && canPromote && (
                      <button type="button" className="button button-small" disabled={busy} onClick={() => promote.mutate({ version: m.version })}>
                        Promote
                      </button>
                    )}
                    {m.status === ModelStatus.RETIRED && canRollback && (
                      <button type="button" className="button button-small" disabled={busy} onClick={() => rollback.mutate({ version: m.version })}>
                        Roll back to v{String(m.version)}
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {!pending && list.length === 0 && !error && (
          <EmptyState icon="insights" title="No model versions yet">
            <p>{canRetrain ? "Retrain trains the first version on the sales history." : "An admin trains the first version."}</p>
          </EmptyState>
        )}
      </div>
    </section>
  );
}
