/**
 * node dist/quickstart.js --bootstrap HOST:PORT
 *
 * Creates topic `quickstart` if missing, publishes 100 records with a key and a header,
 * reads them back through a fresh consumer group from the earliest record, and prints
 * `quickstart ok 100` (exit 0); otherwise prints what went wrong (exit 1).
 */
import { Admin, Consumer, Producer, StaveError } from "./index";
import { uuidv7 } from "./uuid";

const TOPIC = "quickstart";
const COUNT = 100;
const READ_TIMEOUT_MS = 30_000;

function bootstrapArgument(argv: string[]): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--bootstrap" && argv[i + 1]) return argv[i + 1];
    if (argv[i].startsWith("--bootstrap=")) return argv[i].slice("--bootstrap=".length);
    if (argv[i] === "--help" || argv[i] === "-h") {
      console.log("usage: node dist/quickstart.js [--bootstrap HOST:PORT[,HOST:PORT...]] (default 127.0.0.1:7070)");
      process.exit(0);
    }
  }
  return process.env.STAVE_BOOTSTRAP ?? "127.0.0.1:7070";
}

async function main(): Promise<void> {
  const bootstrap = bootstrapArgument(process.argv.slice(2));
  const run = uuidv7();

  const admin = new Admin({ bootstrap });
  try {
    await admin.createTopic(TOPIC, { partitions: 3 });
  } catch (error) {
    if (!(error instanceof StaveError && error.code === "TOPIC_EXISTS")) throw error;
  } finally {
    admin.close();
  }

  const producer = new Producer({ bootstrap });
  const sent = new Map<string, { key: string; value: string }>();
  const records = Array.from({ length: COUNT }, (_, i) => {
    const key = `key-${i}`;
    const value = `record ${i} of run ${run}`;
    return { topic: TOPIC, key, value, headers: { run } };
  });
  const written = await producer.publishBatch(records);
  written.forEach((metadata, i) => sent.set(metadata.id, { key: records[i].key, value: records[i].value }));
  await producer.close();

  const consumer = new Consumer({ bootstrap, group: `quickstart-${run}`, topics: [TOPIC], fromBeginning: true });
  const seen = new Set<string>();
  const deadlineMs = Date.now() + READ_TIMEOUT_MS;
  try {
    while (seen.size < COUNT) {
      const record = await consumer.poll(deadlineMs - Date.now());
      if (!record) throw new Error(`read ${seen.size} of ${COUNT} records within ${READ_TIMEOUT_MS} ms`);
      const runHeader = record.headers.find((header) => header.key === "run");
      if (runHeader?.value.toString() !== run) continue; // an earlier run's record
      const expected = sent.get(record.id ?? "");
      if (!expected) throw new Error(`record at ${record.partition}/${record.offset} has an unknown id ${record.id}`);
      if (record.key?.toString() !== expected.key || record.value.toString() !== expected.value) {
        throw new Error(`record ${record.id} read back differs from what was published`);
      }
      seen.add(record.id!);
    }
  } finally {
    await consumer.close();
  }
  console.log(`quickstart ok ${seen.size}`);
}

main().catch((error: unknown) => {
  console.error(`quickstart failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
