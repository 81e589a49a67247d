// Queue groups: two members sharing a partition record by record, a released record
// delivered again, a rejected one in the dead-letter topic, a second ack refused, and
// pipelined settlements answered each.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Admin, ErrorCode, PartitionReader, Producer, QueueConsumer, StaveError, type QueueRecord, type StaveRecord } from "@stave/client";
import { StaveServer, rejection, take, uniqueTopic } from "./support";

/** Bound on each wait for the node. */
const WAIT_MS = 20_000;

let server: StaveServer;
let admin: Admin;
let producer: Producer;

before(async () => {
  server = await StaveServer.start();
  admin = new Admin({ bootstrap: server.bootstrap });
  producer = new Producer({ bootstrap: server.bootstrap });
});

after(async () => {
  await producer?.close();
  admin?.close();
  await server?.stop();
});

async function topicWith(prefix: string, values: string[]): Promise<string> {
  const topic = uniqueTopic(prefix);
  await admin.createTopic(topic, { partitions: 1 });
  await producer.publishBatch(values.map((value) => ({ topic, value })));
  return topic;
}

function member(group: string, topic: string, credit?: number): QueueConsumer {
  return new QueueConsumer({ bootstrap: server.bootstrap, group, topics: [topic], fromBeginning: true, credit });
}

const takeQueued = (consumer: QueueConsumer, count: number) => take(consumer, count, WAIT_MS) as Promise<QueueRecord[]>;

test("two members of a queue group share a partition record by record", async () => {
  const values = Array.from({ length: 40 }, (_, i) => `job ${i}`);
  const topic = await topicWith("share", values);
  const group = uniqueTopic("share-queue");
  // a holds its 5 unsettled: whatever b gets, a could not have.
  const a = member(group, topic, 5);
  const b = member(group, topic, 5);
  try {
    const firstA = await takeQueued(a, 5);
    const firstB = await takeQueued(b, 5);
    assert.ok([...firstA, ...firstB].every((r) => r.deliveryCount === 1));

    const acked = { a: [] as bigint[], b: [] as bigint[] };
    const settle = async (name: "a" | "b", consumer: QueueConsumer, record: QueueRecord) => {
      assert.equal(record.deliveryCount, 1);
      await consumer.ack(record);
      acked[name].push(record.offset);
    };
    const pending = [
      ...firstA.map((r) => settle("a", a, r)),
      ...firstB.map((r) => settle("b", b, r)),
    ];
    const deadlineMs = Date.now() + WAIT_MS;
    let received = 10;
    const drain = async (name: "a" | "b", consumer: QueueConsumer) => {
      while (received < values.length && Date.now() < deadlineMs) {
        const record = (await consumer.poll(50)) as QueueRecord | null;
        if (!record) continue;
        received++;
        pending.push(settle(name, consumer, record));
      }
    };
    await Promise.all([drain("a", a), drain("b", b)]);
    await Promise.all(pending);

    assert.ok(acked.a.length > 0 && acked.b.length > 0, `acked per member: ${acked.a.length}, ${acked.b.length}`);
    const all = [...acked.a, ...acked.b].map(Number).sort((x, y) => x - y);
    assert.deepEqual(all, values.map((_, i) => i), "each record acked once");
    assert.equal(await a.poll(300), null);
    assert.equal(await b.poll(300), null);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a released record comes back with delivery count 2", async () => {
  const topic = await topicWith("release", ["retry me"]);
  const consumer = member(uniqueTopic("release-queue"), topic, 1);
  try {
    const [first] = await takeQueued(consumer, 1);
    assert.deepEqual([first.offset, first.deliveryCount, first.value.toString()], [0n, 1, "retry me"]);
    assert.ok(first.lockDeadlineMs > Date.now() - 1000, `lock deadline ${first.lockDeadlineMs}`);
    await consumer.release(first, { reason: "not yet" });
    const [again] = await takeQueued(consumer, 1);
    assert.deepEqual([again.offset, again.deliveryCount, again.value.toString()], [0n, 2, "retry me"]);
    await consumer.ack(again);
    assert.equal(await consumer.poll(300), null);
  } finally {
    await consumer.close();
  }
});

test("a rejected record goes to the dead-letter topic with its headers", async () => {
  const topic = await topicWith("reject", ["fine", "poison"]);
  const group = uniqueTopic("reject-queue");
  const consumer = member(group, topic);
  let poison: QueueRecord | undefined;
  try {
    for (const record of await takeQueued(consumer, 2)) {
      if (record.value.toString() === "poison") {
        poison = record;
        await consumer.reject(record, "cannot parse");
      } else {
        await consumer.ack(record);
      }
    }
  } finally {
    await consumer.close();
  }
  assert.ok(poison);
  const dead = await readDeadLetter(`_dlq.${group}.${topic}`);
  assert.equal(dead.value.toString(), "poison");
  const header = (key: string) => dead.headers.find((h) => h.key === key)?.value.toString();
  assert.equal(header("stave-dlq-topic"), topic);
  assert.equal(header("stave-dlq-partition"), "0");
  assert.equal(header("stave-dlq-offset"), poison.offset.toString());
  assert.equal(header("stave-dlq-deliveries"), "1");
  assert.equal(header("stave-dlq-reason"), "cannot parse");
});

/**
 * The first record of `topic`, read by its exact name. The node creates the topic with the
 * first dead letter: until then a reader is refused UNKNOWN_TOPIC, so it is opened again
 * (polling with a deadline, as nothing announces the topic).
 */
async function readDeadLetter(topic: string): Promise<StaveRecord> {
  const deadlineMs = Date.now() + WAIT_MS;
  for (;;) {
    const reader = new PartitionReader({ bootstrap: server.bootstrap, topic });
    try {
      const record = await reader.poll(Math.max(100, deadlineMs - Date.now()));
      assert.ok(record, `nothing in ${topic} within ${WAIT_MS} ms`);
      return record;
    } catch (error) {
      if (!(error instanceof StaveError) || error.code !== ErrorCode.UNKNOWN_TOPIC || Date.now() > deadlineMs) throw error;
    } finally {
      await reader.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test("a second ack of the same delivery is refused DELIVERY_NOT_HELD", async () => {
  const topic = await topicWith("twice", ["once"]);
  const consumer = member(uniqueTopic("twice-queue"), topic);
  try {
    const [record] = await takeQueued(consumer, 1);
    await consumer.ack(record);
    const error = await rejection(consumer.ack(record));
    assert.equal(error.code, ErrorCode.DELIVERY_NOT_HELD);
    assert.equal(await consumer.poll(300), null);
  } finally {
    await consumer.close();
  }
});

test("settlements made together are answered each, and extended records stay held", async () => {
  const topic = await topicWith("pipeline", Array.from({ length: 20 }, (_, i) => `${i}`));
  const consumer = member(uniqueTopic("pipeline-queue"), topic, 20);
  try {
    const records = await takeQueued(consumer, 20);
    const acks = records.slice(0, 10).map((r) => consumer.ack(r));
    const twice = rejection(consumer.ack(records[0]));
    const extends_ = records.slice(10).map((r) => consumer.extend(r));
    await Promise.all([...acks, ...extends_]);
    assert.equal((await twice).code, ErrorCode.DELIVERY_NOT_HELD);
    await Promise.all(records.slice(10).map((r) => consumer.release(r)));
    const again = await takeQueued(consumer, 10);
    assert.deepEqual(again.map((r) => Number(r.offset)).sort((x, y) => x - y), records.slice(10).map((r) => Number(r.offset)));
    assert.ok(again.every((r) => r.deliveryCount === 2));
    await Promise.all(again.map((r) => consumer.ack(r)));
  } finally {
    await consumer.close();
  }
});
