-- Up Migration
-- Commerce and alerting facts the fleet query language filters on (issue 20):
-- stock("SKU") from catalog's stock levels (stream CATALOG, catalog.stock.*.level) and
-- alerts / alerts(x) / alert(x) from notifications' alert changes (stream NOTIFICATIONS,
-- notifications.alert.>). services/fleet/src/stock.ts and alerts.ts keep them.

-- One row per kiosk and SKU: its latest level (a level older than the row's is ignored).
CREATE TABLE kiosk_stock (
  kiosk_id             text NOT NULL,
  sku                  text NOT NULL,
  on_hand              bigint NOT NULL,
  available            bigint NOT NULL,
  low_stock_threshold  bigint NOT NULL,
  updated_at           timestamptz NOT NULL,
  PRIMARY KEY (kiosk_id, sku)
);
-- stock("X") < 5: the SKU's kiosks in on-hand order, kiosk ids from the index alone.
CREATE INDEX kiosk_stock_sku ON kiosk_stock (sku, on_hand, kiosk_id);

-- Every alert notifications told fleet of; resolved ones stay a while (a late "fired"
-- must not reopen them) and are swept after a week.
CREATE TABLE kiosk_alerts (
  alert_id    text PRIMARY KEY,
  kiosk_id    text NOT NULL,
  rule_kind   text NOT NULL,
  severity    text NOT NULL,
  rule_name   text NOT NULL DEFAULT '',
  state       text NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
  changed_at  timestamptz NOT NULL DEFAULT now()
);
-- alerts > 0, alerts(critical): the open ones per kiosk, from the index alone.
CREATE INDEX kiosk_alerts_open ON kiosk_alerts (kiosk_id, severity, rule_kind) WHERE state <> 'resolved';
CREATE INDEX kiosk_alerts_resolved ON kiosk_alerts (changed_at) WHERE state = 'resolved';

-- Down Migration
DROP TABLE kiosk_alerts;
DROP TABLE kiosk_stock;
