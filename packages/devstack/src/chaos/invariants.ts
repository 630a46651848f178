// What must hold after a chaos run, checked against the services' own databases (one
// PostgreSQL, a schema per service), JetStream and what the load itself saw. Each check
// answers pass/fail with its numbers. The ones that need the platform to settle (orders
// reaching a terminal state, commands finishing, telemetry stored) are polled together
// until they pass or a deadline derived from the services' settings passes.
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService, JobState } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { chaosTag, type Load } from "./load.js";
import type { ChaosPlatform } from "./platform.js";

export interface InvariantResult {
  name: string;
  pass: boolean;
  /** The numbers behind the verdict. */
  detail: string;
}

const n = (v: unknown) => Number(v ?? 0);

async function rows<T>(db: pg.Client, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, params)).rows as T[];
}

async function one(db: pg.Client, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await rows<{ n: string }>(db, sql, params);
  return n(row?.n);
}

/** Schemas holding a table named `table`. */
async function schemasWith(db: pg.Client, table: string): Promise<string[]> {
  return (await rows<{ s: string }>(db, "SELECT table_schema AS s FROM information_schema.tables WHERE table_name = $1 ORDER BY 1", [table])).map((r) => r.s);
}

export async function checkInvariants(platform: ChaosPlatform, load: Load, context: { lastFaultEnd: number }): Promise<InvariantResult[]> {
  const db = new pg.Client({ connectionString: platform.databaseUrl });
  await db.connect();
  try {
    const results: InvariantResult[] = [];
    const add = (name: string, pass: boolean, detail: string) => results.push({ name, pass, detail });
    const kiosks = load.kioskIds;

    // --- no unit or seat sold twice; stock and seats reconcile with orders
    const ticketDup = await one(db, "SELECT count(*) AS n FROM (SELECT event_id, seat_id FROM orders.tickets WHERE NOT void GROUP BY 1, 2 HAVING count(*) > 1) d");
    const committedDup = await one(
      db,
      `SELECT count(*) AS n FROM (SELECT rs.event_id, rs.seat_id FROM catalog.reservation_seats rs JOIN catalog.reservations r USING (reservation_id)
        WHERE r.state = 'committed' GROUP BY 1, 2 HAVING count(*) > 1) d`,
    );
    const ticketsLive = await one(db, "SELECT count(*) AS n FROM orders.tickets WHERE NOT void");
    add("no seat sold twice", ticketDup === 0 && committedDup === 0, `${ticketsLive} valid tickets; seats with two valid tickets: ${ticketDup}; seats in two committed reservations: ${committedDup}`);

    const stock = await rows<{ kiosk_id: string; sku: string; on_hand: string; reserved: string; restocked: string; committed: string; held: string; sold: string }>(
      db,
      `SELECT s.kiosk_id, s.sku, s.on_hand, s.reserved,
         (SELECT coalesce(sum(quantity), 0) FROM catalog.restocks x WHERE x.kiosk_id = s.kiosk_id AND x.sku = s.sku) AS restocked,
         (SELECT coalesce(sum(i.quantity), 0) FROM catalog.reservation_items i JOIN catalog.reservations r USING (reservation_id)
            WHERE r.kiosk_id = s.kiosk_id AND i.sku = s.sku AND r.state = 'committed') AS committed,
         (SELECT coalesce(sum(i.quantity), 0) FROM catalog.reservation_items i JOIN catalog.reservations r USING (reservation_id)
            WHERE r.kiosk_id = s.kiosk_id AND i.sku = s.sku AND r.state = 'held') AS held,
         (SELECT coalesce(sum(l.quantity), 0) FROM orders.order_lines l JOIN orders.orders o ON o.id = l.order_id
            WHERE o.kiosk_id = s.kiosk_id AND l.sku = s.sku AND o.state IN ('completed', 'partially_refunded', 'refunded')) AS sold
       FROM catalog.stock s WHERE s.kiosk_id = ANY($1)`,
      [kiosks],
    );
    const oversold = stock.filter((s) => n(s.committed) > n(s.restocked));
    add("no unit sold twice", oversold.length === 0, `${stock.reduce((a, s) => a + n(s.committed), 0)} units sold of ${stock.reduce((a, s) => a + n(s.restocked), 0)} stocked; kiosk × SKU sold past their stock: ${oversold.length}`);
    const badStock = stock.filter((s) => n(s.on_hand) !== n(s.restocked) - n(s.committed) || n(s.reserved) !== n(s.held) || n(s.sold) !== n(s.committed));
    add(
      "stock reconciles with orders",
      badStock.length === 0,
      `${stock.length} kiosk × SKU; on_hand ≠ stocked − sold, reserved ≠ held, or completed orders' units ≠ committed: ${badStock.length}` +
        (badStock.length ? ` (e.g. ${JSON.stringify(badStock.slice(0, 3))})` : ""),
    );
    const seatSets = (await rows<{ sold: string; tickets: string; ordered: string; only_sold: string; only_tickets: string }>(
      db,
      `WITH sold AS (SELECT event_id::text AS e, seat_id AS s FROM catalog.seats WHERE state = 'sold'),
            tickets AS (SELECT event_id AS e, seat_id AS s FROM orders.tickets WHERE NOT void),
            ordered AS (SELECT l.event_id AS e, l.seat_id AS s FROM orders.order_lines l JOIN orders.orders o ON o.id = l.order_id
                        WHERE l.seat_id <> '' AND o.state IN ('completed', 'partially_refunded') AND l.refunded_quantity = 0)
       SELECT (SELECT count(*) FROM sold) AS sold, (SELECT count(*) FROM tickets) AS tickets, (SELECT count(*) FROM ordered) AS ordered,
              (SELECT count(*) FROM (SELECT * FROM sold EXCEPT SELECT * FROM tickets) x) AS only_sold,
              (SELECT count(*) FROM (SELECT * FROM tickets EXCEPT SELECT * FROM sold) x) AS only_tickets`,
    ))[0]!;
    add(
      "seats reconcile with orders",
      n(seatSets.sold) === n(seatSets.tickets) && n(seatSets.tickets) === n(seatSets.ordered) && n(seatSets.only_sold) === 0 && n(seatSets.only_tickets) === 0,
      `sold at catalog ${seatSets.sold}, valid tickets ${seatSets.tickets}, seats in completed orders ${seatSets.ordered}; sold without a ticket ${seatSets.only_sold}, ticket for a seat not sold ${seatSets.only_tickets}`,
    );

    // --- money
    const ledger = await rows<{ currency: string; sum: string; entries: string }>(db, "SELECT currency, sum(amount_minor) AS sum, count(*) AS entries FROM payments.ledger_entries GROUP BY 1 ORDER BY 1");
    add("ledger sums to zero per currency", ledger.every((l) => n(l.sum) === 0), ledger.map((l) => `${l.currency}: ${l.sum} over ${l.entries} entries`).join("; ") || "no entries");
    // Captured in time (a 'capture' posting); late captures (after the intent failed) are
    // refunded by payments itself, booked as 'late_capture' and cleared by 'late_capture_refund'.
    const captured = await rows<{ id: string; state: string; amount: string; refunded: string; orders: string }>(
      db,
      `SELECT i.id, i.state, i.amount_minor AS amount, i.refunded_minor AS refunded,
         (SELECT count(*) FROM orders.orders o WHERE o.payment_intent_id = i.id::text AND o.state IN ('completed', 'partially_refunded', 'refunded')) AS orders
       FROM payments.payment_intents i
       WHERE EXISTS (SELECT 1 FROM payments.ledger_transactions t WHERE t.intent_id = i.id AND t.kind = 'capture')`,
    );
    const refundedFully = (c: { refunded: string; amount: string }) => n(c.refunded) === n(c.amount);
    const lateOpen = await one(
      db,
      `SELECT count(*) AS n FROM payments.ledger_transactions t WHERE t.kind = 'late_capture'
        AND NOT EXISTS (SELECT 1 FROM payments.ledger_transactions u WHERE u.kind = 'late_capture_refund' AND u.intent_id = t.intent_id)`,
    );
    const unaccounted = captured.filter((c) => !(n(c.orders) === 1 || (n(c.orders) === 0 && (c.state === "refunded" || refundedFully(c)))));
    const lateCaptures = await one(db, "SELECT count(*) AS n FROM payments.ledger_transactions WHERE kind = 'late_capture'");
    const lateWithOrder = await one(
      db,
      `SELECT count(*) AS n FROM payments.ledger_transactions t JOIN orders.orders o ON o.payment_intent_id = t.intent_id::text
        WHERE t.kind = 'late_capture' AND o.state IN ('completed', 'partially_refunded', 'refunded')`,
    );
    add(
      "every captured payment: one completed order, or refunded",
      unaccounted.length === 0 && lateOpen === 0 && lateWithOrder === 0,
      `${captured.length} captured in time: with one completed order ${captured.filter((c) => n(c.orders) === 1).length}, refunded ${captured.filter((c) => n(c.orders) === 0 && n(c.refunded) === n(c.amount)).length}, neither or two orders ${unaccounted.length}; ` +
        `${lateCaptures} captured late: refund not posted ${lateOpen}, completing an order anyway ${lateWithOrder}`,
    );

    // --- orders
    const states = await rows<{ state: string; n: string }>(db, "SELECT state, count(*) AS n FROM orders.orders GROUP BY 1 ORDER BY 1");
    const open = states.filter((s) => s.state === "created" || s.state === "pending_payment").reduce((a, s) => a + n(s.n), 0);
    add("every order reached a terminal state", open === 0, states.map((s) => `${s.state} ${s.n}`).join(", ") || "no orders");
    const unpaid = await one(
      db,
      `SELECT count(*) AS n FROM orders.orders o WHERE o.state IN ('completed', 'partially_refunded', 'refunded') AND NOT EXISTS (
         SELECT 1 FROM payments.payment_intents i WHERE i.id::text = o.payment_intent_id AND i.state IN ('succeeded', 'partially_refunded', 'refunded')
           AND i.amount_minor = o.total_minor AND i.currency = o.currency)`,
    );
    const stray = await one(db, "SELECT count(*) AS n FROM orders.stray_payments");
    add("no order completed without its payment", unpaid === 0, `completed orders without a succeeded payment of their total: ${unpaid}; stray payments (refunded instead): ${stray}`);

    // --- commands
    let twice = 0;
    let executed = 0;
    for (const perKiosk of load.executions.values())
      for (const count of perKiosk.values()) {
        executed++;
        if (count > 1) twice++;
      }
    const cmdStates = await rows<{ state: string; n: string }>(db, "SELECT state, count(*) AS n FROM fleet.commands WHERE kiosk_id = ANY($1) GROUP BY 1 ORDER BY 1", [kiosks]);
    const succeededUnseen = (
      await rows<{ command_id: string; kiosk_id: string }>(db, "SELECT command_id, kiosk_id FROM fleet.commands WHERE kiosk_id = ANY($1) AND state = 'succeeded'", [kiosks])
    ).filter((c) => !load.executions.get(c.kiosk_id)?.has(c.command_id)).length;
    add(
      "every command executed at most once per kiosk",
      twice === 0 && succeededUnseen === 0,
      `${executed} commands executed by kiosks, ${twice} more than once; SUCCEEDED at fleet but never run by the kiosk: ${succeededUnseen}`,
    );
    const unfinished = await one(db, "SELECT count(*) AS n FROM fleet.commands WHERE kiosk_id = ANY($1) AND state IN ('queued', 'sent', 'acked') AND expire_at > now()", [kiosks]);
    let job = "no job";
    let jobDone = true;
    if (load.jobId) {
      const j = (await load.client(JobService, "fleet").getJob({ jobId: load.jobId }).catch(() => undefined))?.job;
      jobDone = j?.state === JobState.COMPLETED;
      job = `the job ${j ? JobState[j.state] : "unreadable"} (${j?.progress?.succeeded ?? "?"} succeeded of ${j?.progress?.total ?? "?"})`;
    }
    add(
      "every non-expired command reached a final state",
      unfinished === 0 && jobDone,
      `${cmdStates.map((s) => `${s.state} ${s.n}`).join(", ")}; unfinished and not expired: ${unfinished}; ${load.commandIds.length} sent by the admin; ${job}`,
    );

    // --- telemetry
    const t = load.telemetryCounts();
    const stored = await one(db, "SELECT count(*) AS n FROM fleet.telemetry_samples WHERE kiosk_id = ANY($1)", [kiosks]);
    add(
      "telemetry acknowledged = stored",
      stored === t.acked,
      `recorded ${t.recorded}, acknowledged ${t.acked}, stored ${stored}, waiting in kiosks' outboxes ${t.unacked}, dropped from full outboxes ${t.dropped}`,
    );

    // --- kiosks online
    const { kiosks: listed } = await load.client(KioskService, "fleet").listKiosks({ tag: chaosTag, pageSize: 1000 });
    const online = listed.filter((k) => k.status === KioskStatus.ONLINE || k.status === KioskStatus.ALERTING).length;
    add("every kiosk back ONLINE", online === kiosks.length, `${online} of ${kiosks.length} ONLINE at fleet at the check (${((Date.now() - context.lastFaultEnd) / 1000).toFixed(1)} s after the last fault); streams held: ${[...load.clients.values()].filter((c) => c.isConnected).length}`);

    // --- consumers
    const dead: string[] = [];
    for (const schema of await schemasWith(db, "dead_letters")) {
      for (const d of await rows<{ consumer: string; subject: string; reason: string; error: string }>(db, `SELECT consumer, subject, reason, error FROM ${schema}.dead_letters WHERE replayed_at IS NULL`))
        dead.push(`${schema}: ${d.consumer} ${d.subject} ${d.reason} (${d.error})`);
    }
    let outboxPending = 0;
    for (const schema of await schemasWith(db, "outbox")) outboxPending += await one(db, `SELECT count(*) AS n FROM ${schema}.outbox WHERE published_at IS NULL`);
    const consumers = await consumerBacklog(platform.natsUrl);
    const backlog = consumers.filter((c) => c.pending + c.ackPending > 0);
    add(
      "no consumer stuck",
      dead.length === 0 && outboxPending === 0 && backlog.length === 0,
      `dead letters ${dead.length}${dead.length ? `: ${dead.slice(0, 10).join("; ")}` : ""}; outbox rows unpublished ${outboxPending}; ` +
        `JetStream consumers ${consumers.length}, with a backlog: ${backlog.map((c) => `${c.stream}/${c.name} pending ${c.pending} unacked ${c.ackPending}`).join(", ") || "none"}`,
    );
    return results;
  } finally {
    await db.end();
  }
}

async function consumerBacklog(natsUrl: string): Promise<{ stream: string; name: string; pending: number; ackPending: number }[]> {
  const nc = await connect({ servers: natsUrl.replace(/^nats:\/\//, ""), timeout: 5_000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const out: { stream: string; name: string; pending: number; ackPending: number }[] = [];
    for await (const stream of jsm.streams.list()) {
      for await (const c of jsm.consumers.list(stream.config.name)) {
        // Durable consumers only: ephemeral ones (a replica's own) come and go.
        if (!c.config.durable_name) continue;
        out.push({ stream: stream.config.name, name: c.name, pending: c.num_pending, ackPending: c.num_ack_pending });
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}
