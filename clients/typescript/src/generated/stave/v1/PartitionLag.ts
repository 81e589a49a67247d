// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface PartitionLag {
  'topic'?: (string);
  'partition'?: (number);
  'committed'?: (number | string | Long);
  'high_watermark'?: (number | string | Long);
  /**
   * high_watermark - committed (0 when the high watermark is unknown here).
   */
  'lag'?: (number | string | Long);
}

export interface PartitionLag__Output {
  'topic': (string);
  'partition': (number);
  'committed': (string);
  'high_watermark': (string);
  /**
   * high_watermark - committed (0 when the high watermark is unknown here).
   */
  'lag': (string);
}
