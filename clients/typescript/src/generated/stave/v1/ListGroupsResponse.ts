// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { ListedGroup as _stave_v1_ListedGroup, ListedGroup__Output as _stave_v1_ListedGroup__Output } from '../../stave/v1/ListedGroup';
import type { Long } from '@grpc/proto-loader';

export interface ListGroupsResponse {
  'error'?: (_stave_v1_Error | null);
  'groups'?: (_stave_v1_ListedGroup)[];
  /**
   * Nodes that did not answer (their groups are missing from the list).
   */
  'unreachable'?: (number | string | Long)[];
}

export interface ListGroupsResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  'groups': (_stave_v1_ListedGroup__Output)[];
  /**
   * Nodes that did not answer (their groups are missing from the list).
   */
  'unreachable': (string)[];
}
