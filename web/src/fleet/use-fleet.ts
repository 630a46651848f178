// The fleet's data for the pages, in one place. Today these poll ListKiosks/GetKiosk every
// few seconds; fleet's WatchFleet and WatchKiosk server streams (issue 3) replace the polling
// here without touching the pages: see docs/web.md, "Live data".
import { keepPreviousData, useQuery as useTanStackQuery } from "@tanstack/react-query";
import { Code, createClient } from "@connectrpc/connect";
import { useQuery, useTransport } from "@connectrpc/connect-query";
import { KioskService, KioskStatus, type Kiosk } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";

/** How often fleet views refresh until WatchFleet/WatchKiosk exist. */
export const fleetRefreshMs = 5_000;
export const kioskPageSize = 50;
/** The map draws at most this many kiosks (ten ListKiosks pages of 1,000). */
export const mapKioskLimit = 10_000;

export interface FleetFilter {
  query: string;
  status: KioskStatus;
  groupId: string;
  tag: string;
}

const listInput = (f: FleetFilter) => ({ query: f.query, status: f.status, groupId: f.groupId, tag: f.tag });

/** One page of the kiosk table (server-side filters, keyset pages, total count). */
export function useKioskPage(filter: FleetFilter, pageToken: string) {
  return useQuery(KioskService.method.listKiosks, { ...listInput(filter), pageSize: kioskPageSize, pageToken }, { refetchInterval: fleetRefreshMs, placeholderData: keepPreviousData });
}

export interface StatusCount {
  value: number | undefined;
  /** fleet refuses this status as a filter (ALERTING, until alert thresholds exist). */
  unsupported: boolean;
}

/**
 * The overview's counts: one ListKiosks per status asking for one row and reading
 * total_size. WatchFleet's summary replaces this.
 */
export function useFleetCounts() {
  const queries = {
    total: useStatusCount(KioskStatus.UNSPECIFIED),
    online: useStatusCount(KioskStatus.ONLINE),
    offline: useStatusCount(KioskStatus.OFFLINE),
    alerting: useStatusCount(KioskStatus.ALERTING),
    provisioned: useStatusCount(KioskStatus.PROVISIONED),
  };
  const all = Object.values(queries);
  const count = (q: (typeof all)[number]): StatusCount => ({ value: q.data, unsupported: q.error?.code === Code.InvalidArgument });
  return {
    total: count(queries.total),
    online: count(queries.online),
    offline: count(queries.offline),
    alerting: count(queries.alerting),
    provisioned: count(queries.provisioned),
    /** A failure other than an unsupported status (those are expected). */
    error: all.find((q) => q.error && q.error.code !== Code.InvalidArgument)?.error,
    refetch: () => all.forEach((q) => void q.refetch()),
  };
}

function useStatusCount(status: KioskStatus) {
  // A refused status is not asked again on every refresh.
  return useQuery(KioskService.method.listKiosks, { status, pageSize: 1 }, { refetchInterval: (q) => (q.state.error ? false : fleetRefreshMs), select: (r) => r.totalSize });
}

export interface KioskPoint {
  kioskId: string;
  name: string;
  status: KioskStatus;
  latitude: number;
  longitude: number;
}

/** Every located kiosk matching the filter (up to mapKioskLimit), for the map. */
export function useKioskLocations(filter: FleetFilter, enabled: boolean) {
  const transport = useTransport();
  return useTanStackQuery({
    queryKey: ["kiosk-locations", filter],
    enabled,
    refetchInterval: fleetRefreshMs * 3,
    placeholderData: keepPreviousData,
    queryFn: async ({ signal }) => {
      const client = createClient(KioskService, transport);
      const points: KioskPoint[] = [];
      let pageToken = "";
      let total = 0;
      do {
        const page = await client.listKiosks({ ...listInput(filter), pageSize: 1_000, pageToken }, { signal });
        total = page.totalSize;
        points.push(...page.kiosks.filter(hasLocation).map(toPoint));
        pageToken = page.nextPageToken;
      } while (pageToken && points.length < mapKioskLimit);
      return { points, total };
    },
  });
}

const hasLocation = (k: Kiosk) => k.location !== undefined && (k.location.latitude !== 0 || k.location.longitude !== 0);
const toPoint = (k: Kiosk): KioskPoint => ({ kioskId: k.kioskId, name: k.name, status: k.status, latitude: k.location?.latitude ?? 0, longitude: k.location?.longitude ?? 0 });

export function useKiosk(kioskId: string) {
  return useQuery(KioskService.method.getKiosk, { kioskId }, { refetchInterval: fleetRefreshMs, select: (r) => r.kiosk });
}
