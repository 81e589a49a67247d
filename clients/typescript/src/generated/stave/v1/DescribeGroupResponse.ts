// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { GroupMember as _stave_v1_GroupMember, GroupMember__Output as _stave_v1_GroupMember__Output } from '../../stave/v1/GroupMember';
import type { PartitionLag as _stave_v1_PartitionLag, PartitionLag__Output as _stave_v1_PartitionLag__Output } from '../../stave/v1/PartitionLag';
import type { QueueGroupState as _stave_v1_QueueGroupState, QueueGroupState__Output as _stave_v1_QueueGroupState__Output } from '../../stave/v1/QueueGroupState';

export interface DescribeGroupResponse {
  'error'?: (_stave_v1_Error | null);
  'members'?: (_stave_v1_GroupMember)[];
  'offsets'?: (_stave_v1_PartitionLag)[];
  /**
   * Set for a queue group (its members then hold no partitions).
   */
  'queue'?: (_stave_v1_QueueGroupState | null);
}

export interface DescribeGroupResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  'members': (_stave_v1_GroupMember__Output)[];
  'offsets': (_stave_v1_PartitionLag__Output)[];
  /**
   * Set for a queue group (its members then hold no partitions).
   */
  'queue': (_stave_v1_QueueGroupState__Output | null);
}
