// Service logs are pino JSON; in a terminal they read better as one short line each.
const levels: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const skip = new Set(["level", "time", "msg", "service", "pid", "hostname"]);

export function formatLogLine(service: string, line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${service.padEnd(13)} ${line}`;
  }
  const time = typeof record["time"] === "string" ? record["time"].slice(11, 19) : "";
  const level = levels[Number(record["level"])] ?? "INFO";
  const rest = Object.entries(record)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${time} ${service.padEnd(13)} ${level.padEnd(5)} ${String(record["msg"] ?? "")} ${rest}`;
}
