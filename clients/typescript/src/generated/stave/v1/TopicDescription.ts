// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { PartitionMetadata as _stave_v1_PartitionMetadata, PartitionMetadata__Output as _stave_v1_PartitionMetadata__Output } from '../../stave/v1/PartitionMetadata';
import type { ConfigEntry as _stave_v1_ConfigEntry, ConfigEntry__Output as _stave_v1_ConfigEntry__Output } from '../../stave/v1/ConfigEntry';

export interface TopicDescription {
  'name'?: (string);
  'error'?: (_stave_v1_Error | null);
  'partitions'?: (_stave_v1_PartitionMetadata)[];
  /**
   * Every setting, defaults included.
   */
  'configs'?: (_stave_v1_ConfigEntry)[];
}

export interface TopicDescription__Output {
  'name': (string);
  'error': (_stave_v1_Error__Output | null);
  'partitions': (_stave_v1_PartitionMetadata__Output)[];
  /**
   * Every setting, defaults included.
   */
  'configs': (_stave_v1_ConfigEntry__Output)[];
}
