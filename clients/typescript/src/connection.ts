import * as grpc from "@grpc/grpc-js";
import { StaveError } from "./errors";
import { staveProto, type StaveClient } from "./proto";

/** The server's message limit; gRPC libraries default to 4 MiB. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  // A restarting node is reached again within about a second (grpc-js waits up to 2 min).
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
};

/** `"h1:p1,h2:p2"` or `["h1:p1", "h2:p2"]`: the nodes to try, in turn. */
export type Bootstrap = string | readonly string[];

export function parseBootstrap(bootstrap: Bootstrap): string[] {
  const list = (typeof bootstrap === "string" ? bootstrap.split(",") : [...bootstrap])
    .map((address) => address.trim())
    .filter((address) => address.length > 0);
  if (list.length === 0) throw new TypeError("bootstrap: give at least one HOST:PORT");
  return list;
}

/** Backoff for attempt `n` (0-based): 50 ms doubling to `capMs`, with ±25 % jitter. */
export function backoffMs(attempt: number, capMs = 1000): number {
  const base = Math.min(capMs, 50 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The channels to the bootstrap nodes: one is current; a call that finds it unreachable
 * moves on to the next (any node answers every call of the record API).
 */
export class Connection {
  readonly addresses: readonly string[];
  private current = 0;
  private readonly clients = new Map<string, StaveClient>();
  private closed = false;

  constructor(bootstrap: Bootstrap) {
    this.addresses = parseBootstrap(bootstrap);
  }

  /** The client of the current node. */
  client(): StaveClient {
    if (this.closed) throw StaveError.closed("connection");
    const address = this.addresses[this.current];
    let client = this.clients.get(address);
    if (!client) {
      const Stave = staveProto().stave.v1.Stave;
      client = new Stave(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
      this.clients.set(address, client);
    }
    return client;
  }

  /** Moves to the next bootstrap node (after the current one failed). */
  rotate(): void {
    this.current = (this.current + 1) % this.addresses.length;
  }

  /**
   * One unary call, retried on the next node while nodes are unreachable (gRPC UNAVAILABLE)
   * until `timeoutMs` has passed; other failures are thrown at once as StaveError, and so is
   * UNAVAILABLE once every bootstrap node has refused the connection in a row (nothing
   * listens there: no point waiting).
   */
  async unary<Res>(
    what: string,
    timeoutMs: number,
    invoke: (client: StaveClient, options: grpc.CallOptions, done: grpc.requestCallback<Res>) => void,
  ): Promise<Res> {
    const deadlineMs = Date.now() + timeoutMs;
    let refusedInARow = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<Res>((resolve, reject) => {
          invoke(this.client(), { deadline: new Date(deadlineMs) }, (error, response) => {
            if (error) reject(error);
            else resolve(response as Res);
          });
        });
      } catch (error) {
        const failure = StaveError.fromGrpc(error, what);
        const pauseMs = backoffMs(attempt);
        if (failure.grpcCode !== grpc.status.UNAVAILABLE || Date.now() + pauseMs >= deadlineMs) throw failure;
        refusedInARow = /ECONNREFUSED/.test(failure.message) ? refusedInARow + 1 : 0;
        if (refusedInARow >= this.addresses.length) throw failure;
        this.rotate();
        await delay(pauseMs);
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
