// 4. A publish retried after the server was SIGKILLed and restarted (same port, same data
//    dir) is written once: same ids, the second answer `duplicate`, each id read back once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Admin, PartitionReader, Producer, type RecordMetadata, type StaveRecord } from "@stave/client";
import { StaveServer, take, uniqueTopic } from "./support";

let server: StaveServer;

before(async () => {
  server = await StaveServer.start();
});

after(async () => {
  await server?.stop();
});

const IN_FLIGHT = 40_000;

async function readAll(topic: string, count: number): Promise<StaveRecord[]> {
  const reader = new PartitionReader({ bootstrap: server.bootstrap, topic });
  try {
    const records = await take(reader, count, 30_000);
    assert.equal(await reader.poll(300), null, "nothing beyond the records published");
    return records;
  } finally {
    await reader.close();
  }
}

test("a publish retried across a SIGKILL and restart is written once", async (t) => {
  const topic = uniqueTopic("restart");
  const admin = new Admin({ bootstrap: server.bootstrap });
  await admin.createTopic(topic, { partitions: 3 });
  admin.close();

  const producer = new Producer({ bootstrap: server.bootstrap, deliveryTimeoutMs: 60_000 });
  try {
    const values = Array.from({ length: 50 }, (_, i) => `before the kill ${i}`);
    const first = await producer.publishBatch(values.map((value) => ({ topic, value })));

    // Records in flight when the node is killed (as soon as the first of them is answered,
    // so later requests are being written): the producer retries them with their ids on
    // the restarted node, and those it had written are answered duplicate.
    const inFlight = Array.from({ length: IN_FLIGHT }, (_, i) => producer.publish(topic, `in flight ${i}`));
    await Promise.race(inFlight);
    await server.kill();
    await server.launch();
    const retried = await Promise.all(inFlight);
    t.diagnostic(`${retried.filter((metadata) => metadata.duplicate).length} of ${IN_FLIGHT} records in flight at the kill answered duplicate on retry`);

    // The first 50 published again with their ids, as a retry whose answers were lost.
    const again = await producer.publishBatch(values.map((value, i) => ({ topic, value, headers: { id: first[i].id } })));
    again.forEach((metadata: RecordMetadata, i) => {
      assert.equal(metadata.duplicate, true, `record ${i} is recognised as written`);
      assert.equal(metadata.id, first[i].id);
      assert.equal(metadata.partition, first[i].partition);
      assert.equal(metadata.offset, first[i].offset);
    });

    const records = await readAll(topic, 50 + IN_FLIGHT);
    const ids = records.map((record) => record.id);
    assert.equal(new Set(ids).size, 50 + IN_FLIGHT, "every id once");
    const published = new Set([...first, ...retried].map((metadata) => metadata.id));
    assert.ok(ids.every((id) => published.has(id!)));
  } finally {
    await producer.close();
  }
});
