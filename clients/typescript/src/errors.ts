import * as grpc from "@grpc/grpc-js";
import { ErrorCode as ServerErrorCodes } from "./generated/stave/v1/ErrorCode";
import type { Error__Output as WireError } from "./generated/stave/v1/Error";

/** The codes the server sends (`stave.v1.ErrorCode`, see the proto for each one's meaning). */
export type ServerErrorCode = (typeof ServerErrorCodes)[keyof typeof ServerErrorCodes];

/**
 * What went wrong: one of the server's `ErrorCode`s (`"UNKNOWN_TOPIC"`, `"NOT_LEADER"`, ...),
 * or one of two codes of this client:
 * - `"GRPC"`: the call itself failed with a gRPC status (see {@link StaveError.grpcCode}), e.g.
 *   UNAVAILABLE while no node of the bootstrap list can be reached;
 * - `"CLOSED"`: the producer, consumer, reader or admin was closed.
 */
export type ErrorCode = ServerErrorCode | "GRPC" | "CLOSED";

/** Every code, by name: `ErrorCode.UNKNOWN_TOPIC === "UNKNOWN_TOPIC"`. */
export const ErrorCode = {
  ...ServerErrorCodes,
  GRPC: "GRPC",
  CLOSED: "CLOSED",
} as const;

const RETRIABLE_SERVER_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "NOT_LEADER",
  "LEADER_NOT_AVAILABLE",
  "REQUEST_TIMED_OUT",
  "DUPLICATE_IN_FLIGHT",
  "STORAGE_FULL",
  "NOT_COORDINATOR",
  "COORDINATOR_NOT_AVAILABLE",
]);

const RETRIABLE_GRPC_CODES: ReadonlySet<number> = new Set<number>([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
]);

/** An error of the Stave client: a refusal by the server, or a failed call. */
export class StaveError extends Error {
  /** The server's `ErrorCode`, or `"GRPC"` / `"CLOSED"` (see {@link ErrorCode}). */
  readonly code: ErrorCode;
  /**
   * Whether the same request may succeed later (a leader election, a restarting node, a
   * write in doubt). The producer retries these by itself until its delivery timeout; a
   * StaveError it returns with `retriable` set is the last error it saw.
   */
  readonly retriable: boolean;
  /** With `code === "GRPC"`: the gRPC status code (`@grpc/grpc-js` `status`). */
  readonly grpcCode?: number;
  /** NOT_LEADER / NOT_COORDINATOR: the address of the node to ask instead, when known. */
  readonly leaderAddr?: string;

  constructor(code: ErrorCode, message: string, options: { grpcCode?: number; leaderAddr?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StaveError";
    this.code = code;
    this.grpcCode = options.grpcCode;
    this.leaderAddr = options.leaderAddr || undefined;
    this.retriable = code === "GRPC"
      ? options.grpcCode !== undefined && RETRIABLE_GRPC_CODES.has(options.grpcCode)
      : RETRIABLE_SERVER_CODES.has(code);
  }

  /** The error of a server answer, or undefined when the answer says NONE. */
  static fromWire(error: WireError | null | undefined, context = ""): StaveError | undefined {
    if (!error || !error.code || error.code === "NONE") return undefined;
    const message = error.message || error.code.toLowerCase().replace(/_/g, " ");
    return new StaveError(error.code as ServerErrorCode, context ? `${context}: ${message}` : message, {
      leaderAddr: error.leader_addr,
    });
  }

  /** A failed gRPC call as a StaveError (code `"GRPC"`). */
  static fromGrpc(error: unknown, context = ""): StaveError {
    if (error instanceof StaveError) return error;
    const status = error as Partial<grpc.ServiceError>;
    const grpcCode = typeof status.code === "number" ? status.code : grpc.status.UNKNOWN;
    const name = grpc.status[grpcCode] ?? String(grpcCode);
    const details = status.details || status.message || String(error);
    const message = `${context ? context + ": " : ""}grpc ${name}: ${details}`;
    return new StaveError("GRPC", message, { grpcCode, cause: error });
  }

  /** Using a client after close(). */
  static closed(what: string): StaveError {
    return new StaveError("CLOSED", `${what} is closed`);
  }
}
