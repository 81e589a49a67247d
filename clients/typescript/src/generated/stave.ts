import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AclEntry as _stave_v1_AclEntry, AclEntry__Output as _stave_v1_AclEntry__Output } from './stave/v1/AclEntry';
import type { AclRequest as _stave_v1_AclRequest, AclRequest__Output as _stave_v1_AclRequest__Output } from './stave/v1/AclRequest';
import type { AclResponse as _stave_v1_AclResponse, AclResponse__Output as _stave_v1_AclResponse__Output } from './stave/v1/AclResponse';
import type { AlterTopicConfigRequest as _stave_v1_AlterTopicConfigRequest, AlterTopicConfigRequest__Output as _stave_v1_AlterTopicConfigRequest__Output } from './stave/v1/AlterTopicConfigRequest';
import type { AlterTopicConfigResponse as _stave_v1_AlterTopicConfigResponse, AlterTopicConfigResponse__Output as _stave_v1_AlterTopicConfigResponse__Output } from './stave/v1/AlterTopicConfigResponse';
import type { Assignment as _stave_v1_Assignment, Assignment__Output as _stave_v1_Assignment__Output } from './stave/v1/Assignment';
import type { Commit as _stave_v1_Commit, Commit__Output as _stave_v1_Commit__Output } from './stave/v1/Commit';
import type { CommitOffset as _stave_v1_CommitOffset, CommitOffset__Output as _stave_v1_CommitOffset__Output } from './stave/v1/CommitOffset';
import type { CommitOffsetsRequest as _stave_v1_CommitOffsetsRequest, CommitOffsetsRequest__Output as _stave_v1_CommitOffsetsRequest__Output } from './stave/v1/CommitOffsetsRequest';
import type { CommitOffsetsResponse as _stave_v1_CommitOffsetsResponse, CommitOffsetsResponse__Output as _stave_v1_CommitOffsetsResponse__Output } from './stave/v1/CommitOffsetsResponse';
import type { Committed as _stave_v1_Committed, Committed__Output as _stave_v1_Committed__Output } from './stave/v1/Committed';
import type { ConfigEntry as _stave_v1_ConfigEntry, ConfigEntry__Output as _stave_v1_ConfigEntry__Output } from './stave/v1/ConfigEntry';
import type { ConsumeRequest as _stave_v1_ConsumeRequest, ConsumeRequest__Output as _stave_v1_ConsumeRequest__Output } from './stave/v1/ConsumeRequest';
import type { ConsumeResponse as _stave_v1_ConsumeResponse, ConsumeResponse__Output as _stave_v1_ConsumeResponse__Output } from './stave/v1/ConsumeResponse';
import type { ConsumedRecord as _stave_v1_ConsumedRecord, ConsumedRecord__Output as _stave_v1_ConsumedRecord__Output } from './stave/v1/ConsumedRecord';
import type { CreateTopicsRequest as _stave_v1_CreateTopicsRequest, CreateTopicsRequest__Output as _stave_v1_CreateTopicsRequest__Output } from './stave/v1/CreateTopicsRequest';
import type { CreateTopicsResponse as _stave_v1_CreateTopicsResponse, CreateTopicsResponse__Output as _stave_v1_CreateTopicsResponse__Output } from './stave/v1/CreateTopicsResponse';
import type { CreateUserRequest as _stave_v1_CreateUserRequest, CreateUserRequest__Output as _stave_v1_CreateUserRequest__Output } from './stave/v1/CreateUserRequest';
import type { CreateUserResponse as _stave_v1_CreateUserResponse, CreateUserResponse__Output as _stave_v1_CreateUserResponse__Output } from './stave/v1/CreateUserResponse';
import type { Credit as _stave_v1_Credit, Credit__Output as _stave_v1_Credit__Output } from './stave/v1/Credit';
import type { DeleteTopicsRequest as _stave_v1_DeleteTopicsRequest, DeleteTopicsRequest__Output as _stave_v1_DeleteTopicsRequest__Output } from './stave/v1/DeleteTopicsRequest';
import type { DeleteTopicsResponse as _stave_v1_DeleteTopicsResponse, DeleteTopicsResponse__Output as _stave_v1_DeleteTopicsResponse__Output } from './stave/v1/DeleteTopicsResponse';
import type { DeleteUserRequest as _stave_v1_DeleteUserRequest, DeleteUserRequest__Output as _stave_v1_DeleteUserRequest__Output } from './stave/v1/DeleteUserRequest';
import type { DeleteUserResponse as _stave_v1_DeleteUserResponse, DeleteUserResponse__Output as _stave_v1_DeleteUserResponse__Output } from './stave/v1/DeleteUserResponse';
import type { DescribeGroupRequest as _stave_v1_DescribeGroupRequest, DescribeGroupRequest__Output as _stave_v1_DescribeGroupRequest__Output } from './stave/v1/DescribeGroupRequest';
import type { DescribeGroupResponse as _stave_v1_DescribeGroupResponse, DescribeGroupResponse__Output as _stave_v1_DescribeGroupResponse__Output } from './stave/v1/DescribeGroupResponse';
import type { DescribeTopicsRequest as _stave_v1_DescribeTopicsRequest, DescribeTopicsRequest__Output as _stave_v1_DescribeTopicsRequest__Output } from './stave/v1/DescribeTopicsRequest';
import type { DescribeTopicsResponse as _stave_v1_DescribeTopicsResponse, DescribeTopicsResponse__Output as _stave_v1_DescribeTopicsResponse__Output } from './stave/v1/DescribeTopicsResponse';
import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from './stave/v1/Error';
import type { FetchOffsetsRequest as _stave_v1_FetchOffsetsRequest, FetchOffsetsRequest__Output as _stave_v1_FetchOffsetsRequest__Output } from './stave/v1/FetchOffsetsRequest';
import type { FetchOffsetsResponse as _stave_v1_FetchOffsetsResponse, FetchOffsetsResponse__Output as _stave_v1_FetchOffsetsResponse__Output } from './stave/v1/FetchOffsetsResponse';
import type { FetchRequest as _stave_v1_FetchRequest, FetchRequest__Output as _stave_v1_FetchRequest__Output } from './stave/v1/FetchRequest';
import type { FetchResponse as _stave_v1_FetchResponse, FetchResponse__Output as _stave_v1_FetchResponse__Output } from './stave/v1/FetchResponse';
import type { FindCoordinatorRequest as _stave_v1_FindCoordinatorRequest, FindCoordinatorRequest__Output as _stave_v1_FindCoordinatorRequest__Output } from './stave/v1/FindCoordinatorRequest';
import type { FindCoordinatorResponse as _stave_v1_FindCoordinatorResponse, FindCoordinatorResponse__Output as _stave_v1_FindCoordinatorResponse__Output } from './stave/v1/FindCoordinatorResponse';
import type { GroupHeartbeatRequest as _stave_v1_GroupHeartbeatRequest, GroupHeartbeatRequest__Output as _stave_v1_GroupHeartbeatRequest__Output } from './stave/v1/GroupHeartbeatRequest';
import type { GroupHeartbeatResponse as _stave_v1_GroupHeartbeatResponse, GroupHeartbeatResponse__Output as _stave_v1_GroupHeartbeatResponse__Output } from './stave/v1/GroupHeartbeatResponse';
import type { GroupMember as _stave_v1_GroupMember, GroupMember__Output as _stave_v1_GroupMember__Output } from './stave/v1/GroupMember';
import type { GroupOffset as _stave_v1_GroupOffset, GroupOffset__Output as _stave_v1_GroupOffset__Output } from './stave/v1/GroupOffset';
import type { Header as _stave_v1_Header, Header__Output as _stave_v1_Header__Output } from './stave/v1/Header';
import type { InitProducerIdRequest as _stave_v1_InitProducerIdRequest, InitProducerIdRequest__Output as _stave_v1_InitProducerIdRequest__Output } from './stave/v1/InitProducerIdRequest';
import type { InitProducerIdResponse as _stave_v1_InitProducerIdResponse, InitProducerIdResponse__Output as _stave_v1_InitProducerIdResponse__Output } from './stave/v1/InitProducerIdResponse';
import type { ListAclsRequest as _stave_v1_ListAclsRequest, ListAclsRequest__Output as _stave_v1_ListAclsRequest__Output } from './stave/v1/ListAclsRequest';
import type { ListAclsResponse as _stave_v1_ListAclsResponse, ListAclsResponse__Output as _stave_v1_ListAclsResponse__Output } from './stave/v1/ListAclsResponse';
import type { ListGroupsRequest as _stave_v1_ListGroupsRequest, ListGroupsRequest__Output as _stave_v1_ListGroupsRequest__Output } from './stave/v1/ListGroupsRequest';
import type { ListGroupsResponse as _stave_v1_ListGroupsResponse, ListGroupsResponse__Output as _stave_v1_ListGroupsResponse__Output } from './stave/v1/ListGroupsResponse';
import type { ListOffsetsRequest as _stave_v1_ListOffsetsRequest, ListOffsetsRequest__Output as _stave_v1_ListOffsetsRequest__Output } from './stave/v1/ListOffsetsRequest';
import type { ListOffsetsResponse as _stave_v1_ListOffsetsResponse, ListOffsetsResponse__Output as _stave_v1_ListOffsetsResponse__Output } from './stave/v1/ListOffsetsResponse';
import type { ListUsersRequest as _stave_v1_ListUsersRequest, ListUsersRequest__Output as _stave_v1_ListUsersRequest__Output } from './stave/v1/ListUsersRequest';
import type { ListUsersResponse as _stave_v1_ListUsersResponse, ListUsersResponse__Output as _stave_v1_ListUsersResponse__Output } from './stave/v1/ListUsersResponse';
import type { ListedGroup as _stave_v1_ListedGroup, ListedGroup__Output as _stave_v1_ListedGroup__Output } from './stave/v1/ListedGroup';
import type { MetadataRequest as _stave_v1_MetadataRequest, MetadataRequest__Output as _stave_v1_MetadataRequest__Output } from './stave/v1/MetadataRequest';
import type { MetadataResponse as _stave_v1_MetadataResponse, MetadataResponse__Output as _stave_v1_MetadataResponse__Output } from './stave/v1/MetadataResponse';
import type { Node as _stave_v1_Node, Node__Output as _stave_v1_Node__Output } from './stave/v1/Node';
import type { OffsetCommit as _stave_v1_OffsetCommit, OffsetCommit__Output as _stave_v1_OffsetCommit__Output } from './stave/v1/OffsetCommit';
import type { PartitionLag as _stave_v1_PartitionLag, PartitionLag__Output as _stave_v1_PartitionLag__Output } from './stave/v1/PartitionLag';
import type { PartitionMetadata as _stave_v1_PartitionMetadata, PartitionMetadata__Output as _stave_v1_PartitionMetadata__Output } from './stave/v1/PartitionMetadata';
import type { ProduceRequest as _stave_v1_ProduceRequest, ProduceRequest__Output as _stave_v1_ProduceRequest__Output } from './stave/v1/ProduceRequest';
import type { ProduceResponse as _stave_v1_ProduceResponse, ProduceResponse__Output as _stave_v1_ProduceResponse__Output } from './stave/v1/ProduceResponse';
import type { PublishRecord as _stave_v1_PublishRecord, PublishRecord__Output as _stave_v1_PublishRecord__Output } from './stave/v1/PublishRecord';
import type { PublishRequest as _stave_v1_PublishRequest, PublishRequest__Output as _stave_v1_PublishRequest__Output } from './stave/v1/PublishRequest';
import type { PublishResponse as _stave_v1_PublishResponse, PublishResponse__Output as _stave_v1_PublishResponse__Output } from './stave/v1/PublishResponse';
import type { PublishResult as _stave_v1_PublishResult, PublishResult__Output as _stave_v1_PublishResult__Output } from './stave/v1/PublishResult';
import type { QueueFetchRequest as _stave_v1_QueueFetchRequest, QueueFetchRequest__Output as _stave_v1_QueueFetchRequest__Output } from './stave/v1/QueueFetchRequest';
import type { QueueFetchResponse as _stave_v1_QueueFetchResponse, QueueFetchResponse__Output as _stave_v1_QueueFetchResponse__Output } from './stave/v1/QueueFetchResponse';
import type { QueueGroupState as _stave_v1_QueueGroupState, QueueGroupState__Output as _stave_v1_QueueGroupState__Output } from './stave/v1/QueueGroupState';
import type { QueueMember as _stave_v1_QueueMember, QueueMember__Output as _stave_v1_QueueMember__Output } from './stave/v1/QueueMember';
import type { QueueOptions as _stave_v1_QueueOptions, QueueOptions__Output as _stave_v1_QueueOptions__Output } from './stave/v1/QueueOptions';
import type { QueuePartitionState as _stave_v1_QueuePartitionState, QueuePartitionState__Output as _stave_v1_QueuePartitionState__Output } from './stave/v1/QueuePartitionState';
import type { QueueSettleRequest as _stave_v1_QueueSettleRequest, QueueSettleRequest__Output as _stave_v1_QueueSettleRequest__Output } from './stave/v1/QueueSettleRequest';
import type { QueueSettleResponse as _stave_v1_QueueSettleResponse, QueueSettleResponse__Output as _stave_v1_QueueSettleResponse__Output } from './stave/v1/QueueSettleResponse';
import type { Records as _stave_v1_Records, Records__Output as _stave_v1_Records__Output } from './stave/v1/Records';
import type { ReplicaProblem as _stave_v1_ReplicaProblem, ReplicaProblem__Output as _stave_v1_ReplicaProblem__Output } from './stave/v1/ReplicaProblem';
import type { ResetOffsetsRequest as _stave_v1_ResetOffsetsRequest, ResetOffsetsRequest__Output as _stave_v1_ResetOffsetsRequest__Output } from './stave/v1/ResetOffsetsRequest';
import type { ResetOffsetsResponse as _stave_v1_ResetOffsetsResponse, ResetOffsetsResponse__Output as _stave_v1_ResetOffsetsResponse__Output } from './stave/v1/ResetOffsetsResponse';
import type { Settle as _stave_v1_Settle, Settle__Output as _stave_v1_Settle__Output } from './stave/v1/Settle';
import type { Settled as _stave_v1_Settled, Settled__Output as _stave_v1_Settled__Output } from './stave/v1/Settled';
import type { Settlement as _stave_v1_Settlement, Settlement__Output as _stave_v1_Settlement__Output } from './stave/v1/Settlement';
import type { StaveClient as _stave_v1_StaveClient, StaveDefinition as _stave_v1_StaveDefinition } from './stave/v1/Stave';
import type { Subscribe as _stave_v1_Subscribe, Subscribe__Output as _stave_v1_Subscribe__Output } from './stave/v1/Subscribe';
import type { TopicDescription as _stave_v1_TopicDescription, TopicDescription__Output as _stave_v1_TopicDescription__Output } from './stave/v1/TopicDescription';
import type { TopicMetadata as _stave_v1_TopicMetadata, TopicMetadata__Output as _stave_v1_TopicMetadata__Output } from './stave/v1/TopicMetadata';
import type { TopicPartitions as _stave_v1_TopicPartitions, TopicPartitions__Output as _stave_v1_TopicPartitions__Output } from './stave/v1/TopicPartitions';
import type { TopicResult as _stave_v1_TopicResult, TopicResult__Output as _stave_v1_TopicResult__Output } from './stave/v1/TopicResult';
import type { TopicSpec as _stave_v1_TopicSpec, TopicSpec__Output as _stave_v1_TopicSpec__Output } from './stave/v1/TopicSpec';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  stave: {
    v1: {
      AclEntry: MessageTypeDefinition<_stave_v1_AclEntry, _stave_v1_AclEntry__Output>
      AclRequest: MessageTypeDefinition<_stave_v1_AclRequest, _stave_v1_AclRequest__Output>
      AclResponse: MessageTypeDefinition<_stave_v1_AclResponse, _stave_v1_AclResponse__Output>
      AlterTopicConfigRequest: MessageTypeDefinition<_stave_v1_AlterTopicConfigRequest, _stave_v1_AlterTopicConfigRequest__Output>
      AlterTopicConfigResponse: MessageTypeDefinition<_stave_v1_AlterTopicConfigResponse, _stave_v1_AlterTopicConfigResponse__Output>
      Assignment: MessageTypeDefinition<_stave_v1_Assignment, _stave_v1_Assignment__Output>
      Commit: MessageTypeDefinition<_stave_v1_Commit, _stave_v1_Commit__Output>
      CommitOffset: MessageTypeDefinition<_stave_v1_CommitOffset, _stave_v1_CommitOffset__Output>
      CommitOffsetsRequest: MessageTypeDefinition<_stave_v1_CommitOffsetsRequest, _stave_v1_CommitOffsetsRequest__Output>
      CommitOffsetsResponse: MessageTypeDefinition<_stave_v1_CommitOffsetsResponse, _stave_v1_CommitOffsetsResponse__Output>
      Committed: MessageTypeDefinition<_stave_v1_Committed, _stave_v1_Committed__Output>
      ConfigEntry: MessageTypeDefinition<_stave_v1_ConfigEntry, _stave_v1_ConfigEntry__Output>
      ConsumeMode: EnumTypeDefinition
      ConsumeRequest: MessageTypeDefinition<_stave_v1_ConsumeRequest, _stave_v1_ConsumeRequest__Output>
      ConsumeResponse: MessageTypeDefinition<_stave_v1_ConsumeResponse, _stave_v1_ConsumeResponse__Output>
      ConsumedRecord: MessageTypeDefinition<_stave_v1_ConsumedRecord, _stave_v1_ConsumedRecord__Output>
      CreateTopicsRequest: MessageTypeDefinition<_stave_v1_CreateTopicsRequest, _stave_v1_CreateTopicsRequest__Output>
      CreateTopicsResponse: MessageTypeDefinition<_stave_v1_CreateTopicsResponse, _stave_v1_CreateTopicsResponse__Output>
      CreateUserRequest: MessageTypeDefinition<_stave_v1_CreateUserRequest, _stave_v1_CreateUserRequest__Output>
      CreateUserResponse: MessageTypeDefinition<_stave_v1_CreateUserResponse, _stave_v1_CreateUserResponse__Output>
      Credit: MessageTypeDefinition<_stave_v1_Credit, _stave_v1_Credit__Output>
      DeleteTopicsRequest: MessageTypeDefinition<_stave_v1_DeleteTopicsRequest, _stave_v1_DeleteTopicsRequest__Output>
      DeleteTopicsResponse: MessageTypeDefinition<_stave_v1_DeleteTopicsResponse, _stave_v1_DeleteTopicsResponse__Output>
      DeleteUserRequest: MessageTypeDefinition<_stave_v1_DeleteUserRequest, _stave_v1_DeleteUserRequest__Output>
      DeleteUserResponse: MessageTypeDefinition<_stave_v1_DeleteUserResponse, _stave_v1_DeleteUserResponse__Output>
      DescribeGroupRequest: MessageTypeDefinition<_stave_v1_DescribeGroupRequest, _stave_v1_DescribeGroupRequest__Output>
      DescribeGroupResponse: MessageTypeDefinition<_stave_v1_DescribeGroupResponse, _stave_v1_DescribeGroupResponse__Output>
      DescribeTopicsRequest: MessageTypeDefinition<_stave_v1_DescribeTopicsRequest, _stave_v1_DescribeTopicsRequest__Output>
      DescribeTopicsResponse: MessageTypeDefinition<_stave_v1_DescribeTopicsResponse, _stave_v1_DescribeTopicsResponse__Output>
      Error: MessageTypeDefinition<_stave_v1_Error, _stave_v1_Error__Output>
      ErrorCode: EnumTypeDefinition
      FetchOffsetsRequest: MessageTypeDefinition<_stave_v1_FetchOffsetsRequest, _stave_v1_FetchOffsetsRequest__Output>
      FetchOffsetsResponse: MessageTypeDefinition<_stave_v1_FetchOffsetsResponse, _stave_v1_FetchOffsetsResponse__Output>
      FetchRequest: MessageTypeDefinition<_stave_v1_FetchRequest, _stave_v1_FetchRequest__Output>
      FetchResponse: MessageTypeDefinition<_stave_v1_FetchResponse, _stave_v1_FetchResponse__Output>
      FindCoordinatorRequest: MessageTypeDefinition<_stave_v1_FindCoordinatorRequest, _stave_v1_FindCoordinatorRequest__Output>
      FindCoordinatorResponse: MessageTypeDefinition<_stave_v1_FindCoordinatorResponse, _stave_v1_FindCoordinatorResponse__Output>
      GroupHeartbeatRequest: MessageTypeDefinition<_stave_v1_GroupHeartbeatRequest, _stave_v1_GroupHeartbeatRequest__Output>
      GroupHeartbeatResponse: MessageTypeDefinition<_stave_v1_GroupHeartbeatResponse, _stave_v1_GroupHeartbeatResponse__Output>
      GroupMember: MessageTypeDefinition<_stave_v1_GroupMember, _stave_v1_GroupMember__Output>
      GroupOffset: MessageTypeDefinition<_stave_v1_GroupOffset, _stave_v1_GroupOffset__Output>
      Header: MessageTypeDefinition<_stave_v1_Header, _stave_v1_Header__Output>
      InitProducerIdRequest: MessageTypeDefinition<_stave_v1_InitProducerIdRequest, _stave_v1_InitProducerIdRequest__Output>
      InitProducerIdResponse: MessageTypeDefinition<_stave_v1_InitProducerIdResponse, _stave_v1_InitProducerIdResponse__Output>
      ListAclsRequest: MessageTypeDefinition<_stave_v1_ListAclsRequest, _stave_v1_ListAclsRequest__Output>
      ListAclsResponse: MessageTypeDefinition<_stave_v1_ListAclsResponse, _stave_v1_ListAclsResponse__Output>
      ListGroupsRequest: MessageTypeDefinition<_stave_v1_ListGroupsRequest, _stave_v1_ListGroupsRequest__Output>
      ListGroupsResponse: MessageTypeDefinition<_stave_v1_ListGroupsResponse, _stave_v1_ListGroupsResponse__Output>
      ListOffsetsRequest: MessageTypeDefinition<_stave_v1_ListOffsetsRequest, _stave_v1_ListOffsetsRequest__Output>
      ListOffsetsResponse: MessageTypeDefinition<_stave_v1_ListOffsetsResponse, _stave_v1_ListOffsetsResponse__Output>
      ListUsersRequest: MessageTypeDefinition<_stave_v1_ListUsersRequest, _stave_v1_ListUsersRequest__Output>
      ListUsersResponse: MessageTypeDefinition<_stave_v1_ListUsersResponse, _stave_v1_ListUsersResponse__Output>
      ListedGroup: MessageTypeDefinition<_stave_v1_ListedGroup, _stave_v1_ListedGroup__Output>
      MetadataRequest: MessageTypeDefinition<_stave_v1_MetadataRequest, _stave_v1_MetadataRequest__Output>
      MetadataResponse: MessageTypeDefinition<_stave_v1_MetadataResponse, _stave_v1_MetadataResponse__Output>
      Node: MessageTypeDefinition<_stave_v1_Node, _stave_v1_Node__Output>
      OffsetCommit: MessageTypeDefinition<_stave_v1_OffsetCommit, _stave_v1_OffsetCommit__Output>
      PartitionLag: MessageTypeDefinition<_stave_v1_PartitionLag, _stave_v1_PartitionLag__Output>
      PartitionMetadata: MessageTypeDefinition<_stave_v1_PartitionMetadata, _stave_v1_PartitionMetadata__Output>
      ProduceRequest: MessageTypeDefinition<_stave_v1_ProduceRequest, _stave_v1_ProduceRequest__Output>
      ProduceResponse: MessageTypeDefinition<_stave_v1_ProduceResponse, _stave_v1_ProduceResponse__Output>
      PublishRecord: MessageTypeDefinition<_stave_v1_PublishRecord, _stave_v1_PublishRecord__Output>
      PublishRequest: MessageTypeDefinition<_stave_v1_PublishRequest, _stave_v1_PublishRequest__Output>
      PublishResponse: MessageTypeDefinition<_stave_v1_PublishResponse, _stave_v1_PublishResponse__Output>
      PublishResult: MessageTypeDefinition<_stave_v1_PublishResult, _stave_v1_PublishResult__Output>
      QueueFetchRequest: MessageTypeDefinition<_stave_v1_QueueFetchRequest, _stave_v1_QueueFetchRequest__Output>
      QueueFetchResponse: MessageTypeDefinition<_stave_v1_QueueFetchResponse, _stave_v1_QueueFetchResponse__Output>
      QueueGroupState: MessageTypeDefinition<_stave_v1_QueueGroupState, _stave_v1_QueueGroupState__Output>
      QueueMember: MessageTypeDefinition<_stave_v1_QueueMember, _stave_v1_QueueMember__Output>
      QueueOptions: MessageTypeDefinition<_stave_v1_QueueOptions, _stave_v1_QueueOptions__Output>
      QueueOrdering: EnumTypeDefinition
      QueuePartitionState: MessageTypeDefinition<_stave_v1_QueuePartitionState, _stave_v1_QueuePartitionState__Output>
      QueueSettleRequest: MessageTypeDefinition<_stave_v1_QueueSettleRequest, _stave_v1_QueueSettleRequest__Output>
      QueueSettleResponse: MessageTypeDefinition<_stave_v1_QueueSettleResponse, _stave_v1_QueueSettleResponse__Output>
      Records: MessageTypeDefinition<_stave_v1_Records, _stave_v1_Records__Output>
      ReplicaProblem: MessageTypeDefinition<_stave_v1_ReplicaProblem, _stave_v1_ReplicaProblem__Output>
      ResetOffsetsRequest: MessageTypeDefinition<_stave_v1_ResetOffsetsRequest, _stave_v1_ResetOffsetsRequest__Output>
      ResetOffsetsResponse: MessageTypeDefinition<_stave_v1_ResetOffsetsResponse, _stave_v1_ResetOffsetsResponse__Output>
      Settle: MessageTypeDefinition<_stave_v1_Settle, _stave_v1_Settle__Output>
      SettleAction: EnumTypeDefinition
      Settled: MessageTypeDefinition<_stave_v1_Settled, _stave_v1_Settled__Output>
      Settlement: MessageTypeDefinition<_stave_v1_Settlement, _stave_v1_Settlement__Output>
      Stave: SubtypeConstructor<typeof grpc.Client, _stave_v1_StaveClient> & { service: _stave_v1_StaveDefinition }
      Subscribe: MessageTypeDefinition<_stave_v1_Subscribe, _stave_v1_Subscribe__Output>
      TopicDescription: MessageTypeDefinition<_stave_v1_TopicDescription, _stave_v1_TopicDescription__Output>
      TopicMetadata: MessageTypeDefinition<_stave_v1_TopicMetadata, _stave_v1_TopicMetadata__Output>
      TopicPartitions: MessageTypeDefinition<_stave_v1_TopicPartitions, _stave_v1_TopicPartitions__Output>
      TopicResult: MessageTypeDefinition<_stave_v1_TopicResult, _stave_v1_TopicResult__Output>
      TopicSpec: MessageTypeDefinition<_stave_v1_TopicSpec, _stave_v1_TopicSpec__Output>
    }
  }
}

