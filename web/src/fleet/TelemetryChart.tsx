// Telemetry history over a chosen range, drawn with uPlot (small, fast, canvas). fleet
// downsamples at the server (GetTelemetryHistory with max_points), so a week is as cheap
// to draw as an hour. There is no stream of history: the chart is read again every minute
// (the live values above come from WatchKiosk).
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { useQuery } from "@connectrpc/connect-query";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { TelemetryService, type TelemetryPoint } from "@adminkiosk/proto/adminkiosk/fleet/v1/telemetry_pb";
import { EmptyState, ErrorNotice, Loading } from "../ui/feedback";

const ranges = [
  { key: "1h", label: "1 hour", ms: 3_600_000 },
  { key: "24h", label: "24 hours", ms: 86_400_000 },
  { key: "7d", label: "7 days", ms: 7 * 86_400_000 },
] as const;
type RangeKey = (typeof ranges)[number]["key"];
const maxPoints = 300;

export function TelemetrySection({ kioskId }: { kioskId: string }) {
  const id = useId();
  const [range, setRange] = useState<RangeKey>("1h");
  const span = ranges.find((r) => r.key === range)?.ms ?? 3_600_000;
  // The window's end moves once a minute, so the key (and the cache) does not change per render.
  const [minute, setMinute] = useState(() => Math.ceil(Date.now() / 60_000));
  useEffect(() => {
    const timer = setInterval(() => setMinute(Math.ceil(Date.now() / 60_000)), 60_000);
    return () => clearInterval(timer);
  }, []);
  const end = minute * 60_000;
  const history = useQuery(
    TelemetryService.method.getTelemetryHistory,
    { kioskId, startTime: timestampFromMs(end - span), endTime: timestampFromMs(end), maxPoints },
    { placeholderData: (prev) => prev },
  );
  const points = history.data?.points ?? [];
  return (
    <section className="card card-wide" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Telemetry history
        </h2>
        <div className="segmented" role="group" aria-label="Range">
          {ranges.map((r) => (
            <button key={r.key} type="button" aria-pressed={range === r.key} onClick={() => setRange(r.key)}>
              {r.label}
            </button>
          ))}
        </div>
      </div>
      {history.error && !history.data ? (
        <ErrorNotice error={history.error} onRetry={() => void history.refetch()} compact />
      ) : !history.data ? (
        <Loading label="Loading telemetry…" />
      ) : points.length === 0 ? (
        <EmptyState icon="fleet" title="No telemetry in this range">
          <p>The kiosk sent no samples between these times.</p>
        </EmptyState>
      ) : (
        <Chart points={points} from={end - span} to={end} />
      )}
    </section>
  );
}

function Chart({ points, from, to }: { points: TelemetryPoint[]; from: number; to: number }) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = useMemo<uPlot.AlignedData>(
    () => [
      points.map((p) => (p.time ? timestampDate(p.time).getTime() / 1000 : 0)),
      points.map((p) => p.paperLevelPercentAvg),
      points.map((p) => p.cpuPercentAvg),
      points.map((p) => p.temperatureCelsiusAvg),
    ],
    [points],
  );

  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height: 240,
      scales: { x: { time: true, range: [from / 1000, to / 1000] }, pct: { range: [0, 100] }, temp: { auto: true } },
      axes: [{}, { scale: "pct", label: "%", size: 44 }, { scale: "temp", side: 1, label: "°C", size: 44, grid: { show: false } }],
      series: [
        {},
        { label: "Paper avg %", scale: "pct", stroke: "#2563eb", width: 2, value: (_u, v) => (v == null ? "—" : `${v.toFixed(1)} %`) },
        { label: "CPU avg %", scale: "pct", stroke: "#16a34a", width: 1.5, value: (_u, v) => (v == null ? "—" : `${v.toFixed(1)} %`) },
        { label: "Temperature avg", scale: "temp", stroke: "#dc6b1a", width: 1.5, value: (_u, v) => (v == null ? "—" : `${v.toFixed(1)} °C`) },
      ],
    };
    const chart = new uPlot(opts, data, el);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: el.clientWidth, height: 240 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // Rebuilt when the range changes; new data alone is set below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [from, to]);

  useEffect(() => {
    plot.current?.setData(data, false);
  }, [data]);

  return <div ref={holder} className="chart" data-testid="telemetry-chart" role="img" aria-label={`Paper, CPU and temperature, ${points.length} points`} />;
}
