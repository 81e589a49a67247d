// Original file: proto/stave/v1/stave.proto

import type { TopicResult as _stave_v1_TopicResult, TopicResult__Output as _stave_v1_TopicResult__Output } from '../../stave/v1/TopicResult';

export interface CreateTopicsResponse {
  'results'?: (_stave_v1_TopicResult)[];
}

export interface CreateTopicsResponse__Output {
  'results': (_stave_v1_TopicResult__Output)[];
}
