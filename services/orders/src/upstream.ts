// orders' calls to catalog and payments. Each call carries a credential: the kiosk's
// own (CreateOrder forwards it; the worker uses the copy kept with a pending order) or
// the operator's (refunds). Catalog and payments decide what that credential may do.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { InventoryService, ReservationService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { PaymentService } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";

export interface Upstream {
  reservations: Client<typeof ReservationService>;
  inventory: Client<typeof InventoryService>;
  payments: Client<typeof PaymentService>;
}

/** Per-call options: the credential (a bearer token), the request id, a deadline. */
export const asCaller = (authorization: string, requestId = "", signal?: AbortSignal) => ({
  headers: { authorization, "x-request-id": requestId },
  timeoutMs: 5_000,
  signal,
});

export function createUpstream(catalogUrl: string, paymentsUrl: string): Upstream {
  const catalog = createGrpcTransport({ baseUrl: catalogUrl });
  const payments = createGrpcTransport({ baseUrl: paymentsUrl });
  return {
    reservations: createClient(ReservationService, catalog),
    inventory: createClient(InventoryService, catalog),
    payments: createClient(PaymentService, payments),
  };
}
