// Insights (ai), maintenance: kiosks by maintenance urgency (paper-out ETA, printer/scanner
// fault likelihood, temperature drift, what is due) and silent failures (healthy kiosks selling
// far below their forecast). Operators and admins (MaintenanceService's access rule); viewers
// do not see these sections.
import { useId, useState } from "react";
import { useQuery } from "@connectrpc/connect-query";
import { MaintenanceItem, MaintenanceService, type MaintenanceRisk } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_pb";
import { useCan } from "../api/context";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatDateTime, formatNumber } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";

const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
const hours = (h: number) => (h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} d`);
const itemNames: Record<MaintenanceItem, string> = {
  [MaintenanceItem.UNSPECIFIED]: "?",
  [MaintenanceItem.PAPER]: "Paper",
  [MaintenanceItem.PRINTER]: "Printer",
  [MaintenanceItem.SCANNER]: "Scanner",
  [MaintenanceItem.TEMPERATURE]: "Temperature",
};

export function MaintenanceSections() {
  const canRead = useCan(MaintenanceService.method.getMaintenanceRisks);
  if (!canRead) return null;
  return (
    <>
      <MaintenanceRiskSection />
      <SilentFailureSection />
    </>
  );
}

const pageSize = 10;

function MaintenanceRiskSection() {
  const id = useId();
  const [kiosk, setKiosk] = useState("");
  const [dueOnly, setDueOnly] = useState(false);
  const kioskId = useDebounced(kiosk.trim());
  const pages = usePageTokens(kioskId, dueOnly);
  const risks = useQuery(MaintenanceService.method.getMaintenanceRisks, { kioskId, dueOnly, pageSize, pageToken: pages.token }, { refetchInterval: 30_000 });
  const list = risks.data?.risks ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Maintenance risk
        </h2>
        <div className="filters">
          <label className="checkbox">
            <input type="checkbox" checked={dueOnly} onChange={(e) => setDueOnly(e.target.checked)} /> Due only
          </label>
          <div className="field">
            <label htmlFor={`${id}-kiosk`} className="visually-hidden">
              Kiosk
            </label>
            <input id={`${id}-kiosk`} value={kiosk} onChange={(e) => setKiosk(e.target.value)} placeholder="Kiosk id (all kiosks)" />
          </div>
        </div>
      </div>
      {risks.error && <ErrorNotice error={risks.error} onRetry={() => void risks.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Kiosk</th>
              <th scope="col">Due</th>
              <th scope="col">Paper</th>
              <th scope="col">Paper out in</th>
              <th scope="col">Printer fault (24 h)</th>
              <th scope="col">Scanner fault (24 h)</th>
              <th scope="col">Temperature</th>
              <th scope="col">Last sample</th>
            </tr>
          </thead>
          <tbody>
            {risks.isPending && <SkeletonRows rows={4} columns={8} />}
            {list.map((r) => (
              <RiskRow key={r.kioskId} r={r} />
            ))}
          </tbody>
        </table>
        {!risks.isPending && list.length === 0 && !risks.error && (
          <EmptyState icon="insights" title={dueOnly ? "Nothing due" : "No telemetry yet"}>
            <p>{dueOnly ? "No kiosk needs paper, a printer or scanner check or a cooling check soon." : "Kiosks appear here once their telemetry reaches ai."}</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={risks.data?.nextPageToken} shown={list.length} pageSize={pageSize} total={risks.data?.totalSize} noun="kiosks" />
    </section>
  );
}

function RiskRow({ r }: { r: MaintenanceRisk }) {
  const due = new Set(r.due);
  return (
    <tr className={due.size > 0 ? "row-low" : undefined} data-testid="maintenance-row">
      <td className="mono nowrap">
        {r.kioskId} {!r.online && <span className="badge badge-off">offline</span>}
      </td>
      <td>
        {r.due.length === 0
          ? "—"
          : r.due.map((i) => (
              <span key={i} className="badge badge-warn">
                {itemNames[i]}
              </span>
            ))}
      </td>
      <td className="nowrap">
        {r.paperLevelPercent.toFixed(0)} % {r.paperRatePercentPerHour >= 0.05 && <span className="muted small">(−{r.paperRatePercentPerHour.toFixed(1)} %/h)</span>}
      </td>
      <td className="nowrap" title={r.paperOutTime ? formatDateTime(r.paperOutTime) : undefined}>
        {r.paperOutExpected ? hours(r.paperOutHours) : "not within 14 d"}
      </td>
      <td>
        {pct(r.printerFaultProbability)} <span className="muted small">({pct(r.printerDegradedShare)} degraded)</span>
      </td>
      <td>
        {pct(r.scannerFaultProbability)} <span className="muted small">({pct(r.scannerDegradedShare)} degraded)</span>
      </td>
      <td className="nowrap">
        {r.temperatureCelsius.toFixed(1)} °C{" "}
        <span className={`small ${due.has(MaintenanceItem.TEMPERATURE) ? "" : "muted"}`}>
          ({r.temperatureDriftCelsius >= 0 ? "+" : ""}
          {r.temperatureDriftCelsius.toFixed(1)} vs {r.temperatureBaselineCelsius.toFixed(1)})
        </span>
      </td>
      <td className="nowrap">{formatAgo(r.sampleTime)}</td>
    </tr>
  );
}

function SilentFailureSection() {
  const id = useId();
  const [all, setAll] = useState(false);
  const pages = usePageTokens(all);
  const failures = useQuery(MaintenanceService.method.listSilentFailures, { includeAssessed: all, pageSize, pageToken: pages.token }, { refetchInterval: 30_000 });
  const list = failures.data?.failures ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Silent failures
        </h2>
        <div className="filters">
          <label className="checkbox">
            <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> Every kiosk assessed
          </label>
        </div>
      </div>
      <p className="muted">
        Kiosks online and reporting healthy whose sales fell far below the forecast: the probability of selling this little by chance is below{" "}
        {failures.data ? failures.data.threshold.toExponential(0) : "the threshold"}
        {failures.data?.assessTime ? ` (last assessed ${formatAgo(failures.data.assessTime)})` : ""}.
      </p>
      {failures.error && <ErrorNotice error={failures.error} onRetry={() => void failures.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Kiosk</th>
              <th scope="col">State</th>
              <th scope="col">Sold</th>
              <th scope="col">Expected</th>
              <th scope="col">Probability</th>
              <th scope="col">Window</th>
              <th scope="col">Since</th>
            </tr>
          </thead>
          <tbody>
            {failures.isPending && <SkeletonRows rows={3} columns={7} />}
            {list.map((f) => (
              <tr key={f.kioskId} className={f.detected ? "row-low" : undefined} data-testid="silent-row">
                <td className="mono">{f.kioskId}</td>
                <td>{f.detected ? <span className="badge badge-alert">Silent failure</span> : <span className="badge badge-ok">Selling</span>}</td>
                <td>{formatNumber(f.observedUnits)}</td>
                <td>{f.expectedUnits.toFixed(1)}</td>
                <td>{f.probability < 0.001 ? f.probability.toExponential(1) : f.probability.toFixed(3)}</td>
                <td className="nowrap small">
                  {formatDateTime(f.windowStart)} – {formatDateTime(f.windowEnd)}
                </td>
                <td className="nowrap">{f.detectTime ? formatAgo(f.detectTime) : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!failures.isPending && list.length === 0 && !failures.error && (
          <EmptyState icon="insights" title={all ? "Nothing assessed yet" : "No silent failures"}>
            <p>{all ? "Kiosks are assessed once a model serves and their telemetry says they are online and healthy." : "Every healthy kiosk sells about as forecast."}</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={failures.data?.nextPageToken} shown={list.length} pageSize={pageSize} total={failures.data?.totalSize} noun="kiosks" />
    </section>
  );
}
