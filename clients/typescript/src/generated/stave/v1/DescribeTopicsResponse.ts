// Original file: proto/stave/v1/stave.proto

import type { TopicDescription as _stave_v1_TopicDescription, TopicDescription__Output as _stave_v1_TopicDescription__Output } from '../../stave/v1/TopicDescription';

export interface DescribeTopicsResponse {
  'topics'?: (_stave_v1_TopicDescription)[];
}

export interface DescribeTopicsResponse__Output {
  'topics': (_stave_v1_TopicDescription__Output)[];
}
