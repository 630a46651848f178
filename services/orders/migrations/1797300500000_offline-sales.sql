-- Up Migration
-- Offline sales (docs/offline.md): a sale a kiosk made from its lease while offline and
-- uploaded with SyncOfflineSales. The order row (orders) is its idempotency record as for
-- any sale: (kiosk_id, idempotency_key) once. This row says it was sold offline, from
-- which lease, when, how it was paid, and the provisional tickets the kiosk issued.
CREATE TABLE offline_sales (
  order_id             uuid PRIMARY KEY REFERENCES orders (id),
  kiosk_id             text NOT NULL,
  lease_id             uuid NOT NULL,
  sold_at              timestamptz NOT NULL,
  -- 'cash', or the card token authorised offline (captured on sync).
  payment_method       text NOT NULL,
  kiosk_total_minor    bigint NOT NULL,
  -- [{"ticket_id","event_id","seat_id","qr_payload"}] as the kiosk issued them.
  provisional_tickets  jsonb NOT NULL,
  synced_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offline_sales_by_time ON offline_sales (synced_at DESC, order_id DESC);
CREATE INDEX offline_sales_by_kiosk ON offline_sales (kiosk_id, synced_at DESC, order_id DESC);

-- The operator queue: offline sales that could not be honoured as sold. One per order and kind.
CREATE TABLE offline_conflicts (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  order_id        uuid NOT NULL REFERENCES orders (id),
  kiosk_id        text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('lease_ended', 'payment_declined', 'not_in_lease')),
  code            text NOT NULL,
  message         text NOT NULL,
  amount_minor    bigint NOT NULL,
  currency        text NOT NULL,
  state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
  resolution      text CHECK (resolution IN ('refunded', 'written_off')),
  resolved_by     text NOT NULL DEFAULT '',
  note            text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now(),
  resolved_at     timestamptz,
  UNIQUE (order_id, kind),
  CHECK ((state = 'resolved') = (resolution IS NOT NULL))
);
CREATE INDEX offline_conflicts_by_time ON offline_conflicts (created_at DESC, id DESC);
CREATE INDEX offline_conflicts_open ON offline_conflicts (created_at) WHERE state = 'open';

-- Down Migration
DROP TABLE offline_conflicts;
DROP TABLE offline_sales;
