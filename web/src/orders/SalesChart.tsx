// Daily sales over the last 14 days, per kiosk or product, drawn with uPlot. orders has no
// daily series, so the chart asks GetSalesSummary once per day (14 small calls, cached).
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTransport } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { OrderService, type GetSalesSummaryResponse } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
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
      const starts = Array.from({ length: days }, (_, i) => end - (days - i) * dayMs);
      return Promise.all(starts.map(async (start) => ({ start, summary: await client.getSalesSummary({ startTime: timestampFromMs(start), endTime: timestampFromMs(start + dayMs), kioskId }, { signal }) })));
    },
  });
  const rows = summaries.data ?? [];
  const skus = [...new Set(rows.flatMap((r) => r.summary.products.map((p) => p.sku)))].sort();
  const currency = rows.flatMap((r) => [...r.summary.kiosks.map((k) => k.currency), ...r.summary.products.map((p) => p.currency)]).find(Boolean) ?? "";
  const total = (s: GetSalesSummaryResponse) => (sku ? s.products.filter((p) => p.sku === sku).reduce((n, p) => n + Number(p.netMinor), 0) : s.kiosks.reduce((n, k) => n + Number(k.netMinor), 0));
  const series = rows.map((r) => total(r.summary));
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
