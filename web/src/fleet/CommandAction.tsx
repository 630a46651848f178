// The command kinds an operator can pick, each with its own fields, and how a command's
// action and state read. Shared by the kiosk page's console and the jobs page.
import { useId } from "react";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { CommandActionSchema, CommandOutcome, CommandState, type CommandAction } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";

export type ActionKind = "reboot" | "restartApp" | "displayMessage" | "refreshCatalog" | "openServiceDoor" | "collectDiagnostics";

export interface ActionDraft {
  kind: ActionKind;
  graceful: boolean;
  text: string;
  durationSeconds: number;
  technician: string;
  includeLogs: boolean;
}

export const emptyAction: ActionDraft = { kind: "displayMessage", graceful: true, text: "", durationSeconds: 60, technician: "", includeLogs: false };

// apply_config is not offered: the Configuration section sets what a kiosk runs, and fleet
// pushes it (a hand-made apply_config could carry any version).
export const actionKinds: { kind: ActionKind; label: string }[] = [
  { kind: "displayMessage", label: "Show a message" },
  { kind: "reboot", label: "Reboot" },
  { kind: "restartApp", label: "Restart the app" },
  { kind: "refreshCatalog", label: "Refresh the catalog" },
  { kind: "openServiceDoor", label: "Open the service door" },
  { kind: "collectDiagnostics", label: "Collect diagnostics" },
];

export const ttlChoices = [
  { seconds: 60, label: "1 minute" },
  { seconds: 600, label: "10 minutes" },
  { seconds: 3_600, label: "1 hour" },
  { seconds: 86_400, label: "1 day" },
];

export function toAction(d: ActionDraft): CommandAction {
  switch (d.kind) {
    case "reboot":
      return create(CommandActionSchema, { kind: { case: "reboot", value: { graceful: d.graceful } } });
    case "restartApp":
      return create(CommandActionSchema, { kind: { case: "restartApp", value: {} } });
    case "displayMessage":
      return create(CommandActionSchema, { kind: { case: "displayMessage", value: { text: d.text, duration: durationFromMs(d.durationSeconds * 1_000) } } });
    case "refreshCatalog":
      return create(CommandActionSchema, { kind: { case: "refreshCatalog", value: {} } });
    case "openServiceDoor":
      return create(CommandActionSchema, { kind: { case: "openServiceDoor", value: { technician: d.technician } } });
    case "collectDiagnostics":
      return create(CommandActionSchema, { kind: { case: "collectDiagnostics", value: { includeLogs: d.includeLogs } } });
  }
}

const kindLabels: Record<string, string> = {
  reboot: "Reboot",
  restartApp: "Restart app",
  displayMessage: "Message",
  applyConfig: "Apply config",
  refreshCatalog: "Refresh catalog",
  openServiceDoor: "Service door",
  collectDiagnostics: "Diagnostics",
  installRelease: "Install release",
};

/** "Message: “Closed for cleaning”", "Reboot (graceful)". */
export function describeAction(action: CommandAction | undefined): string {
  const kind = action?.kind;
  if (!kind?.case) return "Unknown";
  const label = kindLabels[kind.case] ?? kind.case;
  switch (kind.case) {
    case "displayMessage":
      return `${label}: “${kind.value.text}”`;
    case "reboot":
      return kind.value.graceful ? `${label} (graceful)` : label;
    case "applyConfig":
      return `${label} v${kind.value.configVersion}`;
    case "openServiceDoor":
      return kind.value.technician ? `${label} for ${kind.value.technician}` : label;
    case "collectDiagnostics":
      return kind.value.includeLogs ? `${label} with logs` : label;
    case "installRelease":
      return `${label} ${kind.value.version}${kind.value.rolloutId ? " (rollout)" : ""}`;
    default:
      return label;
  }
}

export const commandStateInfo: Record<CommandState, { label: string; tone: string; param: string }> = {
  [CommandState.UNSPECIFIED]: { label: "Unknown", tone: "neutral", param: "unknown" },
  [CommandState.QUEUED]: { label: "Queued", tone: "neutral", param: "queued" },
  [CommandState.SENT]: { label: "Sent", tone: "new", param: "sent" },
  [CommandState.ACKED]: { label: "Acknowledged", tone: "new", param: "acked" },
  [CommandState.SUCCEEDED]: { label: "Succeeded", tone: "ok", param: "succeeded" },
  [CommandState.FAILED]: { label: "Failed", tone: "alert", param: "failed" },
  [CommandState.EXPIRED]: { label: "Expired", tone: "warn", param: "expired" },
  [CommandState.CANCELED]: { label: "Canceled", tone: "off", param: "canceled" },
};

export const cancelable = (s: CommandState) => s === CommandState.QUEUED || s === CommandState.SENT;

export function CommandStateBadge({ state, outcome }: { state: CommandState; outcome?: CommandOutcome }) {
  const info = commandStateInfo[state];
  const unsupported = outcome === CommandOutcome.UNSUPPORTED;
  return (
    <span className={`badge badge-${info.tone}`} data-testid="command-state" data-state={info.param}>
      <span className="dot" aria-hidden="true" />
      {info.label}
      {unsupported ? " (not supported by the kiosk)" : ""}
    </span>
  );
}

/** The kind picker and the picked kind's own fields. */
export function ActionFields({ draft, onChange, fieldErrors }: { draft: ActionDraft; onChange: (d: ActionDraft) => void; fieldErrors: Record<string, string> }) {
  const id = useId();
  const set = (patch: Partial<ActionDraft>) => onChange({ ...draft, ...patch });
  const error = (suffix: string) => Object.entries(fieldErrors).find(([f]) => f.endsWith(suffix))?.[1];
  return (
    <>
      <div className="field">
        <label htmlFor={`${id}-kind`}>Command</label>
        <select id={`${id}-kind`} value={draft.kind} onChange={(e) => set({ kind: e.target.value as ActionKind })}>
          {actionKinds.map((k) => (
            <option key={k.kind} value={k.kind}>
              {k.label}
            </option>
          ))}
        </select>
      </div>
      {draft.kind === "displayMessage" && (
        <>
          <div className={`field field-grow${error("display_message.text") ? " field-invalid" : ""}`}>
            <label htmlFor={`${id}-text`}>Message</label>
            <input id={`${id}-text`} value={draft.text} maxLength={500} required placeholder="e.g. Closed for cleaning until 14:00" onChange={(e) => set({ text: e.target.value })} />
            {error("display_message.text") && <p className="field-error">{error("display_message.text")}</p>}
          </div>
          <div className="field">
            <label htmlFor={`${id}-duration`}>Shown for (s)</label>
            <input id={`${id}-duration`} type="number" min={1} max={86_400} value={draft.durationSeconds} onChange={(e) => set({ durationSeconds: Number(e.target.value) })} />
          </div>
        </>
      )}
      {draft.kind === "reboot" && (
        <label className="checkbox">
          <input type="checkbox" checked={draft.graceful} onChange={(e) => set({ graceful: e.target.checked })} /> Wait for the current sale to finish
        </label>
      )}
      {draft.kind === "openServiceDoor" && (
        <div className="field field-grow">
          <label htmlFor={`${id}-tech`}>Technician</label>
          <input id={`${id}-tech`} value={draft.technician} maxLength={100} placeholder="Shown on the kiosk's screen" onChange={(e) => set({ technician: e.target.value })} />
        </div>
      )}
      {draft.kind === "collectDiagnostics" && (
        <label className="checkbox">
          <input type="checkbox" checked={draft.includeLogs} onChange={(e) => set({ includeLogs: e.target.checked })} /> Include logs
        </label>
      )}
    </>
  );
}

export function TtlField({ value, onChange, label = "Give up after" }: { value: number; onChange: (s: number) => void; label?: string }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(Number(e.target.value))}>
        {ttlChoices.map((t) => (
          <option key={t.seconds} value={t.seconds}>
            {t.label}
          </option>
        ))}
      </select>
    </div>
  );
}
