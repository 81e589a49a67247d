/**
 * The metrics service of the choreography example (TypeScript, on clients/typescript).
 *
 * A member of its own consumer group ("metrics") subscribed to the pattern `v1.user.*`
 * (v1.user.signup and v1.user.signedup, and any v1.user.X topic created later). Per topic
 * it counts deliveries and distinct events (by message id: delivery is at least once, so a
 * record read again after a reconnect is counted as a delivery but not as a new event), and
 * writes the counts to --out every second and at exit (SIGTERM/SIGINT), as JSON:
 *
 *   {"updated":"...","final":false,"topics":{"v1.user.signup":{"events":2000,"deliveries":2000},...}}
 *
 *   node metrics.js --bootstrap HOST:PORT[,HOST:PORT...] --out metrics.json
 *
 * Offsets are auto-committed every second (the client commits only what poll() returned).
 */
import { writeFileSync, renameSync } from "node:fs";
import { Consumer, type StaveRecord, type TopicPartitionOffset } from "../../../clients/typescript/dist/index";

function argument(name: string, fallback: string): string {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
}

const bootstrap = argument("bootstrap", "127.0.0.1:7070");
const out = argument("out", "metrics.json");
const group = argument("group", "metrics");
const pattern = argument("topics", "v1.user.*");

interface TopicCount {
  deliveries: number;
  ids: Set<string>;
}
const counts = new Map<string, TopicCount>();

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} metrics ${message}\n`);
}

function describe(partitions: TopicPartitionOffset[]): string {
  return partitions.map((p) => `${p.topic}/${p.partition}@${p.offset}`).join(" ");
}

function write(final: boolean): void {
  const topics: Record<string, { events: number; deliveries: number }> = {};
  for (const [topic, count] of [...counts.entries()].sort()) {
    topics[topic] = { events: count.ids.size, deliveries: count.deliveries };
  }
  const tmp = `${out}.tmp`;
  writeFileSync(tmp, JSON.stringify({ updated: new Date().toISOString(), final, topics }) + "\n");
  renameSync(tmp, out);
}

function count(record: StaveRecord): void {
  let entry = counts.get(record.topic);
  if (!entry) {
    entry = { deliveries: 0, ids: new Set() };
    counts.set(record.topic, entry);
  }
  entry.deliveries++;
  entry.ids.add(record.id ?? `${record.partition}@${record.offset}`);
}

async function main(): Promise<void> {
  let stopping = false;
  const stop = (signal: string) => {
    log(`${signal}: stopping`);
    stopping = true;
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  const consumer = new Consumer({
    bootstrap,
    group,
    topics: [pattern],
    fromBeginning: true,
    autoCommitIntervalMs: 1000,
    reconnectTimeoutMs: 120_000,
    onAssign: (partitions) => log(`assigned: ${describe(partitions)}`),
    onRevoke: (partitions, lost) => log(`${lost ? "lost" : "revoked"}: ${describe(partitions)}`),
  });
  log(`reading ${pattern} in group ${group}`);
  const timer = setInterval(() => write(false), 1000);
  try {
    while (!stopping) {
      const record = await consumer.poll(500);
      if (record) count(record);
    }
  } finally {
    clearInterval(timer);
    await consumer.close();
    write(true);
    const summary = [...counts.entries()].map(([t, c]) => `${t}: ${c.ids.size} events, ${c.deliveries} deliveries`);
    log(`stopped; ${summary.join("; ")}`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    try {
      write(true);
    } catch {
      // the counts file is best effort here
    }
    process.exit(1);
  },
);
