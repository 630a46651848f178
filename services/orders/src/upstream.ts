// orders' calls to catalog and payments, made as orders itself: the transports carry
// orders' own service token (packages/runtime outbound.ts), never a kiosk's or an
// operator's credential. Only orders may reserve and commit stock, create payments and
// refund them; orders decides first who may ask it to (kiosks sell, operators refund).
import { createClient, type Client } from "@connectrpc/connect";
import { InventoryService, ReservationService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { LeaseService } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { PaymentService } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { serviceTransport, type ServiceCredentials } from "@adminkiosk/runtime";

export interface Upstream {
  reservations: Client<typeof ReservationService>;
  inventory: Client<typeof InventoryService>;
  /** Offline sales commit against kiosks' leases (docs/offline.md). */
  leases: Client<typeof LeaseService>;
  payments: Client<typeof PaymentService>;
}

export function createUpstream(catalogUrl: string, paymentsUrl: string, credentials: ServiceCredentials): Upstream {
  // Resilience (runtime resilience.ts): these writes are idempotent at the upstream, so a
  // transport retry after Unavailable is safe — Reserve by reservation id (the same items
  // return the same reservation), Commit and Release by their id, a payment and a refund
  // by their idempotency key. Restock is not (it adds units) and is tried once.
  const catalog = serviceTransport(catalogUrl, credentials, {
    upstream: "catalog",
    idempotent: [ReservationService.method.reserve, ReservationService.method.commitReservation, ReservationService.method.releaseReservation],
  });
  const payments = serviceTransport(paymentsUrl, credentials, {
    upstream: "payments",
    idempotent: [PaymentService.method.createPaymentIntent, PaymentService.method.refundPayment],
  });
  return {
    reservations: createClient(ReservationService, catalog),
    inventory: createClient(InventoryService, catalog),
    leases: createClient(LeaseService, catalog),
    payments: createClient(PaymentService, payments),
  };
}
