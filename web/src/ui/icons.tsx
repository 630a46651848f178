// The few icons the app uses (24×24 strokes), decorative: always next to a text label.
import type { ReactElement } from "react";

const paths = {
  fleet: "M4 5h16v10H4zM9 19h6M12 15v4",
  jobs: "M4 6h16M4 12h10M4 18h6M17 15l2 2 3-4",
  catalog: "M4 7l8-4 8 4-8 4zM4 7v10l8 4 8-4V7M12 11v10",
  orders: "M6 3h12l1 18H5zM9 7a3 3 0 0 0 6 0",
  users: "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM2 21c0-4 3-6 7-6s7 2 7 6M17 11a3 3 0 1 0 0-6M19 15c2 .7 3 2.5 3 5",
  key: "M15 7a4 4 0 1 1-3.5 6L4 20.5V17h3v-3h3l1.5-1.5A4 4 0 0 1 15 7z",
  audit: "M6 3h9l4 4v14H6zM14 3v5h5M9 12h7M9 16h7",
  signOut: "M15 4h4v16h-4M10 8l-4 4 4 4M6 12h11",
  search: "M11 18a7 7 0 1 1 0-14 7 7 0 0 1 0 14zM21 21l-5-5",
  map: "M9 4L3 6v14l6-2 6 2 6-2V4l-6 2zM9 4v14M15 6v14",
  table: "M3 5h18v14H3zM3 10h18M3 15h18M9 5v14",
  copy: "M8 8h12v12H8zM4 16V4h12",
  back: "M15 5l-7 7 7 7",
  kiosk: "M6 2h12v14H6zM9 20h6M12 16v4M9 6h6v5H9z",
  refresh: "M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7",
  alert: "M12 3l10 18H2zM12 10v5M12 18v.5",
  box: "M3 7l9-4 9 4v10l-9 4-9-4zM3 7l9 4 9-4M12 11v10",
  insights: "M4 20V12M10 20V5M16 20v-9M22 20H2",
} as const;

export type IconName = keyof typeof paths;

export function Icon({ name, size = 18 }: { name: IconName; size?: number }): ReactElement {
  return (
    <svg className="icon" width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={1.8} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true" focusable="false">
      <path d={paths[name]} />
    </svg>
  );
}
