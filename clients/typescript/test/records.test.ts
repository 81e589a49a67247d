// 1. Publish and read back with keys and headers byte for byte, through a group and through
//    a partition reader; 5. bad input raises the server's ErrorCode; the admin calls.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Admin, Consumer, PartitionReader, Producer, PublishBatchError, StaveError, type ProducerRecord, type RecordMetadata, type StaveRecord } from "@stave/client";
import { rejection, StaveServer, take, uniqueTopic } from "./support";

let server: StaveServer;
let admin: Admin;

before(async () => {
  server = await StaveServer.start();
  admin = new Admin({ bootstrap: server.bootstrap });
});

after(async () => {
  admin?.close();
  await server?.stop();
});

/** Records with every shape of key and header: binary, empty, missing, repeated. */
function testRecords(topic: string): ProducerRecord[] {
  const records: ProducerRecord[] = [];
  for (let i = 0; i < 60; i++) {
    const binary = Buffer.from([0, 255, i, 10, 13, 0x80, i * 3 % 256]);
    records.push({
      topic,
      key: i % 3 === 0 ? undefined : i % 3 === 1 ? binary : Buffer.alloc(0),
      value: i % 2 === 0 ? Buffer.concat([binary, Buffer.from(`value ${i} ü`)]) : `text value ${i} \u{1F600}`,
      headers: i % 4 === 0
        ? [["trace", binary], ["trace", "second"], ["empty", Buffer.alloc(0)]]
        : { source: "records.test", index: String(i) },
    });
  }
  return records;
}

function expectedHeaders(record: ProducerRecord, id: string): Array<[string, string]> {
  const headers = Array.isArray(record.headers)
    ? (record.headers as Array<[string, string | Buffer]>).map(([key, value]) => [key, Buffer.from(value).toString("hex")] as [string, string])
    : Object.entries(record.headers as Record<string, string>).map(([key, value]) => [key, Buffer.from(value).toString("hex")] as [string, string]);
  return [...headers, ["id", Buffer.from(id).toString("hex")]];
}

function assertSame(read: StaveRecord, sent: ProducerRecord, metadata: RecordMetadata): void {
  assert.equal(read.topic, metadata.topic);
  assert.equal(read.partition, metadata.partition);
  assert.equal(read.offset, metadata.offset);
  assert.equal(read.id, metadata.id);
  assert.deepEqual(read.value, Buffer.from(sent.value));
  if (sent.key === undefined) assert.equal(read.key, null);
  else assert.deepEqual(read.key, Buffer.from(sent.key as Buffer));
  assert.deepEqual(read.headers.map((h) => [h.key, h.value.toString("hex")]), expectedHeaders(sent, metadata.id));
  assert.ok(read.timestampMs > Date.now() - 120_000 && read.timestampMs <= Date.now() + 1000);
}

describe("publish and read back", () => {
  let topic: string;
  let sent: ProducerRecord[];
  let written: RecordMetadata[];

  before(async () => {
    topic = uniqueTopic("roundtrip");
    await admin.createTopic(topic, { partitions: 3 });
    const producer = new Producer({ bootstrap: server.bootstrap });
    sent = testRecords(topic);
    const half = sent.length / 2;
    // Half in one batch, half one by one (gathered per tick).
    const batch = await producer.publishBatch(sent.slice(0, half));
    const single = await Promise.all(sent.slice(half).map((r) => producer.publish(r.topic, r.value, { key: r.key, headers: r.headers })));
    written = [...batch, ...single];
    await producer.close();
  });

  test("every record is acknowledged once with its own id", () => {
    assert.equal(written.length, sent.length);
    assert.equal(new Set(written.map((m) => m.id)).size, sent.length);
    assert.ok(written.every((m) => !m.duplicate && typeof m.offset === "bigint" && m.partition >= 0 && m.partition < 3));
    assert.match(written[0].id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test("keyed records of one key go to one partition", () => {
    const byKey = new Map<string, Set<number>>();
    sent.forEach((record, i) => {
      if (record.key === undefined) return;
      const key = Buffer.from(record.key as Buffer).toString("hex");
      if (!byKey.has(key)) byKey.set(key, new Set());
      byKey.get(key)!.add(written[i].partition);
    });
    for (const partitions of byKey.values()) assert.equal(partitions.size, 1);
  });

  test("through a group, byte for byte", async () => {
    const consumer = new Consumer({ bootstrap: server.bootstrap, group: uniqueTopic("g"), topics: [topic], fromBeginning: true });
    try {
      const read = await take(consumer, sent.length);
      const byId = new Map(read.map((r) => [r.id, r]));
      assert.equal(byId.size, sent.length);
      sent.forEach((record, i) => assertSame(byId.get(written[i].id)!, record, written[i]));
      assert.equal(await consumer.poll(200), null, "nothing more");
    } finally {
      await consumer.close();
    }
  });

  test("through a partition reader, byte for byte and in offset order", async () => {
    const reader = new PartitionReader({ bootstrap: server.bootstrap, topic });
    try {
      const read = await take(reader, sent.length);
      const byId = new Map(read.map((r) => [r.id, r]));
      sent.forEach((record, i) => assertSame(byId.get(written[i].id)!, record, written[i]));
      for (const partition of [0, 1, 2]) {
        const offsets = read.filter((r) => r.partition === partition).map((r) => r.offset);
        assert.deepEqual(offsets, offsets.map((_, i) => BigInt(i)));
      }
    } finally {
      await reader.close();
    }
  });

  test("a partition reader from an offset, and from a time", async () => {
    const target = written[7];
    const fromOffset = new PartitionReader({ bootstrap: server.bootstrap, topic, partitions: [target.partition], offset: target.offset });
    try {
      const [first] = await take(fromOffset, 1);
      assert.equal(first.offset, target.offset);
      assert.equal(first.id, target.id);
    } finally {
      await fromOffset.close();
    }
    const fromLater = new PartitionReader({ bootstrap: server.bootstrap, topic, timestampMs: Date.now() + 60_000 });
    try {
      assert.equal(await fromLater.poll(300), null, "no record is stamped in the future");
    } finally {
      await fromLater.close();
    }
  });
});

describe("bad input carries the server's ErrorCode", () => {
  let topic: string;
  let producer: Producer;

  before(async () => {
    topic = uniqueTopic("errors");
    await admin.createTopic(topic, { partitions: 2 });
    producer = new Producer({ bootstrap: server.bootstrap, unknownTopicRetryMs: 300 });
  });

  after(async () => {
    await producer.close();
  });

  test("empty topic name: INVALID_TOPIC_NAME", async () => {
    const error = await rejection(producer.publish("", "value"));
    assert.equal(error.code, "INVALID_TOPIC_NAME");
    assert.equal(error.retriable, false);
  });

  test("unknown topic: UNKNOWN_TOPIC", async () => {
    const error = await rejection(producer.publish(uniqueTopic("missing"), "value"));
    assert.ok(error instanceof StaveError);
    assert.equal(error.code, "UNKNOWN_TOPIC");
  });

  test("a header with an empty key: INVALID_REQUEST", async () => {
    const error = await rejection(producer.publish(topic, "value", { headers: { "": "x" } }));
    assert.equal(error.code, "INVALID_REQUEST");
  });

  test("partition out of range: UNKNOWN_PARTITION", async () => {
    const error = await rejection(producer.publish(topic, "value", { partition: 2 }));
    assert.equal(error.code, "UNKNOWN_PARTITION");
  });

  test("a batch with one bad record: the others are written, the error names it", async () => {
    const error = await rejection(producer.publishBatch([
      { topic, value: "good" },
      { topic, value: "bad", partition: 9 },
    ]));
    assert.ok(error instanceof PublishBatchError);
    assert.equal(error.code, "UNKNOWN_PARTITION");
    assert.equal((error.results[0] as RecordMetadata).duplicate, false);
    assert.equal((error.results[1] as StaveError).code, "UNKNOWN_PARTITION");
  });

  test("a partition reader of an unknown topic: UNKNOWN_TOPIC", async () => {
    const reader = new PartitionReader({ bootstrap: server.bootstrap, topic: uniqueTopic("missing") });
    try {
      const error = await rejection(reader.poll(5000));
      assert.equal(error.code, "UNKNOWN_TOPIC");
    } finally {
      await reader.close();
    }
  });

  test("admin: TOPIC_EXISTS, INVALID_TOPIC_NAME, UNKNOWN_TOPIC", async () => {
    assert.equal((await rejection(admin.createTopic(topic))).code, "TOPIC_EXISTS");
    assert.equal((await rejection(admin.createTopic(""))).code, "INVALID_TOPIC_NAME");
    assert.equal((await rejection(admin.describeTopic(uniqueTopic("missing")))).code, "UNKNOWN_TOPIC");
    assert.equal((await rejection(admin.deleteTopic(uniqueTopic("missing")))).code, "UNKNOWN_TOPIC");
  });

  test("a closed producer: CLOSED", async () => {
    const closed = new Producer({ bootstrap: server.bootstrap });
    await closed.close();
    assert.equal((await rejection(closed.publish(topic, "late"))).code, "CLOSED");
  });
});

test("admin: create, describe, list, delete", async () => {
  const topic = uniqueTopic("admin");
  await admin.createTopic(topic, { partitions: 4, configs: { "retention.ms": "3600000" } });
  const description = await admin.describeTopic(topic);
  assert.equal(description.name, topic);
  assert.deepEqual(description.partitions.map((p) => p.partition), [0, 1, 2, 3]);
  assert.ok(description.partitions.every((p) => p.leader === 1 && p.replicas.length === 1));
  assert.equal(description.configs["retention.ms"], "3600000");
  assert.ok((await admin.listTopics()).includes(topic));
  await admin.deleteTopic(topic);
  assert.ok(!(await admin.listTopics()).includes(topic));
});
