-- Up Migration
-- orders acts as itself at catalog and payments (a service token from auth), so it no
-- longer keeps kiosks' device credentials.
DROP INDEX IF EXISTS orders_credential_kept;
ALTER TABLE orders DROP COLUMN IF EXISTS kiosk_credential;

-- Successful payments naming an order that they could not complete: not the order's own
-- payment intent, a different amount or currency, or an order that had already failed.
-- Each is refunded automatically (the refund's key is derived from the intent, so it
-- happens once) and recorded here.
CREATE TABLE stray_payments (
  payment_intent_id  text PRIMARY KEY,
  order_id           uuid NOT NULL,
  kiosk_id           text NOT NULL,
  amount_minor       bigint NOT NULL,
  currency           text NOT NULL,
  reason             text NOT NULL,
  recorded_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stray_payments_order ON stray_payments (order_id);

-- Down Migration
DROP TABLE stray_payments;
ALTER TABLE orders ADD COLUMN kiosk_credential text;
