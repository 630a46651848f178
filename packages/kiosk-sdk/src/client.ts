// The kiosk's one long-lived stream to link, as reference firmware holds it:
// hello first, heartbeats, a telemetry outbox that survives outages, commands
// executed once, and reconnection with jittered exponential backoff.
//
// Reconnect policy, by how a stream ended:
// - an error or a plain end (link restarted, network gone): retry after backoffDelay(attempt);
//   the attempt counter resets once a Welcome arrives. UNAVAILABLE with grpc-retry-pushback-ms
//   (link's accept queue is full: a reconnect storm): after the pushback, plus up to a tenth
//   of it at random (link gives each refused kiosk a turn of its own: the spread is the server's).
// - Goodbye DRAINING (the replica shuts down): retry at once-ish (attempt 0), to another replica.
// - Goodbye REPLACED: stop. Another stream with this kiosk's credential took over; that is
//   another instance of this kiosk (or a second copy of its credential), and reconnecting
//   would make the two replace each other forever. The client emits disconnected("replaced").
// - Goodbye REVOKED, or UNAUTHENTICATED when (re)connecting (revoked or expired credential):
//   stop and emit "revoked"; the kiosk needs a new enrollment.
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { CommandOutcome, type CommandAction } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import {
  ConnectRequestSchema,
  ConnectResponseSchema,
  Goodbye_Reason,
  type CommandDelivery,
  type CommandResultSchema,
  type ConnectResponse,
  TelemetrySampleSchema,
  type TelemetrySample,
  UpdateStatusSchema,
  type UpdateStatus,
  type Welcome,
} from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { backoffDelay, defaultBackoff, type BackoffOptions } from "./backoff.js";
import { bearerMetadata, deserializer, newClient, serializer } from "./grpc.js";

const connectPath = "/adminkiosk.link.v1.LinkService/Connect";
const serializeRequest = serializer(ConnectRequestSchema);
const deserializeResponse = deserializer(ConnectResponseSchema);

type Request = MessageInitShape<typeof ConnectRequestSchema>;
type Result = MessageInitShape<typeof CommandResultSchema>;
export type TelemetrySampleInit = MessageInitShape<typeof TelemetrySampleSchema>;
export type UpdateStatusInit = MessageInitShape<typeof UpdateStatusSchema>;

export type CommandKind = NonNullable<CommandAction["kind"]["case"]>;
export type CommandPayload<K extends CommandKind> = Extract<CommandAction["kind"], { case: K }>["value"];
/** What a handler returns: nothing (succeeded) or a payload; throwing marks the command FAILED. */
export type CommandHandler<K extends CommandKind> = (action: CommandPayload<K>, delivery: CommandDelivery) => void | JsonObject | Promise<void | JsonObject>;

/** Applies a desired configuration; throwing reports it as not applied (with the message). */
export type ConfigHandler = (config: JsonObject, version: bigint) => void | Promise<void>;

export interface KioskClientEvents {
  connected: [welcome: Welcome];
  disconnected: [reason: string];
  revoked: [];
  command: [delivery: CommandDelivery];
  /** A desired configuration was applied (error empty) or refused. */
  config: [version: bigint, config: JsonObject, error: string];
}

export interface KioskClientOptions {
  /**
   * link's address: "host:port" or "http://host:port" (normally one name in front of
   * all link replicas). Several: after a stream fails the next one is tried.
   */
  linkAddress: string | string[];
  credential: string;
  firmwareVersion: string;
  appVersion: string;
  /** The configuration version the kiosk runs (persisted by the firmware); 0 when none yet. */
  configVersion?: bigint;
  /** Samples kept while they wait for a TelemetryAck; the oldest go first past this. Default 1000. */
  telemetryOutboxLimit?: number;
  backoff?: Partial<BackoffOptions>;
  /** Injectable for tests; Math.random by default. */
  random?: () => number;
}

/** Samples per TelemetryBatch. */
export const maxBatchSamples = 100;
/** Recent command ids remembered for de-duplication. */
const recentCommandsLimit = 500;

interface Batch {
  batchId: string;
  samples: TelemetrySample[];
  /** Sent on the current stream (reset on every new stream, so unacked batches are resent). */
  sent: boolean;
}

export class KioskClient {
  private readonly options: Required<Omit<KioskClientOptions, "backoff">> & { backoff: BackoffOptions };
  private readonly listeners = new Map<keyof KioskClientEvents, Set<(...args: never[]) => void>>();
  private readonly handlers = new Map<CommandKind, CommandHandler<never>>();
  private configHandler: ConfigHandler | undefined;
  private configVersion: bigint;
  private configApplying: Promise<void> = Promise.resolve();

  private running = false;
  private call: grpc.ClientDuplexStream<Request, ConnectResponse> | undefined;
  private connected = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private streamEnded: Promise<void> = Promise.resolve();

  // Telemetry outbox: sealed batches (oldest first) waiting for their ack, then loose samples.
  private batches: Batch[] = [];
  private loose: TelemetrySample[] = [];
  private dropped = 0;

  // Commands: id → its result once executed (undefined while running). Insertion-ordered, bounded.
  private readonly recentCommands = new Map<string, Result | undefined>();
  private unsentResults: Result[] = [];
  // Install progress reported while disconnected (a restart into a new version): sent on the next stream.
  private unsentUpdates: UpdateStatus[] = [];
  private lastUpdateTime = 0;

  constructor(options: KioskClientOptions) {
    this.configVersion = options.configVersion ?? 0n;
    this.options = {
      configVersion: 0n,
      telemetryOutboxLimit: 1000,
      random: Math.random,
      ...options,
      backoff: { ...defaultBackoff, ...options.backoff },
    };
  }

  // ---- events ----

  on<E extends keyof KioskClientEvents>(event: E, listener: (...args: KioskClientEvents[E]) => void): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (...args: never[]) => void);
    return this;
  }

  off<E extends keyof KioskClientEvents>(event: E, listener: (...args: KioskClientEvents[E]) => void): this {
    this.listeners.get(event)?.delete(listener as (...args: never[]) => void);
    return this;
  }

  private emit<E extends keyof KioskClientEvents>(event: E, ...args: KioskClientEvents[E]) {
    for (const listener of this.listeners.get(event) ?? []) (listener as (...a: KioskClientEvents[E]) => void)(...args);
  }

  // ---- lifecycle ----

  get isConnected(): boolean {
    return this.connected;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Used from the next (re)connect on, e.g. after renewCredential(). */
  setCredential(credential: string) {
    this.options.credential = credential;
  }

  /** Opens the stream and keeps it open until stop(), REPLACED or REVOKED. Restartable after stop(). */
  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.open();
  }

  /** Half-closes the stream (link sees a clean "closed"), waits briefly for it to end, then stops. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    const call = this.call;
    if (!call) return;
    const cancel = setTimeout(() => call.cancel(), 2_000);
    call.end();
    await this.streamEnded;
    clearTimeout(cancel);
  }

  private addressIndex = 0;

  private open() {
    const addresses = ([] as string[]).concat(this.options.linkAddress);
    const channel = newClient(addresses[this.addressIndex % addresses.length]!);
    const call = channel.makeBidiStreamRequest(connectPath, serializeRequest, deserializeResponse, bearerMetadata(this.options.credential));
    this.call = call;
    let goodbye: Goodbye_Reason | undefined;
    let error: grpc.ServiceError | undefined;
    let done!: () => void;
    this.streamEnded = new Promise((resolve) => (done = resolve));

    call.on("data", (res: ConnectResponse) => {
      if (res.body.case === "goodbye") {
        goodbye = res.body.value.reason;
        // Decide at once: nothing after a REVOKED goodbye may trigger a reconnect.
        if (goodbye === Goodbye_Reason.REVOKED || goodbye === Goodbye_Reason.REPLACED) this.running = false;
      }
      this.receive(res);
    });
    call.on("error", (err: grpc.ServiceError) => (error = err));
    call.on("status", () => {
      // Let any data still queued in the stream reach its handler before deciding.
      setImmediate(() => {
        this.closed(call, goodbye, error);
        channel.close();
        done();
      });
    });
    call.write({ body: { case: "hello", value: { firmwareVersion: this.options.firmwareVersion, appVersion: this.options.appVersion, executedCommandIds: this.executedCommandIds(), configVersion: this.configVersion } } });
  }

  private closed(call: grpc.ClientDuplexStream<Request, ConnectResponse>, goodbye: Goodbye_Reason | undefined, error: grpc.ServiceError | undefined) {
    if (this.call !== call) return;
    this.call = undefined;
    this.connected = false;
    clearInterval(this.heartbeatTimer);
    for (const b of this.batches) b.sent = false;

    const unauthenticated = error?.code === grpc.status.UNAUTHENTICATED;
    const reason =
      goodbye === Goodbye_Reason.REVOKED || unauthenticated ? "revoked"
      : goodbye === Goodbye_Reason.REPLACED ? "replaced"
      : goodbye === Goodbye_Reason.DRAINING ? "draining"
      : error ? `error: ${grpc.status[error.code] ?? error.code} ${error.details}`
      : this.running ? "ended"
      : "stopped";
    this.emit("disconnected", reason);
    if (reason === "revoked") {
      this.running = false;
      this.emit("revoked");
      return;
    }
    if (!this.running) return;
    if (reason === "draining") this.attempt = 0;
    // A replica that failed or is going away: try the next address, if there are several.
    if (reason === "draining" || reason.startsWith("error")) this.addressIndex++;
    // link too busy to take the stream now (a reconnect storm) says when to come back: then (as
    // gRPC's retry design has it), plus up to a tenth. link hands each kiosk it refuses a turn of
    // its own, spread at the rate it opens streams; a wider jitter of ours would only blur that
    // schedule (kiosks back while link has nothing to do, or more than it can take).
    // Being told when is not a failure to back off from: the attempt count does not grow, or a
    // kiosk turned away a few times in a storm would wait minutes after the storm had passed.
    const pushback = error?.code === grpc.status.UNAVAILABLE ? Number(error.metadata?.get("grpc-retry-pushback-ms")[0] ?? NaN) : NaN;
    const delay = Number.isFinite(pushback) && pushback >= 0 ? pushback + this.options.random() * pushback * 0.1 : backoffDelay(this.attempt++, this.options.backoff, this.options.random);
    this.retryTimer = setTimeout(() => {
      if (this.running) this.open();
    }, delay);
  }

  private send(req: Request) {
    this.call?.write(req);
  }

  private receive(res: ConnectResponse) {
    switch (res.body.case) {
      case "welcome": {
        const welcome = res.body.value;
        this.connected = true;
        this.attempt = 0;
        const everyMs = Math.max(1, welcome.heartbeatIntervalSeconds || 30) * 1000;
        clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = setInterval(() => this.send({ body: { case: "heartbeat", value: { time: timestampNow() } } }), everyMs);
        for (const result of this.unsentResults.splice(0)) this.send({ body: { case: "result", value: result } });
        for (const update of this.unsentUpdates.splice(0)) this.send({ body: { case: "updateStatus", value: update } });
        this.emit("connected", welcome);
        this.flush();
        return;
      }
      case "telemetryAck": {
        const batchId = res.body.value.batchId;
        this.batches = this.batches.filter((b) => b.batchId !== batchId);
        return;
      }
      case "command":
        void this.deliver(res.body.value);
        return;
      case "desiredConfig": {
        const { version, config } = res.body.value;
        // One at a time, in the order they came.
        this.configApplying = this.configApplying.then(() => this.applyConfig(version, (config ?? {}) as JsonObject));
        return;
      }
      default:
        // ping: nothing to do; goodbye: handled when the stream ends.
        return;
    }
  }

  // ---- software updates (updates.ts) ----

  /** The versions the next Hello reports (after an install or a revert). */
  setVersions(versions: { appVersion?: string; firmwareVersion?: string }) {
    if (versions.appVersion !== undefined) this.options.appVersion = versions.appVersion;
    if (versions.firmwareVersion !== undefined) this.options.firmwareVersion = versions.firmwareVersion;
  }

  get versions(): { appVersion: string; firmwareVersion: string } {
    return { appVersion: this.options.appVersion, firmwareVersion: this.options.firmwareVersion };
  }

  /** Ends the stream and opens a new one (a restart: its Hello reports the versions now set). */
  async restart(): Promise<void> {
    await this.stop();
    this.start();
  }

  /**
   * Reports where an install is (UpdateStatus); kept until a stream is open. Each report's
   * time is later than the one before, so fleet keeps them in order.
   */
  reportUpdate(status: UpdateStatusInit) {
    const ms = Math.max(Date.now(), this.lastUpdateTime + 1);
    this.lastUpdateTime = ms;
    const update = create(UpdateStatusSchema, status);
    update.time ??= timestampFromMs(ms);
    if (this.connected) this.send({ body: { case: "updateStatus", value: update } });
    else {
      this.unsentUpdates.push(update);
      // Only the latest progress matters; the outcomes are few.
      if (this.unsentUpdates.length > 100) this.unsentUpdates.splice(0, this.unsentUpdates.length - 100);
    }
  }

  // ---- configuration ----

  /** Registers how desired configuration is applied; without one it is taken as is. */
  onConfig(handler: ConfigHandler): this {
    this.configHandler = handler;
    return this;
  }

  /** The configuration version the kiosk runs. */
  get appliedConfigVersion(): bigint {
    return this.configVersion;
  }

  private async applyConfig(version: bigint, config: JsonObject) {
    if (version <= this.configVersion) {
      // Already running it (a resend): say so again.
      this.send({ body: { case: "configApplied", value: { version: this.configVersion } } });
      return;
    }
    let error = "";
    try {
      await this.configHandler?.(config, version);
      this.configVersion = version;
    } catch (err) {
      error = (err instanceof Error ? err.message : String(err)).slice(0, 2000) || "not applied";
    }
    this.send({ body: { case: "configApplied", value: { version, errorMessage: error } } });
    this.emit("config", version, config, error);
  }

  // ---- commands ----

  /** Registers the handler for one kind of command; kinds without one answer UNSUPPORTED. */
  onCommand<K extends CommandKind>(kind: K, handler: CommandHandler<K>): this {
    this.handlers.set(kind, handler as unknown as CommandHandler<never>);
    return this;
  }

  /**
   * Ids of recently executed commands, sent in Hello. link has no acknowledgement of results,
   * so "not yet seen acknowledged" is every id still in the bounded recent set.
   */
  private executedCommandIds(): string[] {
    return [...this.recentCommands].filter(([, result]) => result !== undefined).map(([id]) => id).slice(-1000);
  }

  private async deliver(delivery: CommandDelivery) {
    const commandId = delivery.commandId;
    // The delivery's traceparent goes back with the ack and the result: the command's trace ends there.
    const traceparent = delivery.traceparent;
    this.send({ body: { case: "ack", value: { commandId, traceparent } } });
    if (this.recentCommands.has(commandId)) {
      // Redelivered: acknowledged again, not executed again; repeat the result if it is known.
      const known = this.recentCommands.get(commandId);
      if (known) this.sendResult(known);
      return;
    }
    this.recentCommands.set(commandId, undefined);
    while (this.recentCommands.size > recentCommandsLimit) this.recentCommands.delete(this.recentCommands.keys().next().value!);
    this.emit("command", delivery);

    const action = delivery.action?.kind;
    const handler = action?.case ? this.handlers.get(action.case) : undefined;
    let result: Result;
    if (!action?.case || !handler) {
      result = { commandId, traceparent, outcome: CommandOutcome.UNSUPPORTED, errorMessage: `unsupported command: ${action?.case ?? "none"}` };
    } else {
      try {
        const payload = await handler(action.value as never, delivery);
        result = { commandId, traceparent, outcome: CommandOutcome.SUCCEEDED, ...(payload ? { payload } : {}) };
      } catch (err) {
        result = { commandId, traceparent, outcome: CommandOutcome.FAILED, errorMessage: err instanceof Error ? err.message : String(err) };
      }
    }
    if (this.recentCommands.has(commandId)) this.recentCommands.set(commandId, result);
    this.sendResult(result);
  }

  private sendResult(result: Result) {
    if (this.connected) this.send({ body: { case: "result", value: result } });
    else this.unsentResults.push(result);
  }

  // ---- telemetry ----

  /** Samples waiting in the outbox (sent or not, until acked). */
  get outboxSize(): number {
    return this.loose.length + this.batches.reduce((n, b) => n + b.samples.length, 0);
  }

  /** Samples dropped because the outbox was full. */
  get droppedSamples(): number {
    return this.dropped;
  }

  /** Queues a sample (sample_id and time are filled in when missing) and flushes soon if connected. */
  recordTelemetry(sample: TelemetrySampleInit) {
    const stored = create(TelemetrySampleSchema, sample);
    stored.sampleId ||= randomUUID();
    stored.time ??= timestampNow();
    this.loose.push(stored);
    while (this.outboxSize > this.options.telemetryOutboxLimit) this.dropOldest();
    if (this.connected && !this.flushScheduled) {
      // Coalesce samples recorded in the same tick into one batch.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private dropOldest() {
    this.dropped++;
    const first = this.batches[0];
    if (!first) {
      this.loose.shift();
      return;
    }
    // The batch keeps its id: if link already stored it, a resend is deduplicated; if not,
    // it stores what is left. An emptied batch is forgotten (link refuses empty batches).
    first.samples.shift();
    if (first.samples.length === 0) this.batches.shift();
  }

  private flush() {
    if (!this.connected) return;
    while (this.loose.length > 0) this.batches.push({ batchId: randomUUID(), samples: this.loose.splice(0, maxBatchSamples), sent: false });
    for (const batch of this.batches) {
      if (batch.sent) continue;
      batch.sent = true;
      this.send({ body: { case: "telemetry", value: { batchId: batch.batchId, samples: batch.samples } } });
    }
  }
}
