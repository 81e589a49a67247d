// Checks that need no server: the package's proto copy and generated types are current,
// and the UUIDv7 generator's format.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { ErrorCode, StaveError, uuidv7 } from "@stave/client";
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
