// Original file: proto/stave/v1/stave.proto

import type { ConfigEntry as _stave_v1_ConfigEntry, ConfigEntry__Output as _stave_v1_ConfigEntry__Output } from '../../stave/v1/ConfigEntry';

export interface AlterTopicConfigRequest {
  'name'?: (string);
  /**
   * An empty value resets the key to its default.
   */
  'set'?: (_stave_v1_ConfigEntry)[];
}

export interface AlterTopicConfigRequest__Output {
  'name': (string);
  /**
   * An empty value resets the key to its default.
   */
  'set': (_stave_v1_ConfigEntry__Output)[];
}
