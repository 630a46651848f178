// Forecast vs actual for one kiosk × product, drawn with uPlot: the last days' (or hours')
// sales beside what the model says for them, then the days (or hours) ahead, with the 10–90 %
// band. Points carry a UTC date and, hourly, a UTC hour.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { ForecastPoint } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";

const dayMs = 86_400_000;
const hourMs = 3_600_000;

export function ForecastChart({ points, hourly = false }: { points: ForecastPoint[]; hourly?: boolean }) {
  const holder = useRef<HTMLDivElement>(null);
  const key = `${hourly}:` + points.map((p) => `${p.date}:${p.hour}:${p.p50}:${p.actual}`).join();
  useEffect(() => {
    const el = holder.current;
    if (!el || points.length === 0) return;
    // A day at its noon; an hour at its middle.
    const x = points.map((p) => (Date.parse(`${p.date}T00:00:00Z`) + (hourly ? p.hour * hourMs + hourMs / 2 : dayMs / 2)) / 1000);
    const p10 = points.map((p) => p.p10);
    const p90 = points.map((p) => p.p90);
    const p50 = points.map((p) => p.p50);
    const actual = points.map((p) => (p.hasActual ? p.actual : null));
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height: 260,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
      axes: [{}, { size: 50 }],
      series: [
        {},
        { label: "p10", stroke: "rgba(37,99,235,0.35)", width: 1 },
        { label: "p90", stroke: "rgba(37,99,235,0.35)", width: 1 },
        { label: "Forecast (p50)", stroke: "#2563eb", width: 2, dash: [6, 4] },
        { label: "Sold", stroke: "#111827", width: hourly ? 1.5 : 2, points: { show: !hourly, size: 5 } },
      ],
      // The 10–90 % band between p10 (series 1) and p90 (series 2).
      bands: [{ series: [2, 1], fill: "rgba(37,99,235,0.15)" }],
    };
    const chart = new uPlot(opts, [x, p10, p90, p50, actual], el);
    const resize = new ResizeObserver(() => chart.setSize({ width: el.clientWidth, height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
    // Rebuilt when the numbers change, not on every render.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  const days = Math.round((Date.parse(points.at(-1)?.date ?? "1970-01-01") - Date.parse(points[0]?.date ?? "1970-01-01")) / dayMs) + 1;
  return (
    <div ref={holder} className="chart" data-testid="forecast-chart" role="img" aria-label={`Forecast and units sold per ${hourly ? "hour (UTC)" : "day"}, ${days} days`} />
  );
}
