// What link accepts from a kiosk: every field checked against what fleet's store can
// hold (telemetry_samples' real/bigint/smallint/text columns, kiosks.state and
// commands.result as jsonb, text without NUL), so nothing link publishes can fail in
// fleet's consumer. The rule (docs/architecture.md, link):
//   - a telemetry *sample* that breaks the contract is dropped (counted, logged) and the
//     rest of its batch is stored and acked: a batch is resent until acked, so refusing
//     it would cut the kiosk off again on every reconnect over one bad reading;
//   - anything else that breaks it (hello, the batch itself, acks, results, applied
//     configuration) ends the stream with InvalidArgument naming the field.
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { CommandOutcome } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { DeviceStatus, UpdateStatus_State, type CommandAck, type CommandResult, type ConfigApplied, type Hello, type TelemetrySample, type UpdateStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  invalidArgument,
  requireBigInt,
  requireCount,
  requireEnum,
  requireJson,
  requireNumber,
  requireText,
  requireTimestamp,
  requireUuid,
} from "@adminkiosk/runtime";

const int64Max = 2n ** 63n - 1n;

/** The bounds, also in docs/api.md (link). */
export const limits = {
  versionChars: 64,
  executedCommandIds: 1000,
  batchIdChars: 64,
  samplesPerBatch: 500,
  sampleIdChars: 64,
  errorsPerSample: 16,
  errorChars: 256,
  messageChars: 2000,
  payloadBytes: 64 * 1024,
  payloadDepth: 32,
};

export function checkHello(hello: Hello) {
  if (hello.firmwareVersion) requireText("hello.firmware_version", hello.firmwareVersion, { max: limits.versionChars });
  if (hello.appVersion) requireText("hello.app_version", hello.appVersion, { max: limits.versionChars });
  requireBigInt("hello.config_version", hello.configVersion, { min: 0n, max: int64Max });
  requireCount("hello.executed_command_ids", hello.executedCommandIds, limits.executedCommandIds);
  hello.executedCommandIds.forEach((id, i) => requireUuid(`hello.executed_command_ids[${i}]`, id));
}

/** The batch itself: its id and how many samples (each sample is checked by checkSample). */
export function checkBatch(batchId: string, samples: readonly TelemetrySample[]) {
  requireText("telemetry.batch_id", batchId, { max: limits.batchIdChars });
  requireCount("telemetry.samples", samples, limits.samplesPerBatch, 1);
}

/** Throws InvalidArgument naming the first field of sample `i` that breaks the contract. */
export function checkSample(s: TelemetrySample, i: number) {
  const f = (name: string) => `telemetry.samples[${i}].${name}`;
  requireText(f("sample_id"), s.sampleId, { max: limits.sampleIdChars });
  if (s.time) requireTimestamp(f("time"), s.time);
  requireNumber(f("cpu_percent"), s.cpuPercent, { min: 0, max: 100, float32: true });
  // Below absolute zero is not a reading; 1000 °C is far past any kiosk's hardware.
  requireNumber(f("temperature_celsius"), s.temperatureCelsius, { min: -273.15, max: 1000, float32: true });
  requireNumber(f("paper_level_percent"), s.paperLevelPercent, { min: 0, max: 100, float32: true });
  requireBigInt(f("cash_level_minor"), s.cashLevelMinor, { min: 0n, max: int64Max });
  requireEnum(f("printer"), s.printer, DeviceStatus);
  requireEnum(f("scanner"), s.scanner, DeviceStatus);
  requireCount(f("errors"), s.errors, limits.errorsPerSample);
  s.errors.forEach((e, j) => requireText(f(`errors[${j}]`), e, { max: limits.errorChars }));
}

export function checkCommandEvent(which: "ack" | "result", m: CommandAck | CommandResult) {
  requireUuid(`${which}.command_id`, m.commandId);
  if (which === "ack") return;
  const r = m as CommandResult;
  requireEnum("result.outcome", r.outcome, CommandOutcome);
  requireText("result.error_message", r.errorMessage, { min: 0, max: limits.messageChars, allowControl: true });
  if (r.payload) requireJson("result.payload", r.payload, { maxBytes: limits.payloadBytes, maxDepth: limits.payloadDepth });
}

export function checkConfigApplied(m: ConfigApplied) {
  // Whether fleet ever sent this version is fleet's to judge (it refuses a version above
  // the kiosk's desired one); link only keeps out what cannot be a version.
  requireBigInt("config_applied.version", m.version, { min: 1n, max: int64Max });
  requireText("config_applied.error_message", m.errorMessage, { min: 0, max: limits.messageChars, allowControl: true });
}

export function checkUpdateStatus(m: UpdateStatus) {
  requireUuid("update_status.release_id", m.releaseId);
  if (m.rolloutId) requireText("update_status.rollout_id", m.rolloutId, { max: 64 });
  requireEnum("update_status.state", m.state, UpdateStatus_State);
  if (m.state === UpdateStatus_State.UNSPECIFIED) throw invalidArgument("update_status.state", "must be set");
  requireText("update_status.version", m.version, { max: limits.versionChars });
  if (m.fromVersion) requireText("update_status.from_version", m.fromVersion, { max: limits.versionChars });
  requireBigInt("update_status.bytes_done", m.bytesDone, { min: 0n, max: int64Max });
  requireBigInt("update_status.bytes_total", m.bytesTotal, { min: 0n, max: int64Max });
  requireText("update_status.error_message", m.errorMessage, { min: 0, max: limits.messageChars, allowControl: true });
  if (m.time) requireTimestamp("update_status.time", m.time);
}

/** The field an InvalidArgument from these checks names, without list indexes (a metric label). */
export function refusedField(err: unknown): string | undefined {
  if (!(err instanceof ConnectError) || err.code !== Code.InvalidArgument) return undefined;
  const field = err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field;
  return field?.replace(/\[\d+\]/g, "");
}
