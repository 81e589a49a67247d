// Original file: proto/stave/v1/stave.proto

import type { ErrorCode as _stave_v1_ErrorCode, ErrorCode__Output as _stave_v1_ErrorCode__Output } from '../../stave/v1/ErrorCode';
import type { Long } from '@grpc/proto-loader';

export interface Error {
  'code'?: (_stave_v1_ErrorCode);
  'message'?: (string);
  /**
   * NOT_LEADER: the leader this node knows of.
   */
  'leader_id'?: (number | string | Long);
  'leader_addr'?: (string);
  '_leader_id'?: "leader_id";
}

export interface Error__Output {
  'code': (_stave_v1_ErrorCode__Output);
  'message': (string);
  /**
   * NOT_LEADER: the leader this node knows of.
   */
  'leader_id'?: (string);
  'leader_addr': (string);
  '_leader_id'?: "leader_id";
}
