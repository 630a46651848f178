// Registers the process groups this process starts with a reaper (reaper.mjs) that stops them
// if this process dies without stopping them itself.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

let reaper: ChildProcess | undefined;

function reaperStdin(): NodeJS.WritableStream | undefined {
  if (!reaper || reaper.exitCode !== null || reaper.signalCode !== null) {
    reaper = spawn(process.execPath, [fileURLToPath(new URL("./reaper.mjs", import.meta.url))], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
    reaper.on("error", () => {});
    reaper.stdin?.on("error", () => {});
    // Neither the reaper nor the pipe to it keeps this process alive.
    reaper.unref();
    (reaper.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
  return reaper.stdin ?? undefined;
}

/**
 * Has `child` stopped if this process exits while it still runs: by default `child` was spawned
 * `detached` (the leader of a process group of its own) and its group gets SIGTERM; with
 * `group: false` only the process gets `signal`. SIGKILL follows after 10 s.
 */
export function reapWithThisProcess(child: ChildProcess, options: { group?: boolean; signal?: NodeJS.Signals } = {}): void {
  const pid = child.pid;
  if (pid === undefined) return;
  reaperStdin()?.write(`+${pid} ${options.group === false ? "process" : "group"} ${options.signal ?? "SIGTERM"}\n`);
  child.once("exit", () => reaper?.stdin?.write(`-${pid}\n`));
}
