// Original file: proto/stave/v1/stave.proto


/**
 * One permission: `principal` (a user, a client certificate's common name, or `*` for
 * anyone authenticated) may do `operation` (produce, consume, describe, create or admin)
 * on `resource`: `topic:NAME-OR-PATTERN`, `group:NAME-OR-PATTERN` (patterns as in
 * subscriptions: `*` one word, `#` any words) or `cluster`. Admin allows every operation
 * on its resource (admin on the cluster: everything); produce, consume and create allow
 * describe; describe on the cluster allows describing every topic and group.
 */
export interface AclEntry {
  'principal'?: (string);
  'resource'?: (string);
  'operation'?: (string);
}

/**
 * One permission: `principal` (a user, a client certificate's common name, or `*` for
 * anyone authenticated) may do `operation` (produce, consume, describe, create or admin)
 * on `resource`: `topic:NAME-OR-PATTERN`, `group:NAME-OR-PATTERN` (patterns as in
 * subscriptions: `*` one word, `#` any words) or `cluster`. Admin allows every operation
 * on its resource (admin on the cluster: everything); produce, consume and create allow
 * describe; describe on the cluster allows describing every topic and group.
 */
export interface AclEntry__Output {
  'principal': (string);
  'resource': (string);
  'operation': (string);
}
