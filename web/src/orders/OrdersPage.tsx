// Orders: the daily sales chart (GetSalesSummary per day) and every order, filtered by kiosk
// and state, newest first. OrderTable is also the kiosk page's "Orders sold here".
import { lazy, Suspense, useEffect, useId, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useQuery } from "@connectrpc/connect-query";
import { OrderService, OrderState, type Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { EmptyState, ErrorNotice, Loading, SkeletonRows } from "../ui/feedback";
import { formatAgo, formatDateTime, formatMoney } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";
import { OrderStateBadge, orderStateInfo } from "./order-info";

// uPlot loads with the chart, not with the app.
const SalesChart = lazy(() => import("./SalesChart").then((m) => ({ default: m.SalesChart })));

const pageSize = 25;
const states = [OrderState.COMPLETED, OrderState.PENDING_PAYMENT, OrderState.CREATED, OrderState.FAILED, OrderState.PARTIALLY_REFUNDED, OrderState.REFUNDED];

export function OrdersPage() {
  const id = useId();
  const [params, setParams] = useSearchParams();
  const [kiosk, setKiosk] = useState(params.get("kiosk") ?? "");
  const state = Number(params.get("state") ?? 0) as OrderState;
  const kioskId = useDebounced(kiosk.trim());
  useEffect(() => {
    setParams(
      (p) => {
        if (kioskId) p.set("kiosk", kioskId);
        else p.delete("kiosk");
        return p;
      },
      { replace: true },
    );
  }, [kioskId, setParams]);
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Orders</h1>
          <p className="page-lede">Every sale at every kiosk, its payment, and refunds.</p>
        </div>
      </header>
      <Suspense fallback={<Loading label="Loading the chart" />}>
        <SalesChart kioskId={kioskId} />
      </Suspense>
      <section className="card" aria-labelledby={`${id}-title`}>
        <div className="card-toolbar">
          <h2 id={`${id}-title`} className="card-title">
            All orders
          </h2>
          <div className="filters">
            <div className="field">
              <label htmlFor={`${id}-kiosk`} className="visually-hidden">
                Kiosk
              </label>
              <input id={`${id}-kiosk`} value={kiosk} onChange={(e) => setKiosk(e.target.value)} placeholder="Kiosk id (all kiosks)" />
            </div>
            <div className="field">
              <label htmlFor={`${id}-state`} className="visually-hidden">
                State
              </label>
              <select
                id={`${id}-state`}
                value={state}
                onChange={(e) =>
                  setParams(
                    (p) => {
                      if (e.target.value === "0") p.delete("state");
                      else p.set("state", e.target.value);
                      return p;
                    },
                    { replace: true },
                  )
                }
              >
                <option value={OrderState.UNSPECIFIED}>Any state</option>
                {states.map((s) => (
                  <option key={s} value={s}>
                    {orderStateInfo[s].label}
                  </option>
                ))}
              </select>
            </div>
          </div>
        </div>
        <OrderTable kioskId={kioskId} state={state} size={pageSize} />
      </section>
    </div>
  );
}

export function OrderTable({ kioskId, state = OrderState.UNSPECIFIED, size, hideKiosk }: { kioskId: string; state?: OrderState; size: number; hideKiosk?: boolean }) {
  const pages = usePageTokens(kioskId, state);
  const orders = useQuery(OrderService.method.listOrders, { kioskId, state, pageSize: size, pageToken: pages.token }, { refetchInterval: 10_000 });
  const list = orders.data?.orders ?? [];
  const columns = hideKiosk ? 5 : 6;
  return (
    <>
      {orders.error && <ErrorNotice error={orders.error} onRetry={() => void orders.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Order</th>
              {!hideKiosk && <th scope="col">Kiosk</th>}
              <th scope="col">State</th>
              <th scope="col">Items</th>
              <th scope="col">Total</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {orders.isPending && <SkeletonRows rows={5} columns={columns} />}
            {list.map((o) => (
              <tr key={o.orderId} data-testid="order-row" data-order={o.orderId}>
                <td>
                  <Link to={`/orders/${o.orderId}`} className="row-link mono">
                    {o.receipt?.receiptNumber || o.orderId.slice(0, 8)}
                  </Link>
                </td>
                {!hideKiosk && (
                  <td>
                    <Link to={`/kiosks/${encodeURIComponent(o.kioskId)}`} className="mono">
                      {o.kioskId}
                    </Link>
                  </td>
                )}
                <td>
                  <OrderStateBadge state={o.state} />
                </td>
                <td className="small">{describeLines(o)}</td>
                <td className="nowrap">{formatMoney(o.totalMinor, o.currency)}</td>
                <td className="nowrap" title={formatDateTime(o.createTime)}>
                  {formatAgo(o.createTime)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!orders.isPending && list.length === 0 && !orders.error && (
          <EmptyState icon="orders" title={kioskId || state ? "No order matches" : "No orders yet"}>
            <p>Orders appear here as kiosks sell.</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={orders.data?.nextPageToken} shown={list.length} pageSize={size} noun="orders" />
    </>
  );
}

function describeLines(o: Order): string {
  const parts = o.lines.map((l) => (l.seatId ? `seat ${l.seatId}` : `${l.quantity} × ${l.sku}`));
  return parts.length <= 3 ? parts.join(", ") : `${parts.slice(0, 2).join(", ")} and ${parts.length - 2} more`;
}
