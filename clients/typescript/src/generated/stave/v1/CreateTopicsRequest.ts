// Original file: proto/stave/v1/stave.proto

import type { TopicSpec as _stave_v1_TopicSpec, TopicSpec__Output as _stave_v1_TopicSpec__Output } from '../../stave/v1/TopicSpec';

export interface CreateTopicsRequest {
  'topics'?: (_stave_v1_TopicSpec)[];
}

export interface CreateTopicsRequest__Output {
  'topics': (_stave_v1_TopicSpec__Output)[];
}
