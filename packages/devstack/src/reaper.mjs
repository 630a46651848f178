// Stops what a devstack launcher (npm start, a test worker, a bench) started when the launcher
// dies without stopping it: SIGKILL, an out-of-memory kill, a crash. Services, NATS and Redis
// run in process groups of their own (so a Ctrl-C reaches the launcher only, which drains
// them in order), and would otherwise live on holding their ports.
//
// The launcher writes "+<pgid>" when it starts a process group and "-<pgid>" when that group
// has exited. When the launcher's end of stdin closes — it exited, however — every group
// still listed gets SIGTERM (a graceful drain), then SIGKILL after 10 s.
import { createInterface } from "node:readline";

const groups = new Set();
// In a group of its own, a Ctrl-C or a kill of the launcher's group does not reach it.
for (const signal of ["SIGINT", "SIGHUP"]) process.on(signal, () => {});
const send = (signal) => {
  for (const group of groups) {
    try {
      process.kill(-group, signal);
    } catch {
      groups.delete(group); // already gone
    }
  }
};
createInterface({ input: process.stdin })
  .on("line", (line) => {
    const group = Number(line.slice(1));
    if (!Number.isInteger(group) || group <= 1) return;
    if (line[0] === "+") groups.add(group);
    else if (line[0] === "-") groups.delete(group);
  })
  .on("close", () => {
    send("SIGTERM");
    if (groups.size === 0) process.exit(0);
    setTimeout(() => {
      send("SIGKILL");
      process.exit(0);
    }, 10_000);
  });
