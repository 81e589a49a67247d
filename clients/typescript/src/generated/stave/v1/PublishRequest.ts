// Original file: proto/stave/v1/stave.proto

import type { PublishRecord as _stave_v1_PublishRecord, PublishRecord__Output as _stave_v1_PublishRecord__Output } from '../../stave/v1/PublishRecord';
import type { Long } from '@grpc/proto-loader';

export interface PublishRequest {
  /**
   * Up to 10,000 records (more: every record is answered INVALID_REQUEST), to any topics
   * and partitions. The records of one partition are written together, in this order, as
   * one or more batches (each at most the topic's `max.message.bytes`); a record larger
   * than that limit alone is answered MESSAGE_TOO_LARGE. The whole request is bounded by
   * the 16 MiB message limit (see "Message sizes" above).
   */
  'records'?: (_stave_v1_PublishRecord)[];
  /**
   * Correlates answers on PublishStream; echoed back.
   */
  'sequence'?: (number | string | Long);
}

export interface PublishRequest__Output {
  /**
   * Up to 10,000 records (more: every record is answered INVALID_REQUEST), to any topics
   * and partitions. The records of one partition are written together, in this order, as
   * one or more batches (each at most the topic's `max.message.bytes`); a record larger
   * than that limit alone is answered MESSAGE_TOO_LARGE. The whole request is bounded by
   * the 16 MiB message limit (see "Message sizes" above).
   */
  'records': (_stave_v1_PublishRecord__Output)[];
  /**
   * Correlates answers on PublishStream; echoed back.
   */
  'sequence': (string);
}
