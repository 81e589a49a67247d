// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface CommitOffset {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
}

export interface CommitOffset__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
}
