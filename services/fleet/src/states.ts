// The lifecycles of commands and jobs, defined once. Pure: the SQL that moves a row takes
// its state lists and CASE expressions from here (sqlStates, sqlNextState), so a state
// added or a rule changed is changed in one place.
//
// A command: queued → sent → acked → succeeded | failed, or expired (TTL) / canceled.
//   deliver  the dispatcher handed it to the kiosk's stream: queued becomes sent; a resend
//            of a sent or acked command keeps its state.
//   ack      the kiosk acknowledged it (the ack may overtake the dispatcher's "sent").
//   succeed, fail  the kiosk's result (a result may overtake its ack).
//   expire   its TTL passed before it finished.
//   cancel   an operator (or a job's cancel or abort) withdrew it: only before the kiosk
//            acknowledged it, since an acknowledged command may already be running.
// Finished commands (succeeded, failed, expired, canceled) never change again.

export const commandStateNames = ["queued", "sent", "acked", "succeeded", "failed", "expired", "canceled"] as const;
export type CommandStateName = (typeof commandStateNames)[number];
export type CommandEvent = "deliver" | "ack" | "succeed" | "fail" | "expire" | "cancel";

/** A new command's state. */
export const initialCommandState: CommandStateName = "queued";

const commandTransitions: Record<CommandStateName, Partial<Record<CommandEvent, CommandStateName>>> = {
  queued: { deliver: "sent", ack: "acked", succeed: "succeeded", fail: "failed", expire: "expired", cancel: "canceled" },
  sent: { deliver: "sent", ack: "acked", succeed: "succeeded", fail: "failed", expire: "expired", cancel: "canceled" },
  acked: { deliver: "acked", succeed: "succeeded", fail: "failed", expire: "expired" },
  succeeded: {},
  failed: {},
  expired: {},
  canceled: {},
};

/** The state `event` moves a command in `state` to, or undefined where it does not apply. */
export function nextCommandState(state: CommandStateName, event: CommandEvent): CommandStateName | undefined {
  return commandTransitions[state][event];
}

/** The states `event` applies to, in lifecycle order. */
export function commandStatesFor(event: CommandEvent): CommandStateName[] {
  return commandStateNames.filter((s) => nextCommandState(s, event) !== undefined);
}

/** Not finished: owed to the kiosk or awaiting its result (in flight). */
export const openCommandStates: readonly CommandStateName[] = commandStateNames.filter((s) => Object.keys(commandTransitions[s]).length > 0);

/** What the kiosk has not acknowledged yet, so it may still be canceled. */
export const cancelableCommandStates: readonly CommandStateName[] = commandStatesFor("cancel");

export const isOpenCommandState = (state: CommandStateName) => openCommandStates.includes(state);

/** How a job's progress counts a command. */
export function progressBucket(state: CommandStateName): "succeeded" | "failed" | "canceled" | "inFlight" {
  if (state === "succeeded") return "succeeded";
  if (state === "failed" || state === "expired") return "failed";
  if (state === "canceled") return "canceled";
  return "inFlight";
}

/**
 * A list of states as SQL literals for `state IN (…)`. Literals, not a parameter, so each
 * statement is planned for the states it names. The partial indexes on open commands
 * (commands_pending, commands_unfinished) name the stored column `open` (the open states, see
 * migration 1800610000002): a query that wants them says `open` too.
 */
export function sqlStates(states: readonly string[]): string {
  if (states.length === 0) throw new Error("sqlStates: no states");
  return states
    .map((s) => {
      if (!/^[a-z_]+$/.test(s)) throw new Error(`sqlStates: not a state name: ${s}`);
      return `'${s}'`;
    })
    .join(", ");
}

/** `CASE <column> WHEN … THEN … END`: the state after `event`, NULL where it does not apply. */
export function sqlNextState(event: CommandEvent, column = "state"): string {
  const arms = commandStatesFor(event).map((s) => `WHEN ${sqlStates([s])} THEN ${sqlStates([nextCommandState(s, event)!])}`);
  return `CASE ${column} ${arms.join(" ")} END`;
}

// A job: running ⇄ paused, then completed (every command dispatched and finished),
// aborted (more failures than allowed) or canceled (by an operator).
export const jobStateNames = ["running", "paused", "completed", "aborted", "canceled"] as const;
export type JobStateName = (typeof jobStateNames)[number];

export interface JobTransition {
  readonly from: readonly JobStateName[];
  readonly to: JobStateName;
  /** How the refusal names it: "job … can be <verb> only when …". */
  readonly verb: string;
}

export const jobTransitions = {
  pause: { from: ["running"], to: "paused", verb: "paused" },
  resume: { from: ["paused"], to: "running", verb: "resumed" },
  cancel: { from: ["running", "paused"], to: "canceled", verb: "canceled" },
  abort: { from: ["running"], to: "aborted", verb: "aborted" },
  complete: { from: ["running"], to: "completed", verb: "completed" },
} as const satisfies Record<string, JobTransition>;

/** Whether a job in `state` may take `transition`. */
export const jobMay = (state: JobStateName, transition: JobTransition) => transition.from.includes(state);

/** A job that will not change again. */
export const isFinishedJobState = (state: JobStateName) => !Object.values(jobTransitions).some((t) => jobMay(state, t));
