// Test harness: a real `stave server` on a free loopback port, with its data in a temp dir.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Admin, StaveError, type StaveRecord } from "@stave/client";

/** clients/typescript (this file runs from dist-test/). */
export const PACKAGE_DIR = path.resolve(__dirname, "..");
export const REPO_DIR = path.resolve(PACKAGE_DIR, "..", "..");

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export function staveBin(): string {
  const bin = process.env.STAVE_BIN || path.join(REPO_DIR, "target", "release", "stave");
  if (!fs.existsSync(bin)) {
    throw new Error(`stave binary not found at ${bin}: build it (cargo build --release) or set STAVE_BIN`);
  }
  return bin;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a truthy value, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadlineMs = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let pauseMs = 10; ; pauseMs = Math.min(pauseMs * 2, 200)) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadlineMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

/** One node: `stave server --listen 127.0.0.1:PORT --data-dir DIR`. */
export class StaveServer {
  readonly dataDir: string;
  readonly port: number;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly logPath: string;

  private constructor(dir: string, port: number) {
    this.dataDir = path.join(dir, "data");
    this.logPath = path.join(dir, "server.log");
    this.port = port;
  }

  static async start(): Promise<StaveServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stave-ts-test-"));
    const server = new StaveServer(dir, await freePort());
    await server.launch();
    return server;
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the process (again, after kill()) and waits until it answers Metadata. */
  async launch(): Promise<void> {
    const log = fs.openSync(this.logPath, "a");
    const child = spawn(staveBin(), ["server", "--listen", this.bootstrap, "--data-dir", this.dataDir], {
      stdio: ["ignore", log, log],
    });
    fs.closeSync(log);
    this.child = child;
    running.add(child);
    let exitCode: number | null | undefined;
    this.exited = new Promise((resolve) => child.once("exit", (code) => {
      exitCode = code;
      running.delete(child);
      resolve();
    }));
    const admin = new Admin({ bootstrap: this.bootstrap, requestTimeoutMs: 1000 });
    try {
      await waitFor("the server to answer", async () => {
        if (exitCode !== undefined) throw new Error(`stave server exited (${exitCode}): ${this.logTail()}`);
        const cluster = await admin.describeCluster();
        return cluster.clusterId !== "" && cluster.nodes.length > 0 && cluster.controller !== null;
      }, 20_000);
    } finally {
      admin.close();
    }
  }

  /** SIGKILL, and wait for the process to be gone. */
  async kill(): Promise<void> {
    this.child?.kill("SIGKILL");
    await this.exited;
  }

  /** Kills the process and removes its data. */
  async stop(): Promise<void> {
    await this.kill();
    fs.rmSync(path.dirname(this.dataDir), { recursive: true, force: true });
  }

  logTail(): string {
    try {
      return fs.readFileSync(this.logPath, "utf8").split("\n").slice(-20).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

/** Reads `count` records from a consumer or reader, or throws after `timeoutMs`. */
export async function take(
  source: { poll(timeoutMs?: number): Promise<StaveRecord | null> },
  count: number,
  timeoutMs = 15_000,
): Promise<StaveRecord[]> {
  const deadlineMs = Date.now() + timeoutMs;
  const records: StaveRecord[] = [];
  while (records.length < count) {
    const leftMs = deadlineMs - Date.now();
    const record = leftMs > 0 ? await source.poll(leftMs) : null;
    if (!record) throw new Error(`read ${records.length} of ${count} records within ${timeoutMs} ms`);
    records.push(record);
  }
  return records;
}

/** A topic name no other test uses. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Awaits a promise that must reject with a StaveError; returns it. */
export async function rejection(promise: Promise<unknown>): Promise<StaveError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof StaveError) return error;
    throw new Error(`expected a StaveError, got ${String(error)}`);
  }
  throw new Error("expected a rejection, got a success");
}
