// How a kiosk's status reads and looks everywhere in the app.
import { KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";

export { KioskStatus };

export const statusInfo: Record<KioskStatus, { label: string; tone: string; param: string }> = {
  [KioskStatus.UNSPECIFIED]: { label: "Unknown", tone: "neutral", param: "" },
  [KioskStatus.ONLINE]: { label: "Online", tone: "ok", param: "online" },
  [KioskStatus.OFFLINE]: { label: "Offline", tone: "off", param: "offline" },
  [KioskStatus.ALERTING]: { label: "Alerting", tone: "alert", param: "alerting" },
  [KioskStatus.PROVISIONED]: { label: "Not yet connected", tone: "new", param: "provisioned" },
};

export const filterableStatuses = [KioskStatus.ONLINE, KioskStatus.ALERTING, KioskStatus.OFFLINE, KioskStatus.PROVISIONED] as const;

export function statusFromParam(param: string | null): KioskStatus {
  return filterableStatuses.find((s) => statusInfo[s].param === param) ?? KioskStatus.UNSPECIFIED;
}

