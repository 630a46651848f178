// adminkiosk.ops.v1.DeadLetterService: what a service's durable consumers gave up on
// (consumer.ts), listed and replayed by an admin. startService mounts it in every service
// that passes `consumers`; each service answers for its own dead_letters table.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { DeadLetterSchema, DeadLetterService } from "@adminkiosk/proto/adminkiosk/ops/v1/dead_letters_pb";
import type { ConsumedMessage, DurableConsumer } from "./consumer.js";
import { describeError } from "./consumer.js";
import { cursorPatterns, decodePageToken, encodePageToken, invalidArgument, pageSize, requireUuid } from "./validate.js";

interface DeadLetterRow {
  id: string;
  consumer: string;
  stream: string;
  stream_seq: string;
  subject: string;
  msg_id: string;
  headers: Record<string, string>;
  data: Buffer;
  reason: string;
  error: string;
  first_failed_at: Date;
  last_failed_at: Date;
  deliveries: number;
  replayed_at: Date | null;
}

const columns = "id, consumer, stream, stream_seq, subject, msg_id, headers, data, reason, error, first_failed_at, last_failed_at, deliveries, replayed_at";

function toDeadLetter(r: DeadLetterRow): MessageInitShape<typeof DeadLetterSchema> {
  return {
    deadLetterId: r.id,
    consumer: r.consumer,
    stream: r.stream,
    streamSequence: BigInt(r.stream_seq),
    subject: r.subject,
    msgId: r.msg_id,
    headers: r.headers,
    data: new Uint8Array(r.data),
    reason: r.reason,
    error: r.error,
    firstFailureTime: timestampFromDate(r.first_failed_at),
    lastFailureTime: timestampFromDate(r.last_failed_at),
    deliveries: r.deliveries,
    replayTime: r.replayed_at ? timestampFromDate(r.replayed_at) : undefined,
  };
}

export const deadLetterServices = [DeadLetterService];

export function deadLetterRoutes(consumers: DurableConsumer[]) {
  const pool = consumers[0]!.pool;
  return (router: ConnectRouter) =>
    router.service(DeadLetterService, {
      async listDeadLetters(req) {
        const limit = pageSize("page_size", req.pageSize);
        const cursor = decodePageToken("page_token", req.pageToken, { t: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        if (req.consumer.length > 200) throw invalidArgument("consumer", "must be at most 200 characters");
        const { rows } = await pool.query<DeadLetterRow>(
          `SELECT ${columns} FROM dead_letters
           WHERE ($1 = '' OR consumer = $1) AND ($2 OR replayed_at IS NULL)
             AND ($3::timestamptz IS NULL OR (last_failed_at, id) < ($3::timestamptz, $4::uuid))
           ORDER BY last_failed_at DESC, id DESC LIMIT $5`,
          [req.consumer, req.includeReplayed, cursor ? cursor.t : null, cursor ? cursor.id : null, limit + 1],
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        return {
          deadLetters: page.map(toDeadLetter),
          nextPageToken: rows.length > limit && last ? encodePageToken({ t: last.last_failed_at.toISOString(), id: last.id }) : "",
        };
      },
      async replayDeadLetter(req) {
        const id = requireUuid("dead_letter_id", req.deadLetterId);
        const { rows } = await pool.query<DeadLetterRow>(`SELECT ${columns} FROM dead_letters WHERE id = $1`, [id]);
        const row = rows[0];
        if (!row) throw new ConnectError(`dead letter ${id} not found`, Code.NotFound);
        if (row.replayed_at) throw new ConnectError(`dead letter ${id} was replayed at ${row.replayed_at.toISOString()}`, Code.FailedPrecondition);
        const consumer = consumers.find((c) => c.durable === row.consumer && c.stream === row.stream);
        if (!consumer) throw new ConnectError(`consumer ${row.consumer} on ${row.stream} does not run in this service any more`, Code.FailedPrecondition);
        const msg: ConsumedMessage = {
          subject: row.subject,
          stream: row.stream,
          seq: Number(row.stream_seq),
          msgId: row.msg_id,
          key: row.msg_id ? `id:${row.msg_id}` : `seq:${row.stream_seq}`,
          headers: row.headers,
          data: new Uint8Array(row.data),
          deliveries: row.deliveries + 1,
        };
        try {
          await consumer.replay(msg);
        } catch (err) {
          // PostgreSQL or a peer down says nothing about the message: the caller may retry.
          if ((await consumer.classify(err)).kind === "unavailable") throw err;
          await pool.query("UPDATE dead_letters SET error = $2, last_failed_at = now(), deliveries = deliveries + 1 WHERE id = $1", [id, describeError(err)]);
          throw new ConnectError(`the handler failed again: ${describeError(err)}`, Code.FailedPrecondition);
        }
        const { rows: done } = await pool.query<DeadLetterRow>(`UPDATE dead_letters SET replayed_at = now() WHERE id = $1 RETURNING ${columns}`, [id]);
        return { deadLetter: toDeadLetter(done[0]!) };
      },
    });
}

