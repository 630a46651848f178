// Stops what a devstack launcher (npm start, a test worker, a bench) started when the launcher
// dies without stopping it: SIGKILL, an out-of-memory kill, a crash. Services, NATS and Redis
// run in process groups of their own (so a Ctrl-C reaches the launcher only, which drains
// them in order), and would otherwise live on holding their ports.
//
// The launcher writes "+<pid> <group|process> <signal>" when it starts a process (the leader of
// a group of its own, or a lone process such as PostgreSQL's postmaster) and "-<pid>" when it
// has exited. When the launcher's end of stdin closes — it exited, however — each one still
// listed gets its signal (SIGTERM: a graceful drain; SIGINT: PostgreSQL's fast shutdown),
// then SIGKILL after 10 s.
import { createInterface } from "node:readline";

/** pid → how to stop it. */
const listed = new Map();
// In a group of its own, a Ctrl-C or a kill of the launcher's group does not reach it.
for (const signal of ["SIGINT", "SIGHUP"]) process.on(signal, () => {});
const send = (final) => {
  for (const [pid, { group, signal }] of listed) {
    try {
      process.kill(group ? -pid : pid, final ?? signal);
    } catch {
      listed.delete(pid); // already gone
    }
  }
};
createInterface({ input: process.stdin })
  .on("line", (line) => {
    const [id, kind = "group", signal = "SIGTERM"] = line.slice(1).split(" ");
    const pid = Number(id);
    if (!Number.isInteger(pid) || pid <= 1) return;
    if (line[0] === "+") listed.set(pid, { group: kind === "group", signal });
    else if (line[0] === "-") listed.delete(pid);
  })
  .on("close", () => {
    send();
    if (listed.size === 0) process.exit(0);
    setTimeout(() => {
      send("SIGKILL");
      process.exit(0);
    }, 10_000);
  });
