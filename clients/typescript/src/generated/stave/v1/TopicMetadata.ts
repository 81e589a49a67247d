// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { PartitionMetadata as _stave_v1_PartitionMetadata, PartitionMetadata__Output as _stave_v1_PartitionMetadata__Output } from '../../stave/v1/PartitionMetadata';

export interface TopicMetadata {
  'name'?: (string);
  'error'?: (_stave_v1_Error | null);
  'partitions'?: (_stave_v1_PartitionMetadata)[];
}

export interface TopicMetadata__Output {
  'name': (string);
  'error': (_stave_v1_Error__Output | null);
  'partitions': (_stave_v1_PartitionMetadata__Output)[];
}
