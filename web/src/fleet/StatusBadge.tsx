import { statusInfo, type KioskStatus } from "./status";

export function StatusBadge({ status }: { status: KioskStatus }) {
  const info = statusInfo[status];
  return (
    <span className={`badge badge-${info.tone}`}>
      <span className="dot" aria-hidden="true" />
      {info.label}
    </span>
  );
}
