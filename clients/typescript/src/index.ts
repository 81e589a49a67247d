/**
 * The TypeScript client of Stave: {@link Producer}, {@link Consumer} (a group member),
 * {@link QueueConsumer} (a queue group's member: records shared one by one, each settled),
 * {@link PartitionReader} (no group) and {@link Admin}, over the record gRPC API
 * (`stave.v1.Stave`: Publish, Consume, topic admin).
 *
 * Offsets are `bigint` (they are unsigned 64-bit); keys, values and header values are read
 * back as `Buffer` and may be given as `string` (UTF-8) or `Uint8Array`.
 * @packageDocumentation
 */
export { Producer, PublishBatchError, type ProducerOptions, type PublishOptions } from "./producer";
export { Consumer, type ConsumerOptions } from "./consumer";
export { QueueConsumer, type QueueConsumerOptions, type QueueRecord, type ReleaseOptions } from "./queue-consumer";
export { PartitionReader, type PartitionReaderOptions } from "./reader";
export { Admin, type AdminOptions, type ClusterDescription, type CreateTopicOptions, type PartitionInfo, type TopicDescription } from "./admin";
export { StaveError, ErrorCode, type ServerErrorCode } from "./errors";
export type { Bootstrap } from "./connection";
export type { Bytes, Header, HeadersInit, ProducerRecord, RecordMetadata, StaveRecord, TopicPartitionOffset } from "./records";
export { uuidv7 } from "./uuid";
