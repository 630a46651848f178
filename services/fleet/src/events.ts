// What fleet learns from link: a durable JetStream consumer on link.kiosk.> applies
// connections, disconnections and telemetry to the registry. Each message is applied
// in one transaction together with its inbox row, so a redelivery (after a crash or a
// late ack) changes nothing twice; timestamps decide, so order does not matter.
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { KioskConnectedEventSchema, KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { inTransaction, type Logger, type NatsConnection, type Pool, type PoolClient } from "@adminkiosk/runtime";

const stream = "LINK";

export interface LinkEventConsumer {
  stop(): Promise<void>;
}

export function consumeLinkEvents(pool: Pool, nats: Promise<NatsConnection>, durable: string, log: Logger): LinkEventConsumer {
  let stopped = false;
  const run = async () => {
    const nc = await nats;
    for (let attempt = 0; !stopped; attempt++) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 5_000 });
        // link creates the stream; until it has, there is nothing to consume.
        await jsm.consumers.add(stream, { durable_name: durable, filter_subject: "link.kiosk.>", ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000, max_deliver: -1 });
        const consumer = await jetstream(nc).consumers.get(stream, durable);
        attempt = 0;
        while (!stopped) {
          const batch = await consumer.fetch({ max_messages: 200, expires: 1_000 });
          for await (const msg of batch) {
            await apply(pool, msg);
            msg.ack();
          }
        }
      } catch (err) {
        if (stopped) return;
        if (attempt === 0) log.warn({ err }, "link events: consumer failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)));
      }
    }
  };
  const running = run();
  // Inbox rows only need to outlive redelivery: LINK keeps messages 7 days.
  const cleanup = setInterval(() => {
    pool.query("DELETE FROM inbox WHERE applied_at < now() - interval '8 days'").catch(() => {});
  }, 3_600_000);
  cleanup.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(cleanup);
      await Promise.race([running, new Promise((r) => setTimeout(r, 2_000))]);
    },
  };
}

async function apply(pool: Pool, msg: JsMsg) {
  await inTransaction(pool, async (tx) => {
    const { rowCount } = await tx.query("INSERT INTO inbox (stream, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING", [stream, msg.seq]);
    if (rowCount === 0) return; // applied before
    const kind = msg.subject.split(".").slice(3).join(".");
    if (kind === "connected") await connected(tx, msg.data);
    else if (kind === "disconnected") await disconnected(tx, msg.data);
    else if (kind === "telemetry") await telemetry(tx, msg.data);
  });
}

async function connected(tx: PoolClient, data: Uint8Array) {
  const e = fromBinary(KioskConnectedEventSchema, data);
  const at = e.time ? timestampDate(e.time) : new Date();
  await tx.query(
    `UPDATE kiosks SET connected = true, connection_changed_at = $2, last_seen_at = GREATEST(last_seen_at, $2),
       firmware_version = COALESCE(NULLIF($3, ''), firmware_version), app_version = COALESCE(NULLIF($4, ''), app_version)
     WHERE kiosk_id = $1 AND (connection_changed_at IS NULL OR connection_changed_at <= $2)`,
    [e.kioskId, at, e.hello?.firmwareVersion ?? "", e.hello?.appVersion ?? ""],
  );
}

async function disconnected(tx: PoolClient, data: Uint8Array) {
  const e = fromBinary(KioskDisconnectedEventSchema, data);
  const at = e.time ? timestampDate(e.time) : new Date();
  // A "replaced" stream's kiosk is still connected through its newer stream.
  if (e.reason === "replaced") return;
  await tx.query(
    `UPDATE kiosks SET connected = false, connection_changed_at = $2, last_seen_at = GREATEST(last_seen_at, $2)
     WHERE kiosk_id = $1 AND (connection_changed_at IS NULL OR connection_changed_at <= $2)`,
    [e.kioskId, at],
  );
}

async function telemetry(tx: PoolClient, data: Uint8Array) {
  const e = fromBinary(KioskTelemetryEventSchema, data);
  const latest = [...(e.batch?.samples ?? [])].filter((s) => s.time).sort((a, b) => timestampDate(a.time!).getTime() - timestampDate(b.time!).getTime()).at(-1);
  const received = e.receiveTime ? timestampDate(e.receiveTime) : new Date();
  await tx.query("UPDATE kiosks SET last_seen_at = GREATEST(last_seen_at, $2) WHERE kiosk_id = $1", [e.kioskId, received]);
  if (!latest?.time) return;
  const state = {
    cpuPercent: latest.cpuPercent,
    temperatureCelsius: latest.temperatureCelsius,
    paperLevelPercent: latest.paperLevelPercent,
    cashLevelMinor: String(latest.cashLevelMinor),
    printerStatus: DeviceStatus[latest.printer] ?? "UNSPECIFIED",
    scannerStatus: DeviceStatus[latest.scanner] ?? "UNSPECIFIED",
    errors: latest.errors,
  };
  await tx.query(
    `UPDATE kiosks SET state = $2, state_sampled_at = $3
     WHERE kiosk_id = $1 AND (state_sampled_at IS NULL OR state_sampled_at < $3)`,
    [e.kioskId, state, timestampDate(latest.time)],
  );
}
