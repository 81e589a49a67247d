// 6. The quickstart against the test server prints `quickstart ok 100` (twice: the second
//    run finds the topic and the first run's records).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { PACKAGE_DIR, StaveServer } from "./support";

const run = promisify(execFile);
let server: StaveServer;

before(async () => {
  server = await StaveServer.start();
});

after(async () => {
  await server?.stop();
});

test("the quickstart prints `quickstart ok 100`", async () => {
  const script = path.join(PACKAGE_DIR, "dist", "quickstart.js");
  for (let i = 0; i < 2; i++) {
    const { stdout } = await run(process.execPath, [script, "--bootstrap", server.bootstrap], { timeout: 60_000 });
    assert.equal(stdout, "quickstart ok 100\n");
  }
});

test("the quickstart fails with a message when no node answers", async () => {
  const script = path.join(PACKAGE_DIR, "dist", "quickstart.js");
  // A port nothing listens on (the server's port + 1 may be taken: use a closed one).
  const error = await run(process.execPath, [script, "--bootstrap", "127.0.0.1:1"], { timeout: 60_000 }).then(
    () => undefined,
    (failure: { code?: number; stderr?: string }) => failure,
  );
  assert.ok(error, "exits non-zero");
  assert.equal(error.code, 1);
  assert.match(error.stderr ?? "", /^quickstart failed: .*UNAVAILABLE/m);
});
