// Original file: proto/stave/v1/stave.proto

import type { QueueOptions as _stave_v1_QueueOptions, QueueOptions__Output as _stave_v1_QueueOptions__Output } from '../../stave/v1/QueueOptions';
import type { QueueMember as _stave_v1_QueueMember, QueueMember__Output as _stave_v1_QueueMember__Output } from '../../stave/v1/QueueMember';
import type { QueuePartitionState as _stave_v1_QueuePartitionState, QueuePartitionState__Output as _stave_v1_QueuePartitionState__Output } from '../../stave/v1/QueuePartitionState';

export interface QueueGroupState {
  /**
   * Unset: the group runs nowhere now (no member for a minute, or its coordinator changed);
   * the state below is what was last written (no members, nothing in flight), and the next
   * member to join sets the settings.
   */
  'options'?: (_stave_v1_QueueOptions | null);
  'members'?: (_stave_v1_QueueMember)[];
  'partitions'?: (_stave_v1_QueuePartitionState)[];
}

export interface QueueGroupState__Output {
  /**
   * Unset: the group runs nowhere now (no member for a minute, or its coordinator changed);
   * the state below is what was last written (no members, nothing in flight), and the next
   * member to join sets the settings.
   */
  'options': (_stave_v1_QueueOptions__Output | null);
  'members': (_stave_v1_QueueMember__Output)[];
  'partitions': (_stave_v1_QueuePartitionState__Output)[];
}
