// Daily sales over the last 14 days, per kiosk or product, drawn with uPlot: one
// GetSalesSummary call with a daily bucket in the browser's time zone (each day's net and
// its products, days without sales as zeros).
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTransport } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { OrderService, SalesBucket, type SalesPoint } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { EmptyState, ErrorNotice, Loading } from "../ui/feedback";
import { formatMoney } from "../ui/format";

const days = 14;
const dayMs = 86_400_000;

export function SalesChart({ kioskId }: { kioskId: string }) {
  const id = useId();
  const transport = useTransport();
  const [sku, setSku] = useState("");
  // Local midnight today + 1 day: the window ends after today.
  const end = useMemo(() => {
    const d = new Date();
    d.setHours(0, 0, 0, 0);
    return d.getTime() + dayMs;
  }, []);
  const summaries = useQuery({
    queryKey: ["sales-by-day", kioskId, end],
    refetchInterval: 60_000,
    queryFn: async ({ signal }) => {
      const client = createClient(OrderService, transport);
      // The 14 local days before the end (a day of a DST change is 23 or 25 hours: the start is
      // the local midnight 14 days back, whatever the hours in between).
      const start = new Date(end);
      start.setDate(start.getDate() - days);
      const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      const res = await client.getSalesSummary({ startTime: timestampFromMs(start.getTime()), endTime: timestampFromMs(end), kioskId, bucket: SalesBucket.DAY, timeZone }, { signal });
      return res.series;
    },
  });
  const points = summaries.data ?? [];
  // One row per day (a day sold in two currencies has two points; the chart shows the first currency).
  const currency = points.map((p) => p.currency).find(Boolean) ?? "";
  const byDate = new Map<string, SalesPoint[]>();
  for (const p of points) byDate.set(p.date, [...(byDate.get(p.date) ?? []), p]);
  const rows = [...byDate.values()].map((ps) => ({ start: Number(ps[0]!.startTime?.seconds ?? 0n) * 1000, points: ps.filter((p) => p.currency === currency || p.currency === "") }));
  const skus = [...new Set(points.flatMap((p) => p.products.map((x) => x.sku)))].sort();
  const total = (ps: SalesPoint[]) => ps.reduce((n, p) => n + (sku ? p.products.filter((x) => x.sku === sku).reduce((m, x) => m + Number(x.netMinor), 0) : Number(p.netMinor)), 0);
  const series = rows.map((r) => total(r.points));
  const sum = series.reduce((a, b) => a + b, 0);
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Daily sales, last {days} days{kioskId ? ` at ${kioskId}` : ""}
        </h2>
        <div className="field">
          <label htmlFor={`${id}-sku`} className="visually-hidden">
            Product
          </label>
          <select id={`${id}-sku`} value={sku} onChange={(e) => setSku(e.target.value)}>
            <option value="">All products</option>
            {skus.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
      </div>
      {summaries.error && <ErrorNotice error={summaries.error} onRetry={() => void summaries.refetch()} compact />}
      {summaries.isPending ? (
        <Loading label="Loading sales" />
      ) : sum === 0 && !summaries.error ? (
        <EmptyState icon="orders" title="No sales in these days">
          <p>Net sales per day appear here once kiosks sell.</p>
        </EmptyState>
      ) : (
        <>
          <p className="muted">
            {formatMoney(sum, currency)} net over {days} days
          </p>
          <Bars x={rows.map((r) => r.start / 1000)} y={series} currency={currency} />
        </>
      )}
    </section>
  );
}

function Bars({ x, y, currency }: { x: number[]; y: number[]; currency: string }) {
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height: 220,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
      axes: [{}, { size: 70, values: (_u, vals) => vals.map((v) => formatMoney(Math.round(v), currency)) }],
      series: [{}, { label: "Net sales", stroke: "#2563eb", fill: "rgba(37,99,235,0.25)", width: 1, paths: uPlot.paths.bars?.({ size: [0.6, 40] }), value: (_u, v) => (v == null ? "—" : formatMoney(Math.round(v), currency)) }],
    };
    const chart = new uPlot(opts, [x, y], el);
    const resize = new ResizeObserver(() => chart.setSize({ width: el.clientWidth, height: 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
    // Rebuilt when the numbers change, not on every render.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [x.join(), y.join(), currency]);
  return <div ref={holder} className="chart" data-testid="sales-chart" role="img" aria-label={`Net sales per day, ${y.length} days`} />;
}
