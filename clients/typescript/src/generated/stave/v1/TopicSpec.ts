// Original file: proto/stave/v1/stave.proto

import type { ConfigEntry as _stave_v1_ConfigEntry, ConfigEntry__Output as _stave_v1_ConfigEntry__Output } from '../../stave/v1/ConfigEntry';

export interface TopicSpec {
  'name'?: (string);
  /**
   * 0: 3.
   */
  'partitions'?: (number);
  /**
   * 0: the smaller of 3 and the node count.
   */
  'replication_factor'?: (number);
  'configs'?: (_stave_v1_ConfigEntry)[];
}

export interface TopicSpec__Output {
  'name': (string);
  /**
   * 0: 3.
   */
  'partitions': (number);
  /**
   * 0: the smaller of 3 and the node count.
   */
  'replication_factor': (number);
  'configs': (_stave_v1_ConfigEntry__Output)[];
}
