// Original file: proto/stave/v1/stave.proto

import type { Records as _stave_v1_Records, Records__Output as _stave_v1_Records__Output } from '../../stave/v1/Records';
import type { Assignment as _stave_v1_Assignment, Assignment__Output as _stave_v1_Assignment__Output } from '../../stave/v1/Assignment';
import type { Committed as _stave_v1_Committed, Committed__Output as _stave_v1_Committed__Output } from '../../stave/v1/Committed';
import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Settled as _stave_v1_Settled, Settled__Output as _stave_v1_Settled__Output } from '../../stave/v1/Settled';

export interface ConsumeResponse {
  'records'?: (_stave_v1_Records | null);
  'assignment'?: (_stave_v1_Assignment | null);
  'committed'?: (_stave_v1_Committed | null);
  /**
   * The stream ends after it.
   */
  'error'?: (_stave_v1_Error | null);
  'settled'?: (_stave_v1_Settled | null);
  'response'?: "records"|"assignment"|"committed"|"error"|"settled";
}

export interface ConsumeResponse__Output {
  'records'?: (_stave_v1_Records__Output | null);
  'assignment'?: (_stave_v1_Assignment__Output | null);
  'committed'?: (_stave_v1_Committed__Output | null);
  /**
   * The stream ends after it.
   */
  'error'?: (_stave_v1_Error__Output | null);
  'settled'?: (_stave_v1_Settled__Output | null);
  'response'?: "records"|"assignment"|"committed"|"error"|"settled";
}
