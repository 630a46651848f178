// The fleet's data for the pages, in one place. Live views come from fleet's server
// streams: WatchFleet drives the overview's counts and patches the kiosks on the page (and
// the map), WatchKiosk keeps one kiosk, its configuration and its commands current. Each
// stream writes into the same query cache the pages read, so a page is the same whether a
// value came from the first unary call or from the stream. See docs/web.md, "Live data".
import { keepPreviousData, useQueryClient, useQuery as useTanStackQuery, type QueryClient } from "@tanstack/react-query";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectQueryKey, useQuery, useTransport } from "@connectrpc/connect-query";
import { create } from "@bufbuild/protobuf";
import { KioskService, KioskStatus, type Kiosk, type ListKiosksResponse, type WatchFleetResponse } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { CommandService, ListCommandsResponseSchema, type Command, type ListCommandsResponse } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { ConfigService } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { useServerStream, type StreamState } from "../api/use-stream";

export const kioskPageSize = 50;
/** The map draws at most this many kiosks (ten ListKiosks pages of 1,000). */
export const mapKioskLimit = 10_000;
/** The kiosk page's command history: the newest this many, kept current by WatchKiosk. */
export const commandHistorySize = 25;

export interface FleetFilter {
  query: string;
  status: KioskStatus;
  groupId: string;
  tag: string;
  /** ListKiosks' order_by: "" (by id), "name", "name desc", "last_seen_time", "last_seen_time desc". */
  orderBy?: string;
}

const listInput = (f: FleetFilter) => ({ query: f.query, status: f.status, groupId: f.groupId, tag: f.tag, orderBy: f.orderBy ?? "" });

/** One page of the kiosk table (server-side filters, keyset pages, total count), patched live by useFleetLive. */
export function useKioskPage(filter: FleetFilter, pageToken: string) {
  return useQuery(KioskService.method.listKiosks, { ...listInput(filter), pageSize: kioskPageSize, pageToken }, { placeholderData: keepPreviousData });
}

/** The overview's counts: GetFleetSummary once, then every summary WatchFleet sends. */
export function useFleetSummary() {
  return useQuery(KioskService.method.getFleetSummary, {}, { select: (r) => r.summary });
}

/**
 * The limits fleet judges kiosks by (low paper, and so ALERTING), from the same summary
 * (shared with the overview's cache): the web never keeps thresholds of its own.
 * Undefined until fleet has answered.
 */
export function useKioskThresholds() {
  return useQuery(KioskService.method.getFleetSummary, {}, { select: (r) => r.summary?.thresholds, staleTime: 60_000 }).data;
}

/**
 * Opens WatchFleet while the overview is shown. Each message replaces the summary; changed
 * kiosks replace their rows in every cached page (and their points on the map, and their
 * cached GetKiosk). A page whose membership may have changed (a kiosk added or removed,
 * a row that left the page's status filter, a kiosk that entered it, or more changes than
 * one message carries) is fetched again, at most once per message (≤ 1/s).
 */
export function useFleetLive(): StreamState {
  const transport = useTransport();
  const queryClient = useQueryClient();
  return useServerStream(
    "watch-fleet",
    (signal) => createClient(KioskService, transport).watchFleet({}, { signal, timeoutMs: 0 }),
    (message, first) => applyFleetChanges(queryClient, transport, message, first),
  );
}

function applyFleetChanges(queryClient: QueryClient, transport: Transport, message: WatchFleetResponse, first: boolean) {
  const summaryKey = createConnectQueryKey({ schema: KioskService.method.getFleetSummary, input: {}, transport, cardinality: "finite" });
  const before = queryClient.getQueryData(summaryKey)?.summary;
  queryClient.setQueryData(summaryKey, (old) => (old ? { ...old, summary: message.summary } : old));
  if (!queryClient.getQueryData(summaryKey)) void queryClient.invalidateQueries({ queryKey: summaryKey });

  const listKey = createConnectQueryKey({ schema: KioskService.method.listKiosks, transport, cardinality: undefined });
  // After a reconnect, changes while the stream was down are unknown: reload the pages.
  const reload = first || message.changesTruncated || message.removedKioskIds.length > 0 || (before !== undefined && before.total !== message.summary?.total);
  const changed = new Map(message.changed.map((k) => [k.kioskId, k]));
  const stale: (readonly unknown[])[] = [];
  if (changed.size > 0) {
    for (const [key, page] of queryClient.getQueriesData<ListKiosksResponse>({ queryKey: listKey })) {
      if (!page) continue;
      const status = statusFilterOf(key);
      let touched = false;
      const kiosks = page.kiosks.map((k) => {
        const next = changed.get(k.kioskId);
        if (!next) return k;
        touched = true;
        if (status !== KioskStatus.UNSPECIFIED && next.status !== status) stale.push(key);
        return next;
      });
      // A kiosk not on a status-filtered page may have just entered that status.
      if (status !== KioskStatus.UNSPECIFIED && [...changed.values()].some((k) => k.status === status && !page.kiosks.some((p) => p.kioskId === k.kioskId))) stale.push(key);
      if (touched) queryClient.setQueryData(key, { ...page, kiosks });
    }
    for (const kiosk of changed.values()) {
      const key = createConnectQueryKey({ schema: KioskService.method.getKiosk, input: { kioskId: kiosk.kioskId }, transport, cardinality: "finite" });
      if (queryClient.getQueryData(key)) queryClient.setQueryData(key, (old) => (old ? { ...old, kiosk } : old));
    }
    queryClient.setQueriesData<KioskLocations>({ queryKey: ["kiosk-locations"] }, (old) =>
      old ? { ...old, points: old.points.map((p) => (changed.has(p.kioskId) ? { ...p, status: changed.get(p.kioskId)?.status ?? p.status } : p)) } : old,
    );
  }
  if (reload) {
    void queryClient.invalidateQueries({ queryKey: listKey });
    void queryClient.invalidateQueries({ queryKey: ["kiosk-locations"] });
  } else {
    for (const key of stale) void queryClient.invalidateQueries({ queryKey: key, exact: true });
  }
}

function statusFilterOf(key: readonly unknown[]): KioskStatus {
  const params = key[1] as { input?: { status?: KioskStatus | string } } | undefined;
  const status = params?.input?.status;
  if (typeof status === "number") return status;
  // connect-query keys hold the input as JSON: the enum by its proto name.
  if (typeof status === "string") return KioskStatus[status.replace(/^KIOSK_STATUS_/, "") as keyof typeof KioskStatus] ?? KioskStatus.UNSPECIFIED;
  return KioskStatus.UNSPECIFIED;
}

export interface KioskPoint {
  kioskId: string;
  name: string;
  status: KioskStatus;
  latitude: number;
  longitude: number;
}

interface KioskLocations {
  points: KioskPoint[];
  total: number;
}

/** Every located kiosk matching the filter (up to mapKioskLimit), for the map; statuses patched by useFleetLive. */
export function useKioskLocations(filter: FleetFilter, enabled: boolean) {
  const transport = useTransport();
  return useTanStackQuery({
    queryKey: ["kiosk-locations", filter],
    enabled,
    placeholderData: keepPreviousData,
    queryFn: async ({ signal }): Promise<KioskLocations> => {
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
  return useQuery(KioskService.method.getKiosk, { kioskId }, { select: (r) => r.kiosk });
}

export function useKioskConfig(kioskId: string) {
  return useQuery(ConfigService.method.getKioskConfig, { kioskId }, { select: (r) => r.config });
}

export function useKioskCommands(kioskId: string) {
  return useQuery(CommandService.method.listCommands, { kioskId, pageSize: commandHistorySize });
}

/**
 * Opens WatchKiosk while a kiosk's page is shown: the kiosk replaces GetKiosk's answer, the
 * configuration GetKioskConfig's, and each command update replaces (or, when new, heads)
 * the command history.
 */
export function useKioskLive(kioskId: string): StreamState {
  const transport = useTransport();
  const queryClient = useQueryClient();
  return useServerStream(
    kioskId ? `watch-kiosk:${kioskId}` : undefined,
    (signal) => createClient(KioskService, transport).watchKiosk({ kioskId }, { signal, timeoutMs: 0 }),
    (message, first) => {
      const event = message.event;
      if (event.case === "kiosk") {
        queryClient.setQueryData(createConnectQueryKey({ schema: KioskService.method.getKiosk, input: { kioskId }, transport, cardinality: "finite" }), (old) => ({ ...(old ?? { $typeName: "adminkiosk.fleet.v1.GetKioskResponse" as const }), kiosk: event.value }));
        // After a reconnect, command updates while it was down are unknown.
        if (first) void queryClient.invalidateQueries({ queryKey: createConnectQueryKey({ schema: CommandService.method.listCommands, input: { kioskId, pageSize: commandHistorySize }, transport, cardinality: "finite" }) });
      } else if (event.case === "config") {
        queryClient.setQueryData(createConnectQueryKey({ schema: ConfigService.method.getKioskConfig, input: { kioskId }, transport, cardinality: "finite" }), (old) => ({ ...(old ?? { $typeName: "adminkiosk.fleet.v1.GetKioskConfigResponse" as const }), config: event.value }));
      } else if (event.case === "command") {
        upsertCommand(queryClient, transport, kioskId, event.value);
      }
    },
  );
}

function upsertCommand(queryClient: QueryClient, transport: Transport, kioskId: string, command: Command) {
  const key = createConnectQueryKey({ schema: CommandService.method.listCommands, input: { kioskId, pageSize: commandHistorySize }, transport, cardinality: "finite" });
  queryClient.setQueryData(key, (old: ListCommandsResponse | undefined) => {
    const list = old ?? create(ListCommandsResponseSchema);
    const at = list.commands.findIndex((c) => c.commandId === command.commandId);
    const commands = at >= 0 ? list.commands.map((c, i) => (i === at ? command : c)) : [command, ...list.commands].slice(0, commandHistorySize);
    return { ...list, commands };
  });
}
