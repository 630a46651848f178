// Offline selling (docs/offline.md): the conflict queue operators resolve, the leases per
// kiosk (what each may sell offline, what of it is synced as sold, revoke), and the
// offline sales synced so far with the order each became.
import { useId, useState } from "react";
import { Link } from "react-router";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { keepPreviousData, useQueryClient } from "@tanstack/react-query";
import { LeaseService, LeaseSource, LeaseState, type Lease } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { ConflictKind, ConflictResolution, ConflictState, OfflineSaleService, type OfflineConflict } from "@adminkiosk/proto/adminkiosk/orders/v1/offline_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatDateTime, formatMoney } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";
import { OrderStateBadge } from "./order-info";

const pageSize = 25;
const leaseStates: Record<LeaseState, string> = {
  [LeaseState.UNSPECIFIED]: "—",
  [LeaseState.ACTIVE]: "Active",
  [LeaseState.RETURNED]: "Returned",
  [LeaseState.REVOKED]: "Revoked",
  [LeaseState.EXPIRED]: "Expired",
};
const conflictKinds: Record<ConflictKind, string> = {
  [ConflictKind.UNSPECIFIED]: "—",
  [ConflictKind.LEASE_ENDED]: "Lease ended first",
  [ConflictKind.PAYMENT_DECLINED]: "Card declined on capture",
  [ConflictKind.NOT_IN_LEASE]: "Not in the lease",
  [ConflictKind.REJECTED]: "Rejected: never applicable",
};
const resolutionLabels: Record<ConflictResolution, string> = {
  [ConflictResolution.UNSPECIFIED]: "—",
  [ConflictResolution.REFUNDED]: "Refunded",
  [ConflictResolution.WRITTEN_OFF]: "Written off",
  [ConflictResolution.ACCEPTED]: "Accepted",
};

/** What an operator may decide for a conflict (docs/offline.md, the resolution policy; orders enforces it). */
function choicesFor(c: OfflineConflict): { value: ConflictResolution; label: string }[] {
  if (c.kind === ConflictKind.LEASE_ENDED && c.sold)
    return [
      { value: ConflictResolution.ACCEPTED, label: "Accept: the sale stands" },
      { value: ConflictResolution.REFUNDED, label: "Refunded (refund the order first)" },
    ];
  const refunded = { value: ConflictResolution.REFUNDED, label: "Customer refunded (tickets void)" };
  if (c.kind === ConflictKind.PAYMENT_DECLINED || c.kind === ConflictKind.REJECTED) return [refunded, { value: ConflictResolution.WRITTEN_OFF, label: "Written off (tickets stay valid)" }];
  return [refunded];
}

export function OfflinePage() {
  const id = useId();
  const [kiosk, setKiosk] = useState("");
  const kioskId = useDebounced(kiosk.trim());
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Offline selling</h1>
          <p className="page-lede">What each kiosk may sell without the network, what it sold offline, and the sales that could not be honoured.</p>
        </div>
        <div className="filters">
          <div className="field">
            <label htmlFor={`${id}-kiosk`} className="visually-hidden">
              Kiosk
            </label>
            <input id={`${id}-kiosk`} value={kiosk} onChange={(e) => setKiosk(e.target.value)} placeholder="Kiosk id (all kiosks)" />
          </div>
        </div>
      </header>
      <Conflicts kioskId={kioskId} />
      <Leases kioskId={kioskId} />
      <SyncedSales kioskId={kioskId} />
    </div>
  );
}

// Each list keeps its rows while a new kiosk filter or page loads: a conflict's row (its note
// being typed, its resolution chosen) stays mounted instead of being drawn anew, empty.
function Conflicts({ kioskId }: { kioskId: string }) {
  const id = useId();
  const [state, setState] = useState(ConflictState.OPEN);
  const pages = usePageTokens(kioskId, state);
  const conflicts = useQuery(OfflineSaleService.method.listOfflineConflicts, { kioskId, state, pageSize, pageToken: pages.token }, { refetchInterval: 10_000, placeholderData: keepPreviousData });
  const list = conflicts.data?.conflicts ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Conflicts to resolve
        </h2>
        <div className="field">
          <label htmlFor={`${id}-state`} className="visually-hidden">
            State
          </label>
          <select id={`${id}-state`} value={state} onChange={(e) => setState(Number(e.target.value) as ConflictState)}>
            <option value={ConflictState.OPEN}>Open</option>
            <option value={ConflictState.RESOLVED}>Resolved</option>
            <option value={ConflictState.UNSPECIFIED}>All</option>
          </select>
        </div>
      </div>
      <p className="small">
        Sold under a lease revoked meanwhile: recorded as sold (the buyer has it) — accept it, or refund the order and mark it refunded. A lease returned or expired first, or a sale
        orders rejected: nothing was sold, the card was not charged — the customer is owed a refund, or the loss is written off. A card declined on capture: the goods are gone — collect
        the money, or write it off.
      </p>
      {conflicts.error && <ErrorNotice error={conflicts.error} onRetry={() => void conflicts.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Kiosk</th>
              <th scope="col">What</th>
              <th scope="col">Amount</th>
              <th scope="col">Paid with</th>
              <th scope="col">Raised</th>
              <th scope="col">Resolution</th>
            </tr>
          </thead>
          <tbody>
            {conflicts.isPending && <SkeletonRows rows={3} columns={7} />}
            {list.map((c) => (
              <tr key={c.conflictId} data-testid="conflict-row">
                <td>
                  <Link to={`/orders/${c.orderId}`} className="row-link mono">
                    {c.orderId.slice(0, 8)}
                  </Link>
                </td>
                <td className="mono">{c.kioskId}</td>
                <td className="small">
                  <div>
                    {c.kind === ConflictKind.LEASE_ENDED && c.sold ? "Sold under a revoked lease" : conflictKinds[c.kind]} <span className="mono">({c.code})</span>
                  </div>
                  <div className="muted" data-testid="conflict-message">
                    {c.message}
                  </div>
                </td>
                <td className="nowrap">{c.currency ? formatMoney(c.amountMinor, c.currency) : String(c.amountMinor)}</td>
                <td className="mono small">{c.paymentMethod}</td>
                <td className="nowrap" title={formatDateTime(c.createTime)}>
                  {formatAgo(c.createTime)}
                </td>
                <td>{c.state === ConflictState.OPEN ? <Resolve conflict={c} /> : <span className="small">{describeResolution(c)}</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!conflicts.isPending && list.length === 0 && !conflicts.error && (
          <EmptyState icon="orders" title={state === ConflictState.OPEN ? "No open conflicts" : "No conflicts"}>
            <p>Offline sales that cannot be honoured as sold appear here.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={conflicts.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="conflicts" />
    </section>
  );
}

function describeResolution(c: OfflineConflict) {
  const what = resolutionLabels[c.resolution];
  return `${what} by ${c.resolvedBy}${c.note ? `: ${c.note}` : ""}`;
}

function Resolve({ conflict: c }: { conflict: OfflineConflict }) {
  const id = useId();
  const queryClient = useQueryClient();
  const can = useCan(OfflineSaleService.method.resolveOfflineConflict);
  const [note, setNote] = useState("");
  const choices = choicesFor(c);
  const [resolution, setResolution] = useState(choices[0]!.value);
  const resolve = useMutation(OfflineSaleService.method.resolveOfflineConflict, { onSuccess: () => queryClient.invalidateQueries() });
  if (!can) return <span className="small">Open</span>;
  const fields = resolve.error ? describeError(resolve.error).fields : {};
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        resolve.mutate({ conflictId: c.conflictId, resolution, note: note.trim() });
      }}
    >
      <label htmlFor={`${id}-resolution`} className="visually-hidden">
        Resolution
      </label>
      <select id={`${id}-resolution`} value={resolution} onChange={(e) => setResolution(Number(e.target.value) as ConflictResolution)}>
        {choices.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <label htmlFor={`${id}-note`} className="visually-hidden">
        Note
      </label>
      <input id={`${id}-note`} value={note} onChange={(e) => setNote(e.target.value)} placeholder="What was done" aria-invalid={fields["note"] ? true : undefined} />
      <button type="submit" className="button" disabled={resolve.isPending || note.trim() === ""}>
        Resolve
      </button>
      {resolve.error && <ErrorNotice error={resolve.error} compact />}
    </form>
  );
}

function Leases({ kioskId }: { kioskId: string }) {
  const id = useId();
  const pages = usePageTokens(kioskId);
  const leases = useQuery(LeaseService.method.listLeases, { kioskId, state: LeaseState.UNSPECIFIED, pageSize, pageToken: pages.token }, { refetchInterval: 15_000, placeholderData: keepPreviousData });
  const list = leases.data?.leases ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        Leases per kiosk
      </h2>
      <p className="small">
        Units and seats a kiosk may sell without asking. Not synced: leased but not yet synced as sold — unsold, or sold offline and pending sync. A revoked lease keeps its unsold seats held
        until the kiosk has synced (or its sync window is over), so they are never sold twice.
      </p>
      {leases.error && <ErrorNotice error={leases.error} onRetry={() => void leases.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Kiosk</th>
              <th scope="col">State</th>
              <th scope="col">Units (synced sold / leased)</th>
              <th scope="col">Seats (synced sold / leased)</th>
              <th scope="col">Not synced</th>
              <th scope="col">Sells until</th>
              <th scope="col">Granted by</th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {leases.isPending && <SkeletonRows rows={3} columns={8} />}
            {list.map((l) => (
              <tr key={l.leaseId} data-testid="lease-row">
                <td className="mono">{l.kioskId}</td>
                <td title={l.endReason}>
                  {leaseStates[l.state]}
                  {l.seatsQuarantined && <div className="small">Seats held until the kiosk syncs</div>}
                </td>
                <td className="small" title={l.items.map((i) => `${i.sku}: ${i.sizing || "as asked"}`).join("\n")}>
                  {l.items.map((i) => `${i.sku} ${i.sold}/${i.quantity}`).join(", ") || "—"}
                </td>
                <td className="small">{l.seats.length ? `${l.seats.filter((s) => s.sold).length}/${l.seats.length}` : "—"}</td>
                <td className="small" data-testid="lease-unsynced">
                  {l.state === LeaseState.ACTIVE || l.seatsQuarantined ? unsynced(l) : "—"}
                </td>
                <td className="nowrap" title={`held until ${formatDateTime(l.holdUntilTime)}`}>
                  {formatDateTime(l.expireTime)}
                </td>
                <td className="small">
                  {l.createdBy}
                  {l.source === LeaseSource.FORECAST && " (sized by forecast)"}
                </td>
                <td>{l.state === LeaseState.ACTIVE && <Revoke lease={l} />}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!leases.isPending && list.length === 0 && !leases.error && (
          <EmptyState icon="box" title="No leases">
            <p>Kiosks ask for leases before they may sell offline; operators can grant them too.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={leases.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="leases" />
    </section>
  );
}

/**
 * Leased but not synced as sold: unsold, or sold offline and waiting for the kiosk's sync.
 * A revoked lease's units went back at once; only its quarantined seats are still its own.
 */
function unsynced(l: Lease) {
  const units = l.state === LeaseState.ACTIVE ? l.items.reduce((n, i) => n + (i.quantity - i.sold), 0n) : 0n;
  const seats = l.seats.filter((s) => !s.sold).length;
  const count = (n: bigint | number, one: string) => (n === 0n || n === 0 ? "" : `${n} ${one}${n === 1n || n === 1 ? "" : "s"}`);
  return [count(units, "unit"), count(seats, "seat")].filter(Boolean).join(", ") || "none";
}

function Revoke({ lease }: { lease: Lease }) {
  const queryClient = useQueryClient();
  const can = useCan(LeaseService.method.revokeLease);
  const revoke = useMutation(LeaseService.method.revokeLease, { onSuccess: () => queryClient.invalidateQueries() });
  if (!can) return null;
  return (
    <>
      <button
        type="button"
        className="button button-danger"
        disabled={revoke.isPending}
        onClick={() => {
          const reason = window.prompt(`Revoke the lease of ${lease.kioskId}? Its unsold units go back now; its unsold seats stay held until the kiosk has synced (it may be selling them offline). Sales it synced later are recorded as sold and become conflicts. Reason:`);
          if (reason?.trim()) revoke.mutate({ leaseId: lease.leaseId, reason: reason.trim() });
        }}
      >
        Revoke
      </button>
      {revoke.error && <ErrorNotice error={revoke.error} compact />}
    </>
  );
}

function SyncedSales({ kioskId }: { kioskId: string }) {
  const id = useId();
  const pages = usePageTokens(kioskId);
  const sales = useQuery(OfflineSaleService.method.listOfflineSales, { kioskId, pageSize, pageToken: pages.token }, { refetchInterval: 10_000, placeholderData: keepPreviousData });
  const list = sales.data?.sales ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        Offline sales synced
      </h2>
      {sales.error && <ErrorNotice error={sales.error} onRetry={() => void sales.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Kiosk</th>
              <th scope="col">State</th>
              <th scope="col">Total</th>
              <th scope="col">Paid with</th>
              <th scope="col">Sold</th>
              <th scope="col">Synced</th>
            </tr>
          </thead>
          <tbody>
            {sales.isPending && <SkeletonRows rows={3} columns={7} />}
            {list.map((s) => (
              <tr key={s.order?.orderId} data-testid="offline-sale-row">
                <td>
                  <Link to={`/orders/${s.order?.orderId}`} className="row-link mono">
                    {s.order?.receipt?.receiptNumber || s.order?.orderId.slice(0, 8)}
                  </Link>
                </td>
                <td className="mono">{s.order?.kioskId}</td>
                <td>{s.order && <OrderStateBadge state={s.order.state} />}</td>
                <td className="nowrap">{s.order ? formatMoney(s.order.totalMinor, s.order.currency) : ""}</td>
                <td className="mono small">{s.paymentMethod}</td>
                <td className="nowrap">{formatDateTime(s.soldTime)}</td>
                <td className="nowrap" title={formatDateTime(s.syncTime)}>
                  {formatAgo(s.syncTime)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!sales.isPending && list.length === 0 && !sales.error && (
          <EmptyState icon="orders" title="No offline sales synced">
            <p>Sales a kiosk made offline appear here once it is back and has synced them.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={sales.data?.nextPageToken} shown={list.length} pageSize={pageSize} noun="sales" />
    </section>
  );
}
