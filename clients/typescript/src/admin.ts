import { backoffMs, Connection, delay, type Bootstrap } from "./connection";
import { StaveError } from "./errors";
import type { CreateTopicsResponse__Output } from "./generated/stave/v1/CreateTopicsResponse";
import type { DeleteTopicsResponse__Output } from "./generated/stave/v1/DeleteTopicsResponse";
import type { DescribeTopicsResponse__Output } from "./generated/stave/v1/DescribeTopicsResponse";
import type { MetadataResponse__Output } from "./generated/stave/v1/MetadataResponse";
import type { PartitionMetadata__Output } from "./generated/stave/v1/PartitionMetadata";

/** Options of {@link Admin}. */
export interface AdminOptions {
  bootstrap: Bootstrap;
  /** How long one admin call may take, retries on unreachable nodes included (default 10,000 ms). */
  requestTimeoutMs?: number;
}

/** Options of {@link Admin.createTopic}. */
export interface CreateTopicOptions {
  /** Default 3. */
  partitions?: number;
  /** Default: the smaller of 3 and the node count. */
  replicationFactor?: number;
  /** Topic settings, e.g. `{ "retention.ms": "86400000" }`. */
  configs?: Readonly<Record<string, string>>;
  /**
   * Wait until every partition has a leader (default true), so records can be published at
   * once; for up to the admin's request timeout.
   */
  waitForLeaders?: boolean;
}

/** A partition of a topic, as the cluster sees it. */
export interface PartitionInfo {
  partition: number;
  /** The leader's node id; null while there is none (an election). */
  leader: number | null;
  /** The assigned replicas' node ids, in preference order. */
  replicas: number[];
  /** Replicas caught up with the leader. */
  inSync: number[];
}

/** The cluster, as {@link Admin.describeCluster} sees it. */
export interface ClusterDescription {
  /** Empty while the cluster is still forming. */
  clusterId: string;
  /** The controller's node id, null while there is none. */
  controller: number | null;
  nodes: Array<{ id: number; address: string }>;
}

/** A topic: its partitions and every setting (defaults included). */
export interface TopicDescription {
  name: string;
  partitions: PartitionInfo[];
  configs: Record<string, string>;
}

/**
 * Creates, describes, lists and deletes topics.
 *
 * ```ts
 * const admin = new Admin({ bootstrap: "127.0.0.1:7070" });
 * await admin.createTopic("orders", { partitions: 6 });
 * console.log(await admin.listTopics());
 * admin.close();
 * ```
 */
export class Admin {
  private readonly connection: Connection;
  private readonly requestTimeoutMs: number;

  constructor(options: AdminOptions) {
    this.connection = new Connection(options.bootstrap);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  /**
   * Creates a topic. Rejects with StaveError TOPIC_EXISTS, INVALID_TOPIC_NAME,
   * RESERVED_TOPIC_NAME, INVALID_CONFIG or NOT_ENOUGH_NODES as the node answers.
   */
  async createTopic(name: string, options: CreateTopicOptions = {}): Promise<void> {
    const configs = Object.entries(options.configs ?? {}).map(([key, value]) => ({ key, value }));
    const topics = [{ name, partitions: options.partitions ?? 0, replication_factor: options.replicationFactor ?? 0, configs }];
    const deadlineMs = Date.now() + this.requestTimeoutMs;
    let inDoubt = false;
    for (let attempt = 0; ; attempt++) {
      const response = await this.connection.unary<CreateTopicsResponse__Output>(
        "create topic", Math.max(1, deadlineMs - Date.now()),
        (client, callOptions, done) => client.CreateTopics({ topics }, callOptions, done),
      );
      const error = StaveError.fromWire(response.results[0]?.error, `create topic ${name}`);
      if (!error || (error.code === "TOPIC_EXISTS" && inDoubt)) break;
      // A cluster still forming answers LEADER_NOT_AVAILABLE; a timed-out create may have
      // happened (then the retry finds the topic).
      const pauseMs = backoffMs(attempt);
      if (!error.retriable || Date.now() + pauseMs >= deadlineMs) throw error;
      inDoubt ||= error.code === "REQUEST_TIMED_OUT";
      await delay(pauseMs);
    }
    if (options.waitForLeaders ?? true) await this.waitForLeaders(name);
  }

  /** The cluster: its id (empty while it forms), controller and nodes. */
  async describeCluster(): Promise<ClusterDescription> {
    const response = await this.metadata([]);
    return {
      clusterId: response.cluster_id,
      controller: response._controller_id === "controller_id" ? Number(response.controller_id) : null,
      nodes: response.nodes.map((node) => ({ id: Number(node.id), address: node.addr })),
    };
  }

  /** Describes a topic; rejects with UNKNOWN_TOPIC if there is none. */
  async describeTopic(name: string): Promise<TopicDescription> {
    const response = await this.connection.unary<DescribeTopicsResponse__Output>(
      "describe topic", this.requestTimeoutMs,
      (client, callOptions, done) => client.DescribeTopics({ names: [name] }, callOptions, done),
    );
    const topic = response.topics.find((candidate) => candidate.name === name) ?? response.topics[0];
    if (!topic) throw new StaveError("UNKNOWN_TOPIC", `describe topic ${name}: no answer for it`);
    const error = StaveError.fromWire(topic.error, `describe topic ${name}`);
    if (error) throw error;
    const configs: Record<string, string> = {};
    for (const entry of topic.configs) configs[entry.key] = entry.value;
    return { name: topic.name, partitions: topic.partitions.map(toPartitionInfo), configs };
  }

  /** The names of every topic (internal ones excluded), sorted. */
  async listTopics(): Promise<string[]> {
    const response = await this.metadata([]);
    return response.topics.map((topic) => topic.name).sort();
  }

  /** Deletes a topic; rejects with UNKNOWN_TOPIC if there is none. */
  async deleteTopic(name: string): Promise<void> {
    const response = await this.connection.unary<DeleteTopicsResponse__Output>(
      "delete topic", this.requestTimeoutMs,
      (client, callOptions, done) => client.DeleteTopics({ names: [name] }, callOptions, done),
    );
    const error = StaveError.fromWire(response.results[0]?.error, `delete topic ${name}`);
    if (error) throw error;
  }

  /** Closes the connection. */
  close(): void {
    this.connection.close();
  }

  private metadata(topics: string[]): Promise<MetadataResponse__Output> {
    return this.connection.unary<MetadataResponse__Output>(
      "metadata", this.requestTimeoutMs,
      (client, callOptions, done) => client.Metadata({ topics }, callOptions, done),
    );
  }

  private async waitForLeaders(name: string): Promise<void> {
    const deadlineMs = Date.now() + this.requestTimeoutMs;
    for (let pauseMs = 20; ; pauseMs = Math.min(pauseMs * 2, 250)) {
      const response = await this.metadata([name]);
      const topic = response.topics.find((candidate) => candidate.name === name);
      const led = topic && !StaveError.fromWire(topic.error) && topic.partitions.length > 0 &&
        topic.partitions.every((partition) => partition._leader === "leader");
      if (led) return;
      if (Date.now() + pauseMs > deadlineMs) {
        throw new StaveError("LEADER_NOT_AVAILABLE", `create topic ${name}: partitions without a leader after ${this.requestTimeoutMs} ms`);
      }
      await delay(pauseMs);
    }
  }
}

function toPartitionInfo(wire: PartitionMetadata__Output): PartitionInfo {
  return {
    partition: wire.partition,
    leader: wire._leader === "leader" ? Number(wire.leader) : null,
    replicas: wire.replicas.map(Number),
    inSync: wire.in_sync.map(Number),
  };
}
