// Checks that need no server: the package's proto copy and generated types are current,
// and the UUIDv7 generator's format.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { ErrorCode, QueueConsumer, StaveError, uuidv7, type QueueRecord } from "@stave/client";
import { PACKAGE_DIR } from "./support";

test("the package's proto equals the repository's", () => {
  execFileSync(process.execPath, [path.join(PACKAGE_DIR, "scripts", "proto.js"), "check"], { stdio: "inherit" });
});

test("src/generated is what proto-loader-gen-types makes of the proto", () => {
  execFileSync(process.execPath, [path.join(PACKAGE_DIR, "scripts", "gen-types.js"), "--check", path.join(PACKAGE_DIR, "src", "generated")], { stdio: "inherit" });
});

test("uuidv7: version 7, RFC variant, time-ordered, unique", () => {
  const ids = Array.from({ length: 10_000 }, () => uuidv7());
  for (const id of ids.slice(0, 100)) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(ids).size, ids.length);
  const at = (ms: number) => uuidv7(ms).slice(0, 13);
  assert.equal(at(0x0123456789ab), "01234567-89ab");
  assert.ok(at(Date.now()) < at(Date.now() + 1));
});

test("StaveError: retriable codes", () => {
  assert.equal(new StaveError(ErrorCode.NOT_LEADER, "x").retriable, true);
  assert.equal(new StaveError(ErrorCode.UNKNOWN_TOPIC, "x").retriable, false);
  assert.equal(new StaveError("GRPC", "x", { grpcCode: 14 }).retriable, true);
  assert.equal(new StaveError("GRPC", "x", { grpcCode: 3 }).retriable, false);
  assert.ok(new StaveError("CLOSED", "x") instanceof Error);
});

test("QueueConsumer: a release delay past a day is refused before it is sent", async () => {
  // Nothing listens there: the stream keeps retrying in the background until close().
  const consumer = new QueueConsumer({ bootstrap: "127.0.0.1:1", group: "g", topics: ["t"], reconnectTimeoutMs: 0 });
  const record = { topic: "t", partition: 0, offset: 0n, deliveryCount: 1 } as QueueRecord;
  try {
    await assert.rejects(consumer.release(record, { delayMs: 86_400_001 }), (error: StaveError) => error.code === ErrorCode.INVALID_REQUEST);
    assert.throws(() => new QueueConsumer({ bootstrap: "127.0.0.1:1", group: "g", topics: ["t"], ordering: "fifo" as "key" }), TypeError);
  } finally {
    await consumer.close();
  }
});

test("QueueConsumer: reasons cut to 1 KiB, a Settled's results matched to its settlements", () => {
  // Internal helpers, from the build (not part of the package's API).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const internals = require(path.join(PACKAGE_DIR, "dist", "queue-consumer.js")) as {
    reasonWithinBounds(reason: string): string;
    settleOutcomes(settled: { id: string; results: Array<{ code: string; message: string; leader_addr: string }> }, count: number): Array<StaveError | undefined>;
  };
  assert.equal(internals.reasonWithinBounds("é".repeat(600)), "é".repeat(512));
  assert.equal(internals.reasonWithinBounds("short"), "short");
  const ok = { code: "NONE", message: "", leader_addr: "" };
  const refused = { code: "DELIVERY_NOT_HELD", message: "not held", leader_addr: "" };
  const codes = (results: (typeof ok)[], count: number) => internals.settleOutcomes({ id: "1", results }, count).map((e) => e?.code);
  assert.deepEqual(codes([ok, refused], 2), [undefined, "DELIVERY_NOT_HELD"]);
  // A whole Settle refused: one result for every settlement.
  assert.deepEqual(codes([refused], 3), ["DELIVERY_NOT_HELD", "DELIVERY_NOT_HELD", "DELIVERY_NOT_HELD"]);
  assert.deepEqual(codes([], 2), [undefined, undefined]);
  assert.deepEqual(codes([ok, ok], 3), [undefined, undefined, "INTERNAL"]);
});
