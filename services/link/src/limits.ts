// What one kiosk may send: a token bucket per stream for messages and one for
// telemetry samples (three numbers per stream, refilled lazily when a message
// arrives: no timer per stream), and a short cool-down in Redis for a kiosk that was
// cut off, so reconnecting at once does not hand it a fresh burst.
import type { Redis } from "@adminkiosk/runtime";

export interface BudgetLimits {
  messageRate: number;
  messageBurst: number;
  sampleRate: number;
  sampleBurst: number;
  /** Samples that break the contract (dropped one by one) a stream may send before it is cut off. */
  invalidRate: number;
  invalidBurst: number;
}

/** A stream's tokens: messages and samples it may still send, and when they were last refilled. */
export interface Budget {
  messages: number;
  samples: number;
  /** Invalid samples it may still send (refilled when counted; `at` is shared). */
  invalid: number;
  at: number;
}

export const fullBudget = (limits: BudgetLimits, now: number): Budget => ({ messages: limits.messageBurst, samples: limits.sampleBurst, invalid: limits.invalidBurst, at: now });

/** Takes one message carrying `samples` samples; returns the budget that ran out, if one did. */
export function spend(budget: Budget, limits: BudgetLimits, now: number, samples: number): "messages" | "samples" | undefined {
  const seconds = Math.max(0, now - budget.at) / 1000;
  budget.at = now;
  budget.messages = Math.min(limits.messageBurst, budget.messages + seconds * limits.messageRate) - 1;
  budget.samples = Math.min(limits.sampleBurst, budget.samples + seconds * limits.sampleRate) - samples;
  budget.invalid = Math.min(limits.invalidBurst, budget.invalid + seconds * limits.invalidRate);
  if (budget.messages < 0) return "messages";
  if (budget.samples < 0) return "samples";
  return undefined;
}

/**
 * Counts `dropped` samples that broke the contract (after spend refilled the bucket for
 * the message that carried them); true when the stream has sent more than it may.
 * A kiosk with one broken sensor never gets here; one sending garbage on purpose does.
 */
export function spendInvalid(budget: Budget, dropped: number): boolean {
  budget.invalid -= dropped;
  return budget.invalid < 0;
}

const cooldownKey = (kioskId: string) => `link:cooldown:${kioskId}`;

export interface Cooldown {
  /** Starts the kiosk's cool-down (shared by all replicas). */
  start(kioskId: string): Promise<void>;
  /**
   * The Redis key of the kiosk's cool-down when cool-downs are on (a key with a TTL while it
   * lasts): a stream opening reads it in its presence claim's round trip (presence.claimMany).
   */
  key(kioskId: string): string | undefined;
  /** Milliseconds left of the kiosk's cool-down; 0 when there is none. */
  remainingMs(kioskId: string): Promise<number>;
}

export function createCooldown(redis: Redis, seconds: number): Cooldown {
  return {
    async start(kioskId) {
      if (seconds > 0) await redis.set(cooldownKey(kioskId), "1", "EX", seconds);
    },
    key: (kioskId) => (seconds > 0 ? cooldownKey(kioskId) : undefined),
    async remainingMs(kioskId) {
      if (seconds <= 0) return 0;
      return Math.max(0, await redis.pttl(cooldownKey(kioskId)));
    },
  };
}
