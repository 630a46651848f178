-- Up Migration
-- ai's own sales history: one row per kiosk × SKU × UTC day. Filled by completed orders
-- (stream ORDERS, through the runtime's durable consumer) and, in development and tests,
-- by the generator (source 'generated').
CREATE TABLE sales_daily (
  kiosk_id          text NOT NULL,
  sku               text NOT NULL,
  day               date NOT NULL,
  quantity          bigint NOT NULL CHECK (quantity >= 0),
  -- The day's (last) unit price, minor units.
  unit_price_minor  bigint NOT NULL CHECK (unit_price_minor > 0),
  -- Sales were censored by a stock-out: not demand, so not trained on nor scored.
  stockout          boolean NOT NULL DEFAULT false,
  source            text NOT NULL,
  PRIMARY KEY (kiosk_id, sku, day)
);

-- The model registry. At most one version serves.
CREATE TABLE models (
  version           bigserial PRIMARY KEY,
  kind              text NOT NULL,
  status            text NOT NULL CHECK (status IN ('candidate', 'serving', 'retired', 'rejected')),
  train_from        date NOT NULL,
  train_to          date NOT NULL,
  holdout_from      date NOT NULL,
  holdout_to        date NOT NULL,
  features          text[] NOT NULL,
  -- Feature layout (pairs, kiosks, prices, dispersion): what turns a request into the graph's input.
  layout            jsonb NOT NULL,
  -- { model: {wape, mae, bias, coverage80, points}, baseline: {…}, serving: {…} | null }
  metrics           jsonb NOT NULL,
  onnx              bytea NOT NULL,
  training_rows     bigint NOT NULL,
  training_seconds  double precision NOT NULL,
  gate_reason       text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  created_by        text NOT NULL,
  promoted_at       timestamptz
);
CREATE UNIQUE INDEX models_one_serving ON models ((true)) WHERE status = 'serving';

-- Down Migration
DROP TABLE models;
DROP TABLE sales_daily;
