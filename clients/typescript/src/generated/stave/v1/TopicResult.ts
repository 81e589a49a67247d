// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';

export interface TopicResult {
  'name'?: (string);
  'error'?: (_stave_v1_Error | null);
}

export interface TopicResult__Output {
  'name': (string);
  'error': (_stave_v1_Error__Output | null);
}
