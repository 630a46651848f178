// How an order's state reads, shared by the orders pages and the kiosk page.
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";

export const orderStateInfo: Record<OrderState, { label: string; badge: string }> = {
  [OrderState.UNSPECIFIED]: { label: "Unknown", badge: "badge-neutral" },
  [OrderState.CREATED]: { label: "Created", badge: "badge-new" },
  [OrderState.PENDING_PAYMENT]: { label: "Pending payment", badge: "badge-warn" },
  [OrderState.COMPLETED]: { label: "Completed", badge: "badge-ok" },
  [OrderState.FAILED]: { label: "Failed", badge: "badge-alert" },
  [OrderState.PARTIALLY_REFUNDED]: { label: "Partially refunded", badge: "badge-warn" },
  [OrderState.REFUNDED]: { label: "Refunded", badge: "badge-neutral" },
};

export function OrderStateBadge({ state }: { state: OrderState }) {
  const info = orderStateInfo[state] ?? orderStateInfo[OrderState.UNSPECIFIED];
  return (
    <span className={`badge ${info.badge}`} data-testid="order-state">
      {info.label}
    </span>
  );
}

export function orderFinished(state: OrderState): boolean {
  return state !== OrderState.CREATED && state !== OrderState.PENDING_PAYMENT;
}
