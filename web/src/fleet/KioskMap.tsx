// Kiosks on a map, coloured by status: an SVG projection of Natural Earth's countries
// (world-atlas, shipped in the bundle), since no tile server is reachable. Loaded lazily.
import { useMemo } from "react";
import { useNavigate } from "react-router";
import { geoMercator, geoPath } from "d3-geo";
import { feature, mesh } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import countriesTopology from "world-atlas/countries-110m.json";
import { formatNumber } from "../ui/format";
import { KioskStatus, statusInfo } from "./status";
import type { KioskPoint } from "./use-fleet";

const width = 960;
const height = 540;
const topology = countriesTopology as unknown as Topology<{ countries: GeometryCollection }>;
const land = feature(topology, topology.objects.countries);
const borders = mesh(topology, topology.objects.countries, (a, b) => a !== b);

// Statuses that matter most are drawn last, on top.
const drawOrder = [KioskStatus.PROVISIONED, KioskStatus.OFFLINE, KioskStatus.UNSPECIFIED, KioskStatus.ONLINE, KioskStatus.ALERTING];

/** The area to show: the kiosks' bounding box, at least a few degrees wide (Europe when empty). */
function frame(points: KioskPoint[]): [[number, number], [number, number]] {
  if (points.length === 0) return [[-10, 36], [30, 60]];
  let [west, south, east, north] = [180, 90, -180, -90];
  for (const p of points) {
    west = Math.min(west, p.longitude);
    east = Math.max(east, p.longitude);
    south = Math.min(south, p.latitude);
    north = Math.max(north, p.latitude);
  }
  const padLon = Math.max(3 - (east - west) / 2, (east - west) * 0.25, 1.5);
  const padLat = Math.max(2 - (north - south) / 2, (north - south) * 0.25, 1);
  return [
    [Math.max(-180, west - padLon), Math.max(-80, south - padLat)],
    [Math.min(180, east + padLon), Math.min(84, north + padLat)],
  ];
}

export default function KioskMap({ points, total }: { points: KioskPoint[]; total: number }) {
  const navigate = useNavigate();
  const { landPath, borderPath, projected } = useMemo(() => {
    const [[west, south], [east, north]] = frame(points);
    const projection = geoMercator().fitExtent(
      [
        [16, 16],
        [width - 16, height - 16],
      ],
      { type: "MultiPoint", coordinates: [[west, south], [east, north], [west, north], [east, south]] },
    );
    const path = geoPath(projection);
    const sorted = [...points].sort((a, b) => drawOrder.indexOf(a.status) - drawOrder.indexOf(b.status));
    return {
      landPath: path(land) ?? "",
      borderPath: path(borders) ?? "",
      projected: sorted.map((p) => ({ point: p, xy: projection([p.longitude, p.latitude]) })),
    };
  }, [points]);

  const counts = new Map<KioskStatus, number>();
  for (const p of points) counts.set(p.status, (counts.get(p.status) ?? 0) + 1);

  return (
    <figure className="map">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Map of ${formatNumber(points.length)} kiosks, coloured by status`}>
        <rect width={width} height={height} className="map-sea" />
        <path d={landPath} className="map-land" />
        <path d={borderPath} className="map-borders" />
        {projected.map(({ point, xy }) =>
          xy ? (
            <circle
              key={point.kioskId}
              cx={xy[0]}
              cy={xy[1]}
              r={points.length > 2000 ? 2.5 : 5}
              className={`map-point tone-${statusInfo[point.status].tone}`}
              onClick={() => navigate(`/kiosks/${encodeURIComponent(point.kioskId)}`)}
            >
              <title>{`${point.name || point.kioskId} — ${statusInfo[point.status].label}`}</title>
            </circle>
          ) : null,
        )}
      </svg>
      <figcaption className="map-legend">
        {[KioskStatus.ONLINE, KioskStatus.ALERTING, KioskStatus.OFFLINE, KioskStatus.PROVISIONED].map((s) => (
          <span key={s} className="legend-item">
            <span className={`legend-dot tone-${statusInfo[s].tone}`} aria-hidden="true" />
            {statusInfo[s].label} <strong>{formatNumber(counts.get(s) ?? 0)}</strong>
          </span>
        ))}
        <span className="legend-note">
          {points.length < total ? `${formatNumber(points.length)} of ${formatNumber(total)} kiosks have a location on the map` : "Select a dot to open the kiosk"}
        </span>
      </figcaption>
    </figure>
  );
}
