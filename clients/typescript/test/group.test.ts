// 2. Two consumers of one group split the partitions; one leaving hands its partitions to
//    the other. 3. A consumer restarted resumes at its commit.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Admin, Consumer, Producer, type StaveRecord, type TopicPartitionOffset } from "@stave/client";
import { StaveServer, take, uniqueTopic, waitFor } from "./support";

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

/** One record per partition and round, each to an explicit partition. */
async function publishRounds(topic: string, partitions: number, rounds: number, tag: string): Promise<void> {
  const records = [];
  for (let round = 0; round < rounds; round++) {
    for (let partition = 0; partition < partitions; partition++) records.push({ topic, partition, value: `${tag} ${round}/${partition}` });
  }
  await producer.publishBatch(records);
}

const names = (partitions: Array<{ partition: number }>) => partitions.map((p) => p.partition).sort((a, b) => a - b);

test("two consumers split the partitions; one closing hands its partitions to the other", async () => {
  const topic = uniqueTopic("split");
  await admin.createTopic(topic, { partitions: 4 });
  const group = uniqueTopic("split-group");
  const revokedFromSecond: TopicPartitionOffset[] = [];
  const first = new Consumer({ bootstrap: server.bootstrap, group, topics: [topic], fromBeginning: true });
  const second = new Consumer({
    bootstrap: server.bootstrap, group, topics: [topic], fromBeginning: true,
    onRevoke: (partitions) => revokedFromSecond.push(...partitions),
  });
  try {
    await waitFor("both consumers to hold disjoint halves", () => {
      const a = names(first.assignment());
      const b = names(second.assignment());
      return a.length > 0 && b.length > 0 && [...a, ...b].sort().join() === "0,1,2,3";
    });
    const firstHeld = names(first.assignment());
    const secondHeld = names(second.assignment());
    // Whichever joined first held every partition for a moment and gave half back: only
    // what happens from here on counts.
    revokedFromSecond.length = 0;

    await publishRounds(topic, 4, 5, "split");
    const fromFirst = await take(first, firstHeld.length * 5);
    const fromSecond = await take(second, secondHeld.length * 5);
    assert.deepEqual([...new Set(fromFirst.map((r) => r.partition))].sort(), firstHeld);
    assert.deepEqual([...new Set(fromSecond.map((r) => r.partition))].sort(), secondHeld);
    assert.equal(await first.poll(200), null);

    await first.close();
    await waitFor("the second consumer to hold every partition", () => names(second.assignment()).join() === "0,1,2,3");
    assert.equal(revokedFromSecond.length, 0, "the second consumer keeps what it had");

    // The first consumer committed what it read when it closed: the second one continues
    // from there on the partitions it took over, with nothing read twice.
    await publishRounds(topic, 4, 2, "after");
    const rest = await take(second, 8);
    assert.deepEqual([...new Set(rest.map((r) => r.partition))].sort(), [0, 1, 2, 3]);
    assert.ok(rest.every((r) => r.value.toString().startsWith("after")), "no record of the first consumer is read again");
    assert.equal(await second.poll(200), null);
  } finally {
    await first.close();
    await second.close();
  }
});

test("a consumer restarted resumes at its commit", async () => {
  const topic = uniqueTopic("resume");
  await admin.createTopic(topic, { partitions: 1 });
  const group = uniqueTopic("resume-group");
  await producer.publishBatch(Array.from({ length: 30 }, (_, i) => ({ topic, value: `record ${i}` })));
  const offsets = (records: StaveRecord[]) => records.map((r) => Number(r.offset));

  // Without auto-commit: only commit() commits.
  const manual = new Consumer({ bootstrap: server.bootstrap, group, topics: [topic], fromBeginning: true, autoCommit: false });
  assert.deepEqual(offsets(await take(manual, 10)), [...Array(10).keys()]);
  await manual.commit();
  await take(manual, 5); // taken, never committed
  await manual.close();

  // With auto-commit (the default): close() commits what was taken.
  const automatic = new Consumer({ bootstrap: server.bootstrap, group, topics: [topic], fromBeginning: true });
  assert.deepEqual(offsets(await take(automatic, 10)), [...Array(10).keys()].map((i) => i + 10));
  await automatic.close();

  const last = new Consumer({ bootstrap: server.bootstrap, group, topics: [topic], fromBeginning: true });
  try {
    assert.deepEqual(offsets(await take(last, 10)), [...Array(10).keys()].map((i) => i + 20));
    assert.equal(await last.poll(200), null);
  } finally {
    await last.close();
  }
});

test("a group subscribed by pattern picks up a topic created later", async () => {
  const prefix = uniqueTopic("pattern").replace(/-/g, "");
  const group = uniqueTopic("pattern-group");
  const assigned: TopicPartitionOffset[] = [];
  const consumer = new Consumer({
    bootstrap: server.bootstrap, group, topics: [`${prefix}.*`], fromBeginning: true,
    onAssign: (partitions) => assigned.push(...partitions),
  });
  try {
    const topic = `${prefix}.late`;
    await admin.createTopic(topic, { partitions: 2 });
    await waitFor("the new topic's partitions to be assigned", () => assigned.filter((p) => p.topic === topic).length === 2, 20_000);
    await publishRounds(topic, 2, 3, "late");
    const records = await take(consumer, 6);
    assert.ok(records.every((r) => r.topic === topic));
  } finally {
    await consumer.close();
  }
});
