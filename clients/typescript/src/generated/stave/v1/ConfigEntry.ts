// Original file: proto/stave/v1/stave.proto


export interface ConfigEntry {
  'key'?: (string);
  'value'?: (string);
}

export interface ConfigEntry__Output {
  'key': (string);
  'value': (string);
}
