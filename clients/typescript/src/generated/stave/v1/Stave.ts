// Original file: proto/stave/v1/stave.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AclRequest as _stave_v1_AclRequest, AclRequest__Output as _stave_v1_AclRequest__Output } from '../../stave/v1/AclRequest';
import type { AclResponse as _stave_v1_AclResponse, AclResponse__Output as _stave_v1_AclResponse__Output } from '../../stave/v1/AclResponse';
import type { AlterTopicConfigRequest as _stave_v1_AlterTopicConfigRequest, AlterTopicConfigRequest__Output as _stave_v1_AlterTopicConfigRequest__Output } from '../../stave/v1/AlterTopicConfigRequest';
import type { AlterTopicConfigResponse as _stave_v1_AlterTopicConfigResponse, AlterTopicConfigResponse__Output as _stave_v1_AlterTopicConfigResponse__Output } from '../../stave/v1/AlterTopicConfigResponse';
import type { CommitOffsetsRequest as _stave_v1_CommitOffsetsRequest, CommitOffsetsRequest__Output as _stave_v1_CommitOffsetsRequest__Output } from '../../stave/v1/CommitOffsetsRequest';
import type { CommitOffsetsResponse as _stave_v1_CommitOffsetsResponse, CommitOffsetsResponse__Output as _stave_v1_CommitOffsetsResponse__Output } from '../../stave/v1/CommitOffsetsResponse';
import type { ConsumeRequest as _stave_v1_ConsumeRequest, ConsumeRequest__Output as _stave_v1_ConsumeRequest__Output } from '../../stave/v1/ConsumeRequest';
import type { ConsumeResponse as _stave_v1_ConsumeResponse, ConsumeResponse__Output as _stave_v1_ConsumeResponse__Output } from '../../stave/v1/ConsumeResponse';
import type { CreateTopicsRequest as _stave_v1_CreateTopicsRequest, CreateTopicsRequest__Output as _stave_v1_CreateTopicsRequest__Output } from '../../stave/v1/CreateTopicsRequest';
import type { CreateTopicsResponse as _stave_v1_CreateTopicsResponse, CreateTopicsResponse__Output as _stave_v1_CreateTopicsResponse__Output } from '../../stave/v1/CreateTopicsResponse';
import type { CreateUserRequest as _stave_v1_CreateUserRequest, CreateUserRequest__Output as _stave_v1_CreateUserRequest__Output } from '../../stave/v1/CreateUserRequest';
import type { CreateUserResponse as _stave_v1_CreateUserResponse, CreateUserResponse__Output as _stave_v1_CreateUserResponse__Output } from '../../stave/v1/CreateUserResponse';
import type { DeleteTopicsRequest as _stave_v1_DeleteTopicsRequest, DeleteTopicsRequest__Output as _stave_v1_DeleteTopicsRequest__Output } from '../../stave/v1/DeleteTopicsRequest';
import type { DeleteTopicsResponse as _stave_v1_DeleteTopicsResponse, DeleteTopicsResponse__Output as _stave_v1_DeleteTopicsResponse__Output } from '../../stave/v1/DeleteTopicsResponse';
import type { DeleteUserRequest as _stave_v1_DeleteUserRequest, DeleteUserRequest__Output as _stave_v1_DeleteUserRequest__Output } from '../../stave/v1/DeleteUserRequest';
import type { DeleteUserResponse as _stave_v1_DeleteUserResponse, DeleteUserResponse__Output as _stave_v1_DeleteUserResponse__Output } from '../../stave/v1/DeleteUserResponse';
import type { DescribeGroupRequest as _stave_v1_DescribeGroupRequest, DescribeGroupRequest__Output as _stave_v1_DescribeGroupRequest__Output } from '../../stave/v1/DescribeGroupRequest';
import type { DescribeGroupResponse as _stave_v1_DescribeGroupResponse, DescribeGroupResponse__Output as _stave_v1_DescribeGroupResponse__Output } from '../../stave/v1/DescribeGroupResponse';
import type { DescribeTopicsRequest as _stave_v1_DescribeTopicsRequest, DescribeTopicsRequest__Output as _stave_v1_DescribeTopicsRequest__Output } from '../../stave/v1/DescribeTopicsRequest';
import type { DescribeTopicsResponse as _stave_v1_DescribeTopicsResponse, DescribeTopicsResponse__Output as _stave_v1_DescribeTopicsResponse__Output } from '../../stave/v1/DescribeTopicsResponse';
import type { FetchOffsetsRequest as _stave_v1_FetchOffsetsRequest, FetchOffsetsRequest__Output as _stave_v1_FetchOffsetsRequest__Output } from '../../stave/v1/FetchOffsetsRequest';
import type { FetchOffsetsResponse as _stave_v1_FetchOffsetsResponse, FetchOffsetsResponse__Output as _stave_v1_FetchOffsetsResponse__Output } from '../../stave/v1/FetchOffsetsResponse';
import type { FetchRequest as _stave_v1_FetchRequest, FetchRequest__Output as _stave_v1_FetchRequest__Output } from '../../stave/v1/FetchRequest';
import type { FetchResponse as _stave_v1_FetchResponse, FetchResponse__Output as _stave_v1_FetchResponse__Output } from '../../stave/v1/FetchResponse';
import type { FindCoordinatorRequest as _stave_v1_FindCoordinatorRequest, FindCoordinatorRequest__Output as _stave_v1_FindCoordinatorRequest__Output } from '../../stave/v1/FindCoordinatorRequest';
import type { FindCoordinatorResponse as _stave_v1_FindCoordinatorResponse, FindCoordinatorResponse__Output as _stave_v1_FindCoordinatorResponse__Output } from '../../stave/v1/FindCoordinatorResponse';
import type { GroupHeartbeatRequest as _stave_v1_GroupHeartbeatRequest, GroupHeartbeatRequest__Output as _stave_v1_GroupHeartbeatRequest__Output } from '../../stave/v1/GroupHeartbeatRequest';
import type { GroupHeartbeatResponse as _stave_v1_GroupHeartbeatResponse, GroupHeartbeatResponse__Output as _stave_v1_GroupHeartbeatResponse__Output } from '../../stave/v1/GroupHeartbeatResponse';
import type { InitProducerIdRequest as _stave_v1_InitProducerIdRequest, InitProducerIdRequest__Output as _stave_v1_InitProducerIdRequest__Output } from '../../stave/v1/InitProducerIdRequest';
import type { InitProducerIdResponse as _stave_v1_InitProducerIdResponse, InitProducerIdResponse__Output as _stave_v1_InitProducerIdResponse__Output } from '../../stave/v1/InitProducerIdResponse';
import type { ListAclsRequest as _stave_v1_ListAclsRequest, ListAclsRequest__Output as _stave_v1_ListAclsRequest__Output } from '../../stave/v1/ListAclsRequest';
import type { ListAclsResponse as _stave_v1_ListAclsResponse, ListAclsResponse__Output as _stave_v1_ListAclsResponse__Output } from '../../stave/v1/ListAclsResponse';
import type { ListGroupsRequest as _stave_v1_ListGroupsRequest, ListGroupsRequest__Output as _stave_v1_ListGroupsRequest__Output } from '../../stave/v1/ListGroupsRequest';
import type { ListGroupsResponse as _stave_v1_ListGroupsResponse, ListGroupsResponse__Output as _stave_v1_ListGroupsResponse__Output } from '../../stave/v1/ListGroupsResponse';
import type { ListOffsetsRequest as _stave_v1_ListOffsetsRequest, ListOffsetsRequest__Output as _stave_v1_ListOffsetsRequest__Output } from '../../stave/v1/ListOffsetsRequest';
import type { ListOffsetsResponse as _stave_v1_ListOffsetsResponse, ListOffsetsResponse__Output as _stave_v1_ListOffsetsResponse__Output } from '../../stave/v1/ListOffsetsResponse';
import type { ListUsersRequest as _stave_v1_ListUsersRequest, ListUsersRequest__Output as _stave_v1_ListUsersRequest__Output } from '../../stave/v1/ListUsersRequest';
import type { ListUsersResponse as _stave_v1_ListUsersResponse, ListUsersResponse__Output as _stave_v1_ListUsersResponse__Output } from '../../stave/v1/ListUsersResponse';
import type { MetadataRequest as _stave_v1_MetadataRequest, MetadataRequest__Output as _stave_v1_MetadataRequest__Output } from '../../stave/v1/MetadataRequest';
import type { MetadataResponse as _stave_v1_MetadataResponse, MetadataResponse__Output as _stave_v1_MetadataResponse__Output } from '../../stave/v1/MetadataResponse';
import type { ProduceRequest as _stave_v1_ProduceRequest, ProduceRequest__Output as _stave_v1_ProduceRequest__Output } from '../../stave/v1/ProduceRequest';
import type { ProduceResponse as _stave_v1_ProduceResponse, ProduceResponse__Output as _stave_v1_ProduceResponse__Output } from '../../stave/v1/ProduceResponse';
import type { PublishRequest as _stave_v1_PublishRequest, PublishRequest__Output as _stave_v1_PublishRequest__Output } from '../../stave/v1/PublishRequest';
import type { PublishResponse as _stave_v1_PublishResponse, PublishResponse__Output as _stave_v1_PublishResponse__Output } from '../../stave/v1/PublishResponse';
import type { QueueFetchRequest as _stave_v1_QueueFetchRequest, QueueFetchRequest__Output as _stave_v1_QueueFetchRequest__Output } from '../../stave/v1/QueueFetchRequest';
import type { QueueFetchResponse as _stave_v1_QueueFetchResponse, QueueFetchResponse__Output as _stave_v1_QueueFetchResponse__Output } from '../../stave/v1/QueueFetchResponse';
import type { QueueSettleRequest as _stave_v1_QueueSettleRequest, QueueSettleRequest__Output as _stave_v1_QueueSettleRequest__Output } from '../../stave/v1/QueueSettleRequest';
import type { QueueSettleResponse as _stave_v1_QueueSettleResponse, QueueSettleResponse__Output as _stave_v1_QueueSettleResponse__Output } from '../../stave/v1/QueueSettleResponse';
import type { ResetOffsetsRequest as _stave_v1_ResetOffsetsRequest, ResetOffsetsRequest__Output as _stave_v1_ResetOffsetsRequest__Output } from '../../stave/v1/ResetOffsetsRequest';
import type { ResetOffsetsResponse as _stave_v1_ResetOffsetsResponse, ResetOffsetsResponse__Output as _stave_v1_ResetOffsetsResponse__Output } from '../../stave/v1/ResetOffsetsResponse';

export interface StaveClient extends grpc.Client {
  AddAcl(argument: _stave_v1_AclRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  AddAcl(argument: _stave_v1_AclRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  AddAcl(argument: _stave_v1_AclRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  AddAcl(argument: _stave_v1_AclRequest, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  addAcl(argument: _stave_v1_AclRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  addAcl(argument: _stave_v1_AclRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  addAcl(argument: _stave_v1_AclRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  addAcl(argument: _stave_v1_AclRequest, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  
  AlterTopicConfig(argument: _stave_v1_AlterTopicConfigRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AlterTopicConfigResponse__Output>): grpc.ClientUnaryCall;
  AlterTopicConfig(argument: _stave_v1_AlterTopicConfigRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_AlterTopicConfigResponse__Output>): grpc.ClientUnaryCall;
  AlterTopicConfig(argument: _stave_v1_AlterTopicConfigRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AlterTopicConfigResponse__Output>): grpc.ClientUnaryCall;
  AlterTopicConfig(argument: _stave_v1_AlterTopicConfigRequest, callback: grpc.requestCallback<_stave_v1_AlterTopicConfigResponse__Output>): grpc.ClientUnaryCall;
  alterTopicConfig(argument: _stave_v1_AlterTopicConfigRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AlterTopicConfigResponse__Output>): grpc.ClientUnaryCall;
  alterTopicConfig(argument: _stave_v1_AlterTopicConfigRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_AlterTopicConfigResponse__Output>): grpc.ClientUnaryCall;
  alterTopicConfig(argument: _stave_v1_AlterTopicConfigRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AlterTopicConfigResponse__Output>): grpc.ClientUnaryCall;
  alterTopicConfig(argument: _stave_v1_AlterTopicConfigRequest, callback: grpc.requestCallback<_stave_v1_AlterTopicConfigResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Commits a group's offsets; sent to its coordinator.
   */
  CommitOffsets(argument: _stave_v1_CommitOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CommitOffsetsResponse__Output>): grpc.ClientUnaryCall;
  CommitOffsets(argument: _stave_v1_CommitOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_CommitOffsetsResponse__Output>): grpc.ClientUnaryCall;
  CommitOffsets(argument: _stave_v1_CommitOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CommitOffsetsResponse__Output>): grpc.ClientUnaryCall;
  CommitOffsets(argument: _stave_v1_CommitOffsetsRequest, callback: grpc.requestCallback<_stave_v1_CommitOffsetsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Commits a group's offsets; sent to its coordinator.
   */
  commitOffsets(argument: _stave_v1_CommitOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CommitOffsetsResponse__Output>): grpc.ClientUnaryCall;
  commitOffsets(argument: _stave_v1_CommitOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_CommitOffsetsResponse__Output>): grpc.ClientUnaryCall;
  commitOffsets(argument: _stave_v1_CommitOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CommitOffsetsResponse__Output>): grpc.ClientUnaryCall;
  commitOffsets(argument: _stave_v1_CommitOffsetsRequest, callback: grpc.requestCallback<_stave_v1_CommitOffsetsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Records as messages, pushed: the client's first message is a Subscribe, then Credits
   * (flow control: nothing is pushed beyond them) and Commits, in any order; the node
   * pushes Records, Assignment changes and Committed answers. With a group, the node holding
   * the stream is the group's member on the client's behalf for as long as the stream
   * lives: it heartbeats, reads the partitions the group gives it from their leaders, and
   * leaves the group when the stream ends (its partitions move to the other members at
   * once; a stream whose connection dies silently, or whose node dies, lets go of its
   * partitions within the group's session timeout, 10 s: nodes ping a silent connection
   * after 5 s and close it when 5 s more pass without an answer).
   * Groups joined here and groups of the batch API's clients are the same groups. A refused
   * subscribe or a failure of the stream is pushed as `error`, and the stream ends. A client
   * that ends its side (half-close) gets what its credits still allow, then the end of the
   * stream; a client that cancels the call ends it at once.
   */
  Consume(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_ConsumeRequest, _stave_v1_ConsumeResponse__Output>;
  Consume(options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_ConsumeRequest, _stave_v1_ConsumeResponse__Output>;
  /**
   * Records as messages, pushed: the client's first message is a Subscribe, then Credits
   * (flow control: nothing is pushed beyond them) and Commits, in any order; the node
   * pushes Records, Assignment changes and Committed answers. With a group, the node holding
   * the stream is the group's member on the client's behalf for as long as the stream
   * lives: it heartbeats, reads the partitions the group gives it from their leaders, and
   * leaves the group when the stream ends (its partitions move to the other members at
   * once; a stream whose connection dies silently, or whose node dies, lets go of its
   * partitions within the group's session timeout, 10 s: nodes ping a silent connection
   * after 5 s and close it when 5 s more pass without an answer).
   * Groups joined here and groups of the batch API's clients are the same groups. A refused
   * subscribe or a failure of the stream is pushed as `error`, and the stream ends. A client
   * that ends its side (half-close) gets what its credits still allow, then the end of the
   * stream; a client that cancels the call ends it at once.
   */
  consume(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_ConsumeRequest, _stave_v1_ConsumeResponse__Output>;
  consume(options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_ConsumeRequest, _stave_v1_ConsumeResponse__Output>;
  
  CreateTopics(argument: _stave_v1_CreateTopicsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CreateTopicsResponse__Output>): grpc.ClientUnaryCall;
  CreateTopics(argument: _stave_v1_CreateTopicsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_CreateTopicsResponse__Output>): grpc.ClientUnaryCall;
  CreateTopics(argument: _stave_v1_CreateTopicsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CreateTopicsResponse__Output>): grpc.ClientUnaryCall;
  CreateTopics(argument: _stave_v1_CreateTopicsRequest, callback: grpc.requestCallback<_stave_v1_CreateTopicsResponse__Output>): grpc.ClientUnaryCall;
  createTopics(argument: _stave_v1_CreateTopicsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CreateTopicsResponse__Output>): grpc.ClientUnaryCall;
  createTopics(argument: _stave_v1_CreateTopicsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_CreateTopicsResponse__Output>): grpc.ClientUnaryCall;
  createTopics(argument: _stave_v1_CreateTopicsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CreateTopicsResponse__Output>): grpc.ClientUnaryCall;
  createTopics(argument: _stave_v1_CreateTopicsRequest, callback: grpc.requestCallback<_stave_v1_CreateTopicsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Users and ACLs (admin on the cluster; any node takes them, forwarding to the
   * controller). With `--auth required` every call needs a principal: a bearer token
   * (`authorization: Bearer TOKEN` metadata) or a client certificate; refusals are the gRPC
   * statuses UNAUTHENTICATED and PERMISSION_DENIED (naming the operation and resource).
   * CreateUser answers the new user's token, once: only its SHA-256 is kept.
   */
  CreateUser(argument: _stave_v1_CreateUserRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CreateUserResponse__Output>): grpc.ClientUnaryCall;
  CreateUser(argument: _stave_v1_CreateUserRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_CreateUserResponse__Output>): grpc.ClientUnaryCall;
  CreateUser(argument: _stave_v1_CreateUserRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CreateUserResponse__Output>): grpc.ClientUnaryCall;
  CreateUser(argument: _stave_v1_CreateUserRequest, callback: grpc.requestCallback<_stave_v1_CreateUserResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Users and ACLs (admin on the cluster; any node takes them, forwarding to the
   * controller). With `--auth required` every call needs a principal: a bearer token
   * (`authorization: Bearer TOKEN` metadata) or a client certificate; refusals are the gRPC
   * statuses UNAUTHENTICATED and PERMISSION_DENIED (naming the operation and resource).
   * CreateUser answers the new user's token, once: only its SHA-256 is kept.
   */
  createUser(argument: _stave_v1_CreateUserRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CreateUserResponse__Output>): grpc.ClientUnaryCall;
  createUser(argument: _stave_v1_CreateUserRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_CreateUserResponse__Output>): grpc.ClientUnaryCall;
  createUser(argument: _stave_v1_CreateUserRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_CreateUserResponse__Output>): grpc.ClientUnaryCall;
  createUser(argument: _stave_v1_CreateUserRequest, callback: grpc.requestCallback<_stave_v1_CreateUserResponse__Output>): grpc.ClientUnaryCall;
  
  DeleteTopics(argument: _stave_v1_DeleteTopicsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DeleteTopicsResponse__Output>): grpc.ClientUnaryCall;
  DeleteTopics(argument: _stave_v1_DeleteTopicsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_DeleteTopicsResponse__Output>): grpc.ClientUnaryCall;
  DeleteTopics(argument: _stave_v1_DeleteTopicsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DeleteTopicsResponse__Output>): grpc.ClientUnaryCall;
  DeleteTopics(argument: _stave_v1_DeleteTopicsRequest, callback: grpc.requestCallback<_stave_v1_DeleteTopicsResponse__Output>): grpc.ClientUnaryCall;
  deleteTopics(argument: _stave_v1_DeleteTopicsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DeleteTopicsResponse__Output>): grpc.ClientUnaryCall;
  deleteTopics(argument: _stave_v1_DeleteTopicsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_DeleteTopicsResponse__Output>): grpc.ClientUnaryCall;
  deleteTopics(argument: _stave_v1_DeleteTopicsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DeleteTopicsResponse__Output>): grpc.ClientUnaryCall;
  deleteTopics(argument: _stave_v1_DeleteTopicsRequest, callback: grpc.requestCallback<_stave_v1_DeleteTopicsResponse__Output>): grpc.ClientUnaryCall;
  
  DeleteUser(argument: _stave_v1_DeleteUserRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DeleteUserResponse__Output>): grpc.ClientUnaryCall;
  DeleteUser(argument: _stave_v1_DeleteUserRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_DeleteUserResponse__Output>): grpc.ClientUnaryCall;
  DeleteUser(argument: _stave_v1_DeleteUserRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DeleteUserResponse__Output>): grpc.ClientUnaryCall;
  DeleteUser(argument: _stave_v1_DeleteUserRequest, callback: grpc.requestCallback<_stave_v1_DeleteUserResponse__Output>): grpc.ClientUnaryCall;
  deleteUser(argument: _stave_v1_DeleteUserRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DeleteUserResponse__Output>): grpc.ClientUnaryCall;
  deleteUser(argument: _stave_v1_DeleteUserRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_DeleteUserResponse__Output>): grpc.ClientUnaryCall;
  deleteUser(argument: _stave_v1_DeleteUserRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DeleteUserResponse__Output>): grpc.ClientUnaryCall;
  deleteUser(argument: _stave_v1_DeleteUserRequest, callback: grpc.requestCallback<_stave_v1_DeleteUserResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * A group's members and committed offsets with lag; sent to its coordinator.
   */
  DescribeGroup(argument: _stave_v1_DescribeGroupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DescribeGroupResponse__Output>): grpc.ClientUnaryCall;
  DescribeGroup(argument: _stave_v1_DescribeGroupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_DescribeGroupResponse__Output>): grpc.ClientUnaryCall;
  DescribeGroup(argument: _stave_v1_DescribeGroupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DescribeGroupResponse__Output>): grpc.ClientUnaryCall;
  DescribeGroup(argument: _stave_v1_DescribeGroupRequest, callback: grpc.requestCallback<_stave_v1_DescribeGroupResponse__Output>): grpc.ClientUnaryCall;
  /**
   * A group's members and committed offsets with lag; sent to its coordinator.
   */
  describeGroup(argument: _stave_v1_DescribeGroupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DescribeGroupResponse__Output>): grpc.ClientUnaryCall;
  describeGroup(argument: _stave_v1_DescribeGroupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_DescribeGroupResponse__Output>): grpc.ClientUnaryCall;
  describeGroup(argument: _stave_v1_DescribeGroupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DescribeGroupResponse__Output>): grpc.ClientUnaryCall;
  describeGroup(argument: _stave_v1_DescribeGroupRequest, callback: grpc.requestCallback<_stave_v1_DescribeGroupResponse__Output>): grpc.ClientUnaryCall;
  
  DescribeTopics(argument: _stave_v1_DescribeTopicsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DescribeTopicsResponse__Output>): grpc.ClientUnaryCall;
  DescribeTopics(argument: _stave_v1_DescribeTopicsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_DescribeTopicsResponse__Output>): grpc.ClientUnaryCall;
  DescribeTopics(argument: _stave_v1_DescribeTopicsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DescribeTopicsResponse__Output>): grpc.ClientUnaryCall;
  DescribeTopics(argument: _stave_v1_DescribeTopicsRequest, callback: grpc.requestCallback<_stave_v1_DescribeTopicsResponse__Output>): grpc.ClientUnaryCall;
  describeTopics(argument: _stave_v1_DescribeTopicsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DescribeTopicsResponse__Output>): grpc.ClientUnaryCall;
  describeTopics(argument: _stave_v1_DescribeTopicsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_DescribeTopicsResponse__Output>): grpc.ClientUnaryCall;
  describeTopics(argument: _stave_v1_DescribeTopicsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_DescribeTopicsResponse__Output>): grpc.ClientUnaryCall;
  describeTopics(argument: _stave_v1_DescribeTopicsRequest, callback: grpc.requestCallback<_stave_v1_DescribeTopicsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Committed batches from an offset; long-polls up to `max_wait_ms` for `min_bytes`.
   */
  Fetch(argument: _stave_v1_FetchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  Fetch(argument: _stave_v1_FetchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  Fetch(argument: _stave_v1_FetchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  Fetch(argument: _stave_v1_FetchRequest, callback: grpc.requestCallback<_stave_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Committed batches from an offset; long-polls up to `max_wait_ms` for `min_bytes`.
   */
  fetch(argument: _stave_v1_FetchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  fetch(argument: _stave_v1_FetchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  fetch(argument: _stave_v1_FetchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  fetch(argument: _stave_v1_FetchRequest, callback: grpc.requestCallback<_stave_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * A group's committed offsets; sent to its coordinator.
   */
  FetchOffsets(argument: _stave_v1_FetchOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FetchOffsetsResponse__Output>): grpc.ClientUnaryCall;
  FetchOffsets(argument: _stave_v1_FetchOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_FetchOffsetsResponse__Output>): grpc.ClientUnaryCall;
  FetchOffsets(argument: _stave_v1_FetchOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FetchOffsetsResponse__Output>): grpc.ClientUnaryCall;
  FetchOffsets(argument: _stave_v1_FetchOffsetsRequest, callback: grpc.requestCallback<_stave_v1_FetchOffsetsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * A group's committed offsets; sent to its coordinator.
   */
  fetchOffsets(argument: _stave_v1_FetchOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FetchOffsetsResponse__Output>): grpc.ClientUnaryCall;
  fetchOffsets(argument: _stave_v1_FetchOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_FetchOffsetsResponse__Output>): grpc.ClientUnaryCall;
  fetchOffsets(argument: _stave_v1_FetchOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FetchOffsetsResponse__Output>): grpc.ClientUnaryCall;
  fetchOffsets(argument: _stave_v1_FetchOffsetsRequest, callback: grpc.requestCallback<_stave_v1_FetchOffsetsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The node coordinating a consumer group: the leader of the group's `__offsets`
   * partition (`murmur2(group) % 16`). Creates `__offsets` on first use.
   */
  FindCoordinator(argument: _stave_v1_FindCoordinatorRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FindCoordinatorResponse__Output>): grpc.ClientUnaryCall;
  FindCoordinator(argument: _stave_v1_FindCoordinatorRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_FindCoordinatorResponse__Output>): grpc.ClientUnaryCall;
  FindCoordinator(argument: _stave_v1_FindCoordinatorRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FindCoordinatorResponse__Output>): grpc.ClientUnaryCall;
  FindCoordinator(argument: _stave_v1_FindCoordinatorRequest, callback: grpc.requestCallback<_stave_v1_FindCoordinatorResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The node coordinating a consumer group: the leader of the group's `__offsets`
   * partition (`murmur2(group) % 16`). Creates `__offsets` on first use.
   */
  findCoordinator(argument: _stave_v1_FindCoordinatorRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FindCoordinatorResponse__Output>): grpc.ClientUnaryCall;
  findCoordinator(argument: _stave_v1_FindCoordinatorRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_FindCoordinatorResponse__Output>): grpc.ClientUnaryCall;
  findCoordinator(argument: _stave_v1_FindCoordinatorRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_FindCoordinatorResponse__Output>): grpc.ClientUnaryCall;
  findCoordinator(argument: _stave_v1_FindCoordinatorRequest, callback: grpc.requestCallback<_stave_v1_FindCoordinatorResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Group membership in the style of Kafka's KIP-848, sent to the coordinator: join (no
   * member id), heartbeat with the subscription and the partitions held, leave. The answer
   * is what the member may hold now: partitions move only once their old owner released
   * them.
   */
  GroupHeartbeat(argument: _stave_v1_GroupHeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_GroupHeartbeatResponse__Output>): grpc.ClientUnaryCall;
  GroupHeartbeat(argument: _stave_v1_GroupHeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_GroupHeartbeatResponse__Output>): grpc.ClientUnaryCall;
  GroupHeartbeat(argument: _stave_v1_GroupHeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_GroupHeartbeatResponse__Output>): grpc.ClientUnaryCall;
  GroupHeartbeat(argument: _stave_v1_GroupHeartbeatRequest, callback: grpc.requestCallback<_stave_v1_GroupHeartbeatResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Group membership in the style of Kafka's KIP-848, sent to the coordinator: join (no
   * member id), heartbeat with the subscription and the partitions held, leave. The answer
   * is what the member may hold now: partitions move only once their old owner released
   * them.
   */
  groupHeartbeat(argument: _stave_v1_GroupHeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_GroupHeartbeatResponse__Output>): grpc.ClientUnaryCall;
  groupHeartbeat(argument: _stave_v1_GroupHeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_GroupHeartbeatResponse__Output>): grpc.ClientUnaryCall;
  groupHeartbeat(argument: _stave_v1_GroupHeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_GroupHeartbeatResponse__Output>): grpc.ClientUnaryCall;
  groupHeartbeat(argument: _stave_v1_GroupHeartbeatRequest, callback: grpc.requestCallback<_stave_v1_GroupHeartbeatResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * A producer id for idempotent produce (sequence numbers per partition from 0).
   */
  InitProducerId(argument: _stave_v1_InitProducerIdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  InitProducerId(argument: _stave_v1_InitProducerIdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  InitProducerId(argument: _stave_v1_InitProducerIdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  InitProducerId(argument: _stave_v1_InitProducerIdRequest, callback: grpc.requestCallback<_stave_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  /**
   * A producer id for idempotent produce (sequence numbers per partition from 0).
   */
  initProducerId(argument: _stave_v1_InitProducerIdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  initProducerId(argument: _stave_v1_InitProducerIdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  initProducerId(argument: _stave_v1_InitProducerIdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  initProducerId(argument: _stave_v1_InitProducerIdRequest, callback: grpc.requestCallback<_stave_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  
  ListAcls(argument: _stave_v1_ListAclsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListAclsResponse__Output>): grpc.ClientUnaryCall;
  ListAcls(argument: _stave_v1_ListAclsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ListAclsResponse__Output>): grpc.ClientUnaryCall;
  ListAcls(argument: _stave_v1_ListAclsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListAclsResponse__Output>): grpc.ClientUnaryCall;
  ListAcls(argument: _stave_v1_ListAclsRequest, callback: grpc.requestCallback<_stave_v1_ListAclsResponse__Output>): grpc.ClientUnaryCall;
  listAcls(argument: _stave_v1_ListAclsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListAclsResponse__Output>): grpc.ClientUnaryCall;
  listAcls(argument: _stave_v1_ListAclsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ListAclsResponse__Output>): grpc.ClientUnaryCall;
  listAcls(argument: _stave_v1_ListAclsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListAclsResponse__Output>): grpc.ClientUnaryCall;
  listAcls(argument: _stave_v1_ListAclsRequest, callback: grpc.requestCallback<_stave_v1_ListAclsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Every consumer group (with a committed offset or a member); any node answers, asking
   * the others.
   */
  ListGroups(argument: _stave_v1_ListGroupsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListGroupsResponse__Output>): grpc.ClientUnaryCall;
  ListGroups(argument: _stave_v1_ListGroupsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ListGroupsResponse__Output>): grpc.ClientUnaryCall;
  ListGroups(argument: _stave_v1_ListGroupsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListGroupsResponse__Output>): grpc.ClientUnaryCall;
  ListGroups(argument: _stave_v1_ListGroupsRequest, callback: grpc.requestCallback<_stave_v1_ListGroupsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Every consumer group (with a committed offset or a member); any node answers, asking
   * the others.
   */
  listGroups(argument: _stave_v1_ListGroupsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListGroupsResponse__Output>): grpc.ClientUnaryCall;
  listGroups(argument: _stave_v1_ListGroupsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ListGroupsResponse__Output>): grpc.ClientUnaryCall;
  listGroups(argument: _stave_v1_ListGroupsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListGroupsResponse__Output>): grpc.ClientUnaryCall;
  listGroups(argument: _stave_v1_ListGroupsRequest, callback: grpc.requestCallback<_stave_v1_ListGroupsResponse__Output>): grpc.ClientUnaryCall;
  
  ListOffsets(argument: _stave_v1_ListOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ListOffsets(argument: _stave_v1_ListOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ListOffsets(argument: _stave_v1_ListOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ListOffsets(argument: _stave_v1_ListOffsetsRequest, callback: grpc.requestCallback<_stave_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  listOffsets(argument: _stave_v1_ListOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  listOffsets(argument: _stave_v1_ListOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  listOffsets(argument: _stave_v1_ListOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  listOffsets(argument: _stave_v1_ListOffsetsRequest, callback: grpc.requestCallback<_stave_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  
  ListUsers(argument: _stave_v1_ListUsersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListUsersResponse__Output>): grpc.ClientUnaryCall;
  ListUsers(argument: _stave_v1_ListUsersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ListUsersResponse__Output>): grpc.ClientUnaryCall;
  ListUsers(argument: _stave_v1_ListUsersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListUsersResponse__Output>): grpc.ClientUnaryCall;
  ListUsers(argument: _stave_v1_ListUsersRequest, callback: grpc.requestCallback<_stave_v1_ListUsersResponse__Output>): grpc.ClientUnaryCall;
  listUsers(argument: _stave_v1_ListUsersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListUsersResponse__Output>): grpc.ClientUnaryCall;
  listUsers(argument: _stave_v1_ListUsersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ListUsersResponse__Output>): grpc.ClientUnaryCall;
  listUsers(argument: _stave_v1_ListUsersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ListUsersResponse__Output>): grpc.ClientUnaryCall;
  listUsers(argument: _stave_v1_ListUsersRequest, callback: grpc.requestCallback<_stave_v1_ListUsersResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Nodes, topics, partitions and who leads them; any node answers.
   */
  Metadata(argument: _stave_v1_MetadataRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_MetadataResponse__Output>): grpc.ClientUnaryCall;
  Metadata(argument: _stave_v1_MetadataRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_MetadataResponse__Output>): grpc.ClientUnaryCall;
  Metadata(argument: _stave_v1_MetadataRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_MetadataResponse__Output>): grpc.ClientUnaryCall;
  Metadata(argument: _stave_v1_MetadataRequest, callback: grpc.requestCallback<_stave_v1_MetadataResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Nodes, topics, partitions and who leads them; any node answers.
   */
  metadata(argument: _stave_v1_MetadataRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_MetadataResponse__Output>): grpc.ClientUnaryCall;
  metadata(argument: _stave_v1_MetadataRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_MetadataResponse__Output>): grpc.ClientUnaryCall;
  metadata(argument: _stave_v1_MetadataRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_MetadataResponse__Output>): grpc.ClientUnaryCall;
  metadata(argument: _stave_v1_MetadataRequest, callback: grpc.requestCallback<_stave_v1_MetadataResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * One batch to one partition's leader; answered once a Raft majority has committed it.
   */
  Produce(argument: _stave_v1_ProduceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  Produce(argument: _stave_v1_ProduceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  Produce(argument: _stave_v1_ProduceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  Produce(argument: _stave_v1_ProduceRequest, callback: grpc.requestCallback<_stave_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  /**
   * One batch to one partition's leader; answered once a Raft majority has committed it.
   */
  produce(argument: _stave_v1_ProduceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  produce(argument: _stave_v1_ProduceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  produce(argument: _stave_v1_ProduceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  produce(argument: _stave_v1_ProduceRequest, callback: grpc.requestCallback<_stave_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Pipelined produce: requests carry a `sequence`, answers come back with it (per
   * partition in order).
   */
  ProduceStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_ProduceRequest, _stave_v1_ProduceResponse__Output>;
  ProduceStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_ProduceRequest, _stave_v1_ProduceResponse__Output>;
  /**
   * Pipelined produce: requests carry a `sequence`, answers come back with it (per
   * partition in order).
   */
  produceStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_ProduceRequest, _stave_v1_ProduceResponse__Output>;
  produceStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_ProduceRequest, _stave_v1_ProduceResponse__Output>;
  
  /**
   * Records as messages, for a client in any language (no batch codec needed): any node
   * takes them, routes each record to its partition, forwards to the partition leaders it
   * is not, and answers per record, in the records' order. See PublishRecord for routing and
   * ids, PublishResult for the answers.
   */
  Publish(argument: _stave_v1_PublishRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_PublishResponse__Output>): grpc.ClientUnaryCall;
  Publish(argument: _stave_v1_PublishRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_PublishResponse__Output>): grpc.ClientUnaryCall;
  Publish(argument: _stave_v1_PublishRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_PublishResponse__Output>): grpc.ClientUnaryCall;
  Publish(argument: _stave_v1_PublishRequest, callback: grpc.requestCallback<_stave_v1_PublishResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Records as messages, for a client in any language (no batch codec needed): any node
   * takes them, routes each record to its partition, forwards to the partition leaders it
   * is not, and answers per record, in the records' order. See PublishRecord for routing and
   * ids, PublishResult for the answers.
   */
  publish(argument: _stave_v1_PublishRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_PublishResponse__Output>): grpc.ClientUnaryCall;
  publish(argument: _stave_v1_PublishRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_PublishResponse__Output>): grpc.ClientUnaryCall;
  publish(argument: _stave_v1_PublishRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_PublishResponse__Output>): grpc.ClientUnaryCall;
  publish(argument: _stave_v1_PublishRequest, callback: grpc.requestCallback<_stave_v1_PublishResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Publish, pipelined: each request is answered with its `sequence`, in the order the
   * requests arrived (one request is written before the next is begun, so records of one
   * stream keep their order within a partition). Put many records in one request for
   * throughput.
   */
  PublishStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_PublishRequest, _stave_v1_PublishResponse__Output>;
  PublishStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_PublishRequest, _stave_v1_PublishResponse__Output>;
  /**
   * Publish, pipelined: each request is answered with its `sequence`, in the order the
   * requests arrived (one request is written before the next is begun, so records of one
   * stream keep their order within a partition). Put many records in one request for
   * throughput.
   */
  publishStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_PublishRequest, _stave_v1_PublishResponse__Output>;
  publishStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_stave_v1_PublishRequest, _stave_v1_PublishResponse__Output>;
  
  /**
   * Queue groups, for a member that is its own client (the Rust client's QueueConsumer;
   * other languages use Consume with `mode = QUEUE`). Sent to the group's coordinator
   * (FindCoordinator). QueueFetch joins (no member id), long-polls for up to `max_records`
   * records, each locked to this member, and leaves (`leave`: what it holds is released).
   * A member not heard from (fetch or settle) for 30 s is dropped and what it holds is
   * released; a member that is busy longer sends QueueFetch with `max_records = 0`.
   */
  QueueFetch(argument: _stave_v1_QueueFetchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_QueueFetchResponse__Output>): grpc.ClientUnaryCall;
  QueueFetch(argument: _stave_v1_QueueFetchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_QueueFetchResponse__Output>): grpc.ClientUnaryCall;
  QueueFetch(argument: _stave_v1_QueueFetchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_QueueFetchResponse__Output>): grpc.ClientUnaryCall;
  QueueFetch(argument: _stave_v1_QueueFetchRequest, callback: grpc.requestCallback<_stave_v1_QueueFetchResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Queue groups, for a member that is its own client (the Rust client's QueueConsumer;
   * other languages use Consume with `mode = QUEUE`). Sent to the group's coordinator
   * (FindCoordinator). QueueFetch joins (no member id), long-polls for up to `max_records`
   * records, each locked to this member, and leaves (`leave`: what it holds is released).
   * A member not heard from (fetch or settle) for 30 s is dropped and what it holds is
   * released; a member that is busy longer sends QueueFetch with `max_records = 0`.
   */
  queueFetch(argument: _stave_v1_QueueFetchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_QueueFetchResponse__Output>): grpc.ClientUnaryCall;
  queueFetch(argument: _stave_v1_QueueFetchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_QueueFetchResponse__Output>): grpc.ClientUnaryCall;
  queueFetch(argument: _stave_v1_QueueFetchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_QueueFetchResponse__Output>): grpc.ClientUnaryCall;
  queueFetch(argument: _stave_v1_QueueFetchRequest, callback: grpc.requestCallback<_stave_v1_QueueFetchResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Ack, release, reject or extend records delivered to the member; answered per record once
   * the group's state holding the outcome is replicated.
   */
  QueueSettle(argument: _stave_v1_QueueSettleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_QueueSettleResponse__Output>): grpc.ClientUnaryCall;
  QueueSettle(argument: _stave_v1_QueueSettleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_QueueSettleResponse__Output>): grpc.ClientUnaryCall;
  QueueSettle(argument: _stave_v1_QueueSettleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_QueueSettleResponse__Output>): grpc.ClientUnaryCall;
  QueueSettle(argument: _stave_v1_QueueSettleRequest, callback: grpc.requestCallback<_stave_v1_QueueSettleResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Ack, release, reject or extend records delivered to the member; answered per record once
   * the group's state holding the outcome is replicated.
   */
  queueSettle(argument: _stave_v1_QueueSettleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_QueueSettleResponse__Output>): grpc.ClientUnaryCall;
  queueSettle(argument: _stave_v1_QueueSettleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_QueueSettleResponse__Output>): grpc.ClientUnaryCall;
  queueSettle(argument: _stave_v1_QueueSettleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_QueueSettleResponse__Output>): grpc.ClientUnaryCall;
  queueSettle(argument: _stave_v1_QueueSettleRequest, callback: grpc.requestCallback<_stave_v1_QueueSettleResponse__Output>): grpc.ClientUnaryCall;
  
  RemoveAcl(argument: _stave_v1_AclRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  RemoveAcl(argument: _stave_v1_AclRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  RemoveAcl(argument: _stave_v1_AclRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  RemoveAcl(argument: _stave_v1_AclRequest, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  removeAcl(argument: _stave_v1_AclRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  removeAcl(argument: _stave_v1_AclRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  removeAcl(argument: _stave_v1_AclRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  removeAcl(argument: _stave_v1_AclRequest, callback: grpc.requestCallback<_stave_v1_AclResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Moves a group's committed offsets for one topic (replay, or skip ahead); sent to its
   * coordinator. Refused with GROUP_NOT_EMPTY while the group has members.
   */
  ResetOffsets(argument: _stave_v1_ResetOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ResetOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ResetOffsets(argument: _stave_v1_ResetOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ResetOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ResetOffsets(argument: _stave_v1_ResetOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ResetOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ResetOffsets(argument: _stave_v1_ResetOffsetsRequest, callback: grpc.requestCallback<_stave_v1_ResetOffsetsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Moves a group's committed offsets for one topic (replay, or skip ahead); sent to its
   * coordinator. Refused with GROUP_NOT_EMPTY while the group has members.
   */
  resetOffsets(argument: _stave_v1_ResetOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ResetOffsetsResponse__Output>): grpc.ClientUnaryCall;
  resetOffsets(argument: _stave_v1_ResetOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_stave_v1_ResetOffsetsResponse__Output>): grpc.ClientUnaryCall;
  resetOffsets(argument: _stave_v1_ResetOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_stave_v1_ResetOffsetsResponse__Output>): grpc.ClientUnaryCall;
  resetOffsets(argument: _stave_v1_ResetOffsetsRequest, callback: grpc.requestCallback<_stave_v1_ResetOffsetsResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface StaveHandlers extends grpc.UntypedServiceImplementation {
  AddAcl: grpc.handleUnaryCall<_stave_v1_AclRequest__Output, _stave_v1_AclResponse>;
  
  AlterTopicConfig: grpc.handleUnaryCall<_stave_v1_AlterTopicConfigRequest__Output, _stave_v1_AlterTopicConfigResponse>;
  
  /**
   * Commits a group's offsets; sent to its coordinator.
   */
  CommitOffsets: grpc.handleUnaryCall<_stave_v1_CommitOffsetsRequest__Output, _stave_v1_CommitOffsetsResponse>;
  
  /**
   * Records as messages, pushed: the client's first message is a Subscribe, then Credits
   * (flow control: nothing is pushed beyond them) and Commits, in any order; the node
   * pushes Records, Assignment changes and Committed answers. With a group, the node holding
   * the stream is the group's member on the client's behalf for as long as the stream
   * lives: it heartbeats, reads the partitions the group gives it from their leaders, and
   * leaves the group when the stream ends (its partitions move to the other members at
   * once; a stream whose connection dies silently, or whose node dies, lets go of its
   * partitions within the group's session timeout, 10 s: nodes ping a silent connection
   * after 5 s and close it when 5 s more pass without an answer).
   * Groups joined here and groups of the batch API's clients are the same groups. A refused
   * subscribe or a failure of the stream is pushed as `error`, and the stream ends. A client
   * that ends its side (half-close) gets what its credits still allow, then the end of the
   * stream; a client that cancels the call ends it at once.
   */
  Consume: grpc.handleBidiStreamingCall<_stave_v1_ConsumeRequest__Output, _stave_v1_ConsumeResponse>;
  
  CreateTopics: grpc.handleUnaryCall<_stave_v1_CreateTopicsRequest__Output, _stave_v1_CreateTopicsResponse>;
  
  /**
   * Users and ACLs (admin on the cluster; any node takes them, forwarding to the
   * controller). With `--auth required` every call needs a principal: a bearer token
   * (`authorization: Bearer TOKEN` metadata) or a client certificate; refusals are the gRPC
   * statuses UNAUTHENTICATED and PERMISSION_DENIED (naming the operation and resource).
   * CreateUser answers the new user's token, once: only its SHA-256 is kept.
   */
  CreateUser: grpc.handleUnaryCall<_stave_v1_CreateUserRequest__Output, _stave_v1_CreateUserResponse>;
  
  DeleteTopics: grpc.handleUnaryCall<_stave_v1_DeleteTopicsRequest__Output, _stave_v1_DeleteTopicsResponse>;
  
  DeleteUser: grpc.handleUnaryCall<_stave_v1_DeleteUserRequest__Output, _stave_v1_DeleteUserResponse>;
  
  /**
   * A group's members and committed offsets with lag; sent to its coordinator.
   */
  DescribeGroup: grpc.handleUnaryCall<_stave_v1_DescribeGroupRequest__Output, _stave_v1_DescribeGroupResponse>;
  
  DescribeTopics: grpc.handleUnaryCall<_stave_v1_DescribeTopicsRequest__Output, _stave_v1_DescribeTopicsResponse>;
  
  /**
   * Committed batches from an offset; long-polls up to `max_wait_ms` for `min_bytes`.
   */
  Fetch: grpc.handleUnaryCall<_stave_v1_FetchRequest__Output, _stave_v1_FetchResponse>;
  
  /**
   * A group's committed offsets; sent to its coordinator.
   */
  FetchOffsets: grpc.handleUnaryCall<_stave_v1_FetchOffsetsRequest__Output, _stave_v1_FetchOffsetsResponse>;
  
  /**
   * The node coordinating a consumer group: the leader of the group's `__offsets`
   * partition (`murmur2(group) % 16`). Creates `__offsets` on first use.
   */
  FindCoordinator: grpc.handleUnaryCall<_stave_v1_FindCoordinatorRequest__Output, _stave_v1_FindCoordinatorResponse>;
  
  /**
   * Group membership in the style of Kafka's KIP-848, sent to the coordinator: join (no
   * member id), heartbeat with the subscription and the partitions held, leave. The answer
   * is what the member may hold now: partitions move only once their old owner released
   * them.
   */
  GroupHeartbeat: grpc.handleUnaryCall<_stave_v1_GroupHeartbeatRequest__Output, _stave_v1_GroupHeartbeatResponse>;
  
  /**
   * A producer id for idempotent produce (sequence numbers per partition from 0).
   */
  InitProducerId: grpc.handleUnaryCall<_stave_v1_InitProducerIdRequest__Output, _stave_v1_InitProducerIdResponse>;
  
  ListAcls: grpc.handleUnaryCall<_stave_v1_ListAclsRequest__Output, _stave_v1_ListAclsResponse>;
  
  /**
   * Every consumer group (with a committed offset or a member); any node answers, asking
   * the others.
   */
  ListGroups: grpc.handleUnaryCall<_stave_v1_ListGroupsRequest__Output, _stave_v1_ListGroupsResponse>;
  
  ListOffsets: grpc.handleUnaryCall<_stave_v1_ListOffsetsRequest__Output, _stave_v1_ListOffsetsResponse>;
  
  ListUsers: grpc.handleUnaryCall<_stave_v1_ListUsersRequest__Output, _stave_v1_ListUsersResponse>;
  
  /**
   * Nodes, topics, partitions and who leads them; any node answers.
   */
  Metadata: grpc.handleUnaryCall<_stave_v1_MetadataRequest__Output, _stave_v1_MetadataResponse>;
  
  /**
   * One batch to one partition's leader; answered once a Raft majority has committed it.
   */
  Produce: grpc.handleUnaryCall<_stave_v1_ProduceRequest__Output, _stave_v1_ProduceResponse>;
  
  /**
   * Pipelined produce: requests carry a `sequence`, answers come back with it (per
   * partition in order).
   */
  ProduceStream: grpc.handleBidiStreamingCall<_stave_v1_ProduceRequest__Output, _stave_v1_ProduceResponse>;
  
  /**
   * Records as messages, for a client in any language (no batch codec needed): any node
   * takes them, routes each record to its partition, forwards to the partition leaders it
   * is not, and answers per record, in the records' order. See PublishRecord for routing and
   * ids, PublishResult for the answers.
   */
  Publish: grpc.handleUnaryCall<_stave_v1_PublishRequest__Output, _stave_v1_PublishResponse>;
  
  /**
   * Publish, pipelined: each request is answered with its `sequence`, in the order the
   * requests arrived (one request is written before the next is begun, so records of one
   * stream keep their order within a partition). Put many records in one request for
   * throughput.
   */
  PublishStream: grpc.handleBidiStreamingCall<_stave_v1_PublishRequest__Output, _stave_v1_PublishResponse>;
  
  /**
   * Queue groups, for a member that is its own client (the Rust client's QueueConsumer;
   * other languages use Consume with `mode = QUEUE`). Sent to the group's coordinator
   * (FindCoordinator). QueueFetch joins (no member id), long-polls for up to `max_records`
   * records, each locked to this member, and leaves (`leave`: what it holds is released).
   * A member not heard from (fetch or settle) for 30 s is dropped and what it holds is
   * released; a member that is busy longer sends QueueFetch with `max_records = 0`.
   */
  QueueFetch: grpc.handleUnaryCall<_stave_v1_QueueFetchRequest__Output, _stave_v1_QueueFetchResponse>;
  
  /**
   * Ack, release, reject or extend records delivered to the member; answered per record once
   * the group's state holding the outcome is replicated.
   */
  QueueSettle: grpc.handleUnaryCall<_stave_v1_QueueSettleRequest__Output, _stave_v1_QueueSettleResponse>;
  
  RemoveAcl: grpc.handleUnaryCall<_stave_v1_AclRequest__Output, _stave_v1_AclResponse>;
  
  /**
   * Moves a group's committed offsets for one topic (replay, or skip ahead); sent to its
   * coordinator. Refused with GROUP_NOT_EMPTY while the group has members.
   */
  ResetOffsets: grpc.handleUnaryCall<_stave_v1_ResetOffsetsRequest__Output, _stave_v1_ResetOffsetsResponse>;
  
}

export interface StaveDefinition extends grpc.ServiceDefinition {
  AddAcl: MethodDefinition<_stave_v1_AclRequest, _stave_v1_AclResponse, _stave_v1_AclRequest__Output, _stave_v1_AclResponse__Output>
  AlterTopicConfig: MethodDefinition<_stave_v1_AlterTopicConfigRequest, _stave_v1_AlterTopicConfigResponse, _stave_v1_AlterTopicConfigRequest__Output, _stave_v1_AlterTopicConfigResponse__Output>
  CommitOffsets: MethodDefinition<_stave_v1_CommitOffsetsRequest, _stave_v1_CommitOffsetsResponse, _stave_v1_CommitOffsetsRequest__Output, _stave_v1_CommitOffsetsResponse__Output>
  Consume: MethodDefinition<_stave_v1_ConsumeRequest, _stave_v1_ConsumeResponse, _stave_v1_ConsumeRequest__Output, _stave_v1_ConsumeResponse__Output>
  CreateTopics: MethodDefinition<_stave_v1_CreateTopicsRequest, _stave_v1_CreateTopicsResponse, _stave_v1_CreateTopicsRequest__Output, _stave_v1_CreateTopicsResponse__Output>
  CreateUser: MethodDefinition<_stave_v1_CreateUserRequest, _stave_v1_CreateUserResponse, _stave_v1_CreateUserRequest__Output, _stave_v1_CreateUserResponse__Output>
  DeleteTopics: MethodDefinition<_stave_v1_DeleteTopicsRequest, _stave_v1_DeleteTopicsResponse, _stave_v1_DeleteTopicsRequest__Output, _stave_v1_DeleteTopicsResponse__Output>
  DeleteUser: MethodDefinition<_stave_v1_DeleteUserRequest, _stave_v1_DeleteUserResponse, _stave_v1_DeleteUserRequest__Output, _stave_v1_DeleteUserResponse__Output>
  DescribeGroup: MethodDefinition<_stave_v1_DescribeGroupRequest, _stave_v1_DescribeGroupResponse, _stave_v1_DescribeGroupRequest__Output, _stave_v1_DescribeGroupResponse__Output>
  DescribeTopics: MethodDefinition<_stave_v1_DescribeTopicsRequest, _stave_v1_DescribeTopicsResponse, _stave_v1_DescribeTopicsRequest__Output, _stave_v1_DescribeTopicsResponse__Output>
  Fetch: MethodDefinition<_stave_v1_FetchRequest, _stave_v1_FetchResponse, _stave_v1_FetchRequest__Output, _stave_v1_FetchResponse__Output>
  FetchOffsets: MethodDefinition<_stave_v1_FetchOffsetsRequest, _stave_v1_FetchOffsetsResponse, _stave_v1_FetchOffsetsRequest__Output, _stave_v1_FetchOffsetsResponse__Output>
  FindCoordinator: MethodDefinition<_stave_v1_FindCoordinatorRequest, _stave_v1_FindCoordinatorResponse, _stave_v1_FindCoordinatorRequest__Output, _stave_v1_FindCoordinatorResponse__Output>
  GroupHeartbeat: MethodDefinition<_stave_v1_GroupHeartbeatRequest, _stave_v1_GroupHeartbeatResponse, _stave_v1_GroupHeartbeatRequest__Output, _stave_v1_GroupHeartbeatResponse__Output>
  InitProducerId: MethodDefinition<_stave_v1_InitProducerIdRequest, _stave_v1_InitProducerIdResponse, _stave_v1_InitProducerIdRequest__Output, _stave_v1_InitProducerIdResponse__Output>
  ListAcls: MethodDefinition<_stave_v1_ListAclsRequest, _stave_v1_ListAclsResponse, _stave_v1_ListAclsRequest__Output, _stave_v1_ListAclsResponse__Output>
  ListGroups: MethodDefinition<_stave_v1_ListGroupsRequest, _stave_v1_ListGroupsResponse, _stave_v1_ListGroupsRequest__Output, _stave_v1_ListGroupsResponse__Output>
  ListOffsets: MethodDefinition<_stave_v1_ListOffsetsRequest, _stave_v1_ListOffsetsResponse, _stave_v1_ListOffsetsRequest__Output, _stave_v1_ListOffsetsResponse__Output>
  ListUsers: MethodDefinition<_stave_v1_ListUsersRequest, _stave_v1_ListUsersResponse, _stave_v1_ListUsersRequest__Output, _stave_v1_ListUsersResponse__Output>
  Metadata: MethodDefinition<_stave_v1_MetadataRequest, _stave_v1_MetadataResponse, _stave_v1_MetadataRequest__Output, _stave_v1_MetadataResponse__Output>
  Produce: MethodDefinition<_stave_v1_ProduceRequest, _stave_v1_ProduceResponse, _stave_v1_ProduceRequest__Output, _stave_v1_ProduceResponse__Output>
  ProduceStream: MethodDefinition<_stave_v1_ProduceRequest, _stave_v1_ProduceResponse, _stave_v1_ProduceRequest__Output, _stave_v1_ProduceResponse__Output>
  Publish: MethodDefinition<_stave_v1_PublishRequest, _stave_v1_PublishResponse, _stave_v1_PublishRequest__Output, _stave_v1_PublishResponse__Output>
  PublishStream: MethodDefinition<_stave_v1_PublishRequest, _stave_v1_PublishResponse, _stave_v1_PublishRequest__Output, _stave_v1_PublishResponse__Output>
  QueueFetch: MethodDefinition<_stave_v1_QueueFetchRequest, _stave_v1_QueueFetchResponse, _stave_v1_QueueFetchRequest__Output, _stave_v1_QueueFetchResponse__Output>
  QueueSettle: MethodDefinition<_stave_v1_QueueSettleRequest, _stave_v1_QueueSettleResponse, _stave_v1_QueueSettleRequest__Output, _stave_v1_QueueSettleResponse__Output>
  RemoveAcl: MethodDefinition<_stave_v1_AclRequest, _stave_v1_AclResponse, _stave_v1_AclRequest__Output, _stave_v1_AclResponse__Output>
  ResetOffsets: MethodDefinition<_stave_v1_ResetOffsetsRequest, _stave_v1_ResetOffsetsResponse, _stave_v1_ResetOffsetsRequest__Output, _stave_v1_ResetOffsetsResponse__Output>
}
