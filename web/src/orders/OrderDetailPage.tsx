// One order: its lines, tickets, receipt text and payment, and for operators and admins the
// Refund form (the whole order, or chosen quantities of chosen lines).
import { useId, useState } from "react";
import { Link, useParams } from "react-router";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { OrderService, OrderState, type Order } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { PaymentIntentState, PaymentService } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { ErrorNotice, Loading } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatDateTime, formatMoney, formatNumber } from "../ui/format";
import { OrderStateBadge, orderFinished } from "./order-info";

const paymentWords: Record<PaymentIntentState, string> = {
  [PaymentIntentState.UNSPECIFIED]: "Unknown",
  [PaymentIntentState.REQUIRES_PAYMENT]: "Requires payment",
  [PaymentIntentState.PROCESSING]: "Processing at the provider",
  [PaymentIntentState.SUCCEEDED]: "Succeeded",
  [PaymentIntentState.FAILED]: "Failed",
  [PaymentIntentState.CANCELED]: "Canceled",
  [PaymentIntentState.PARTIALLY_REFUNDED]: "Partially refunded",
  [PaymentIntentState.REFUNDED]: "Refunded",
};

export function OrderDetailPage() {
  const { orderId = "" } = useParams();
  const order = useQuery(OrderService.method.getOrder, { orderId }, { refetchInterval: (q) => (q.state.data?.order && !orderFinished(q.state.data.order.state) ? 2_000 : false) });
  const o = order.data?.order;
  return (
    <div className="page">
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to="/orders">Orders</Link> / <span className="mono">{o?.receipt?.receiptNumber || orderId.slice(0, 8)}</span>
      </nav>
      {order.error && <ErrorNotice error={order.error} onRetry={() => void order.refetch()} />}
      {order.isPending && <Loading label="Loading the order" />}
      {o && <OrderView order={o} />}
    </div>
  );
}

function OrderView({ order: o }: { order: Order }) {
  const canRefund = useCan(OrderService.method.refundOrder);
  const refundable = o.state === OrderState.COMPLETED || o.state === OrderState.PARTIALLY_REFUNDED;
  return (
    <>
      <header className="page-header">
        <div>
          <h1>
            Order <span className="mono">{o.receipt?.receiptNumber || o.orderId.slice(0, 8)}</span> <OrderStateBadge state={o.state} />
          </h1>
          <p className="page-lede">
            At <Link to={`/kiosks/${encodeURIComponent(o.kioskId)}`}>{o.kioskId}</Link>, {formatDateTime(o.createTime)} · {formatMoney(o.totalMinor, o.currency)}
            {o.refundedMinor > 0n && <> · {formatMoney(o.refundedMinor, o.currency)} refunded</>}
          </p>
        </div>
      </header>
      {o.failureCode && (
        <div className="notice notice-error" role="status">
          <div className="notice-body">
            <p className="notice-title">The order failed: {o.failureCode}</p>
            <p>{o.failureMessage}</p>
          </div>
        </div>
      )}
      <div className="detail-grid">
        <section className="card card-wide" aria-label="Lines">
          <h2 className="card-title">Lines</h2>
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Item</th>
                  <th scope="col">Quantity</th>
                  <th scope="col">Unit price</th>
                  <th scope="col">Tax</th>
                  <th scope="col">Total</th>
                  <th scope="col">Refunded</th>
                </tr>
              </thead>
              <tbody>
                {o.lines.map((l) => (
                  <tr key={l.lineNumber}>
                    <td>{l.lineNumber}</td>
                    <td className="mono">{l.seatId ? `seat ${l.seatId} (${l.tierId})` : l.sku}</td>
                    <td>{formatNumber(l.quantity)}</td>
                    <td>{formatMoney(l.unitPriceMinor, o.currency)}</td>
                    <td>{(l.taxRateBasisPoints / 100).toFixed(2)} %</td>
                    <td>{formatMoney(l.totalMinor, o.currency)}</td>
                    <td>{l.refundedQuantity > 0n ? formatNumber(l.refundedQuantity) : "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
        <PaymentCard order={o} />
        {o.tickets.length > 0 && (
          <section className="card" aria-label="Tickets">
            <h2 className="card-title">Tickets</h2>
            <ul>
              {o.tickets.map((t) => (
                <li key={t.ticketId}>
                  <span className="mono">{t.seatId}</span> · <span className="mono small">{t.ticketId.slice(0, 8)}</span> {t.void && <span className="badge badge-neutral">void</span>}
                </li>
              ))}
            </ul>
          </section>
        )}
        {o.receipt?.printableText && (
          <section className="card" aria-label="Receipt">
            <h2 className="card-title">Receipt</h2>
            <pre className="receipt" data-testid="receipt">
              {o.receipt.printableText}
            </pre>
          </section>
        )}
        {canRefund && refundable && <RefundForm order={o} />}
      </div>
    </>
  );
}

function PaymentCard({ order: o }: { order: Order }) {
  // Read again every 2 s while payments has not caught up with the order (a refund in flight).
  const intent = useQuery(PaymentService.method.getPaymentIntent, { paymentIntentId: o.paymentIntentId }, { enabled: o.paymentIntentId !== "", refetchInterval: (q) => (q.state.data?.paymentIntent && q.state.data.paymentIntent.refundedMinor !== o.refundedMinor ? 2_000 : false) });
  const p = intent.data?.paymentIntent;
  return (
    <section className="card" aria-label="Payment">
      <h2 className="card-title">Payment</h2>
      {!o.paymentIntentId && <p className="muted">No payment was started for this order.</p>}
      {intent.error && <ErrorNotice error={intent.error} compact />}
      {p && (
        <dl className="kv">
          <dt>State</dt>
          <dd data-testid="payment-state">{paymentWords[p.state]}</dd>
          <dt>Amount</dt>
          <dd>{formatMoney(p.amountMinor, p.currency)}</dd>
          <dt>Refunded</dt>
          <dd>{formatMoney(p.refundedMinor, p.currency)}</dd>
          {p.failureCode && (
            <>
              <dt>Failure</dt>
              <dd>
                {p.failureCode}: {p.failureMessage}
              </dd>
            </>
          )}
          <dt>Intent</dt>
          <dd className="mono small">{p.paymentIntentId}</dd>
        </dl>
      )}
    </section>
  );
}

function RefundForm({ order: o }: { order: Order }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [whole, setWhole] = useState(true);
  const [quantities, setQuantities] = useState<Record<number, string>>({});
  const [reason, setReason] = useState("");
  // One key per form: a retried submit is the same refund; a new form a new one.
  const [idempotencyKey, setKey] = useState(() => crypto.randomUUID());
  const refund = useMutation(OrderService.method.refundOrder, {
    onSuccess: async () => {
      setKey(crypto.randomUUID());
      setQuantities({});
      await queryClient.invalidateQueries();
    },
  });
  const fields = refund.error ? describeError(refund.error).fields : {};
  const lines = whole
    ? []
    : o.lines
        .map((l) => ({ lineNumber: l.lineNumber, quantity: /^\d+$/.test(quantities[l.lineNumber] ?? "") ? BigInt(quantities[l.lineNumber] ?? "0") : 0n }))
        .filter((l) => l.quantity > 0n);
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} className="card-title">
        Refund
      </h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          refund.mutate({ idempotencyKey, orderId: o.orderId, lines, reason: reason.trim() });
        }}
      >
        <fieldset className="fieldset">
          <legend>What to refund</legend>
          <label className="checkbox">
            <input type="radio" name={`${id}-what`} checked={whole} onChange={() => setWhole(true)} /> Everything not yet refunded
          </label>{" "}
          <label className="checkbox">
            <input type="radio" name={`${id}-what`} checked={!whole} onChange={() => setWhole(false)} /> Chosen lines
          </label>
        </fieldset>
        {!whole &&
          o.lines.map((l) => {
            const left = l.quantity - l.refundedQuantity;
            return (
              <FormField key={l.lineNumber} id={`${id}-line-${l.lineNumber}`} label={`Line ${l.lineNumber}: ${l.seatId ? `seat ${l.seatId}` : l.sku}`} hint={`Up to ${left}`}>
                <input id={`${id}-line-${l.lineNumber}`} inputMode="numeric" value={quantities[l.lineNumber] ?? ""} disabled={left <= 0n} onChange={(e) => setQuantities({ ...quantities, [l.lineNumber]: e.target.value })} placeholder="0" />
              </FormField>
            );
          })}
        <FormField id={`${id}-reason`} label="Reason" hint="Kept with the refund" error={fields["reason"]}>
          <input id={`${id}-reason`} value={reason} onChange={(e) => setReason(e.target.value)} />
        </FormField>
        {refund.error && <ErrorNotice error={refund.error} compact />}
        {refund.isSuccess && (
          <p className="notice notice-ok" role="status">
            Refunded {formatMoney(refund.data.refundMinor, o.currency)}.
          </p>
        )}
        <div className="form-actions">
          <button type="submit" className="button button-danger" disabled={refund.isPending || (!whole && lines.length === 0)}>
            {refund.isPending ? "Refunding…" : whole ? "Refund order" : "Refund chosen lines"}
          </button>
        </div>
      </form>
    </section>
  );
}
