// A fault-injecting TCP proxy (there is no netem here): services are pointed at it through
// their *_URL settings and it forwards to the real process(es), round-robin over several
// replicas. Its mode is switched at run time:
// - pass: bytes go through as they come;
// - latency: every chunk, each way, waits `ms` before it is forwarded (order kept);
// - reset: open connections are reset (RST) and new ones are reset as soon as accepted;
// - blackhole: nothing moves either way and new connections hang unanswered (the peers'
//   own timeouts decide); when the blackhole ends, held bytes flow again, as after a
//   partition heals with the connections still open.
import net from "node:net";

export type ProxyMode = { kind: "pass" } | { kind: "latency"; ms: number } | { kind: "reset" } | { kind: "blackhole" };

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

export class FaultProxy {
  private server: net.Server | undefined;
  private mode: ProxyMode = { kind: "pass" };
  private readonly pairs = new Set<Pair>();
  /** Connections accepted during a blackhole, connected upstream when it ends. */
  private held: Pair[] = [];
  private next = 0;
  port = 0;
  connections = 0;

  constructor(
    readonly name: string,
    private upstreamPorts: number[],
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(port = 0): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return this.port;
  }

  setUpstreams(ports: number[]) {
    this.upstreamPorts = ports;
  }

  get currentMode(): ProxyMode {
    return this.mode;
  }

  setMode(mode: ProxyMode) {
    const before = this.mode;
    this.mode = mode;
    if (mode.kind === "reset") for (const pair of [...this.pairs]) this.reset(pair);
    if (before.kind === "blackhole" && mode.kind !== "blackhole") {
      for (const pair of this.pairs) {
        pair.client.resume();
        pair.upstream?.resume();
      }
      const held = this.held;
      this.held = [];
      for (const pair of held) if (!pair.client.destroyed) this.connect(pair);
    }
    if (mode.kind === "blackhole") {
      for (const pair of this.pairs) {
        pair.client.pause();
        pair.upstream?.pause();
      }
    }
  }

  private reset(pair: Pair) {
    this.pairs.delete(pair);
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (pair.upstream && !pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }

  private accept(client: net.Socket) {
    this.connections++;
    client.on("error", () => {});
    const pair: Pair = { client, upstream: undefined };
    if (this.mode.kind === "reset") {
      client.resetAndDestroy();
      return;
    }
    this.pairs.add(pair);
    client.once("close", () => {
      this.pairs.delete(pair);
      pair.upstream?.destroy();
    });
    client.pause();
    if (this.mode.kind === "blackhole") {
      this.held.push(pair);
      return;
    }
    this.connect(pair);
  }

  private connect(pair: Pair, tried = 0) {
    const ports = this.upstreamPorts;
    const port = ports[this.next++ % ports.length]!;
    const upstream = net.connect(port, "127.0.0.1");
    pair.upstream = upstream;
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      this.pipe(pair.client, upstream);
      this.pipe(upstream, pair.client);
      if (this.mode.kind !== "blackhole") pair.client.resume();
      else upstream.pause();
    });
    upstream.on("error", () => {
      // A replica that is down: try the next one before giving up on the client.
      if (!connected && tried + 1 < ports.length && !pair.client.destroyed) return this.connect(pair, tried + 1);
      if (!pair.client.destroyed) pair.client.destroy();
    });
    upstream.once("close", () => {
      if (connected && !pair.client.destroyed) pair.client.end();
    });
  }

  /** Forwards `from` → `to`, each chunk after the current latency, in order, with backpressure. */
  private pipe(from: net.Socket, to: net.Socket) {
    let queue = Promise.resolve();
    let pending = 0;
    from.on("data", (chunk: Buffer) => {
      const delay = this.mode.kind === "latency" ? this.mode.ms : 0;
      if (delay === 0 && pending === 0) {
        if (!to.destroyed && !to.write(chunk)) {
          from.pause();
          to.once("drain", () => this.mode.kind !== "blackhole" && from.resume());
        }
        return;
      }
      // Delayed, or behind chunks still delayed: queued, so the order is kept.
      const due = Date.now() + delay;
      pending++;
      queue = queue.then(
        () =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              pending--;
              if (!to.destroyed) to.write(chunk);
              resolve();
            }, Math.max(0, due - Date.now())),
          ),
      );
    });
    from.once("end", () => void queue.then(() => !to.destroyed && to.end()));
  }

  async close() {
    for (const pair of [...this.pairs]) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    for (const pair of this.held) pair.client.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
