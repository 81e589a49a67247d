package stave

import (
	"context"
	"fmt"
	"slices"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// TopicConfig describes a topic to create; the zero value takes the node's defaults.
type TopicConfig struct {
	// Partitions defaults to 3.
	Partitions int
	// ReplicationFactor defaults to the smaller of 3 and the node count.
	ReplicationFactor int
	// Configs are topic settings: retention.ms, retention.bytes, segment.bytes, segment.ms,
	// max.message.bytes, flush (always | never | interval:<ms>), dedupe.window.ms,
	// dedupe.max.ids.
	Configs map[string]string
}

// TopicDescription is a topic as the cluster describes it.
type TopicDescription struct {
	// Name of the topic.
	Name string
	// Partitions in partition order.
	Partitions []PartitionDescription
	// Configs holds every setting, defaults included.
	Configs map[string]string
}

// PartitionDescription is one partition of a topic.
type PartitionDescription struct {
	// Partition is the partition's number, from 0.
	Partition uint32
	// Leader is the leading node's id, or -1 while there is none.
	Leader int64
	// Replicas are the assigned replicas' node ids, in preference order.
	Replicas []uint64
	// InSync are the replicas within reach of the leader's log.
	InSync []uint64
}

// CreateTopic creates a topic and waits until each of its partitions has a leader (so it
// takes records at once). It fails with CodeTopicExists if the topic exists.
func (c *Client) CreateTopic(ctx context.Context, name string, config TopicConfig) error {
	spec := &pb.TopicSpec{
		Name:              name,
		Partitions:        uint32(config.Partitions),
		ReplicationFactor: uint32(config.ReplicationFactor),
	}
	for key, value := range config.Configs {
		spec.Configs = append(spec.Configs, &pb.ConfigEntry{Key: key, Value: value})
	}
	tries := 0
	err := c.retry(ctx, func(ctx context.Context) error {
		tries++
		resp, err := c.rpc.CreateTopics(ctx, &pb.CreateTopicsRequest{Topics: []*pb.TopicSpec{spec}})
		if err != nil {
			return err
		}
		if len(resp.Results) != 1 {
			return fmt.Errorf("stave: create topic %q: %d results for one topic", name, len(resp.Results))
		}
		err = asError(resp.Results[0].Error)
		if tries > 1 && CodeOf(err) == CodeTopicExists {
			return nil // An earlier try created it; its answer was lost.
		}
		return err
	})
	if err != nil {
		return err
	}
	return c.waitForLeaders(ctx, name)
}

// waitForLeaders polls the topic until every partition has a leader.
func (c *Client) waitForLeaders(ctx context.Context, name string) error {
	return c.retry(ctx, func(ctx context.Context) error {
		topic, err := c.DescribeTopic(ctx, name)
		if CodeOf(err) == CodeUnknownTopic {
			return &Error{Code: CodeLeaderNotAvailable, Message: fmt.Sprintf("topic %q is not known yet", name)}
		}
		if err != nil {
			return err
		}
		for _, p := range topic.Partitions {
			if p.Leader < 0 {
				return &Error{Code: CodeLeaderNotAvailable, Message: fmt.Sprintf("partition %d of %q has no leader yet", p.Partition, name)}
			}
		}
		return nil
	})
}

// DescribeTopic returns a topic's partitions and settings; CodeUnknownTopic if there is no
// such topic.
func (c *Client) DescribeTopic(ctx context.Context, name string) (*TopicDescription, error) {
	var description *TopicDescription
	err := c.retry(ctx, func(ctx context.Context) error {
		resp, err := c.rpc.DescribeTopics(ctx, &pb.DescribeTopicsRequest{Names: []string{name}})
		if err != nil {
			return err
		}
		if len(resp.Topics) != 1 {
			return fmt.Errorf("stave: describe topic %q: %d answers for one topic", name, len(resp.Topics))
		}
		topic := resp.Topics[0]
		if err := asError(topic.Error); err != nil {
			return err
		}
		description = describe(topic)
		return nil
	})
	return description, err
}

func describe(topic *pb.TopicDescription) *TopicDescription {
	out := &TopicDescription{Name: topic.Name, Configs: map[string]string{}}
	for _, entry := range topic.Configs {
		out.Configs[entry.Key] = entry.Value
	}
	for _, p := range topic.Partitions {
		leader := int64(-1)
		if p.Leader != nil {
			leader = int64(*p.Leader)
		}
		out.Partitions = append(out.Partitions, PartitionDescription{
			Partition: p.Partition, Leader: leader, Replicas: p.Replicas, InSync: p.InSync,
		})
	}
	slices.SortFunc(out.Partitions, func(a, b PartitionDescription) int {
		return int(a.Partition) - int(b.Partition)
	})
	return out
}

// ListTopics returns the names of every topic (internal ones excluded), sorted.
func (c *Client) ListTopics(ctx context.Context) ([]string, error) {
	var names []string
	err := c.retry(ctx, func(ctx context.Context) error {
		resp, err := c.rpc.Metadata(ctx, &pb.MetadataRequest{})
		if err != nil {
			return err
		}
		names = names[:0]
		for _, topic := range resp.Topics {
			names = append(names, topic.Name)
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// DeleteTopic deletes a topic and its records; CodeUnknownTopic if there is no such topic.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	tries := 0
	return c.retry(ctx, func(ctx context.Context) error {
		tries++
		resp, err := c.rpc.DeleteTopics(ctx, &pb.DeleteTopicsRequest{Names: []string{name}})
		if err != nil {
			return err
		}
		if len(resp.Results) != 1 {
			return fmt.Errorf("stave: delete topic %q: %d results for one topic", name, len(resp.Results))
		}
		err = asError(resp.Results[0].Error)
		if tries > 1 && CodeOf(err) == CodeUnknownTopic {
			return nil // An earlier try deleted it; its answer was lost.
		}
		return err
	})
}
