package stave_test

import (
	"errors"
	"testing"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

func TestBadInputFailsWithTheServersCode(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	topic := newTopic(t, sharedClient, 2)
	producer := sharedClient.Producer(stave.ProducerConfig{})
	defer producer.Close()

	cases := []struct {
		name   string
		record stave.Record
		code   stave.ErrorCode
	}{
		{"empty topic name", stave.Record{Topic: "", Value: []byte("v")}, stave.CodeInvalidTopicName},
		{"unknown topic", stave.Record{Topic: topic + "-missing", Value: []byte("v")}, stave.CodeUnknownTopic},
		{"empty header key", stave.Record{Topic: topic, Value: []byte("v"), Headers: []stave.Header{{Key: "", Value: []byte("x")}}}, stave.CodeInvalidRequest},
		{"empty id", stave.Record{Topic: topic, Value: []byte("v"), Headers: []stave.Header{{Key: "id", Value: nil}}}, stave.CodeInvalidRequest},
		{"partition out of range", stave.Record{Topic: topic, Value: []byte("v"), Partition: 2, ExplicitPartition: true}, stave.CodeUnknownPartition},
		{"internal topic", stave.Record{Topic: "__offsets", Value: []byte("v")}, stave.CodeInvalidRequest},
	}
	// In parallel: UNKNOWN_TOPIC is retried for 2 s before it is returned.
	t.Run("publish", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				res, err := producer.PublishRecordAsync(ctx, &c.record).Wait(ctx)
				if err == nil {
					t.Fatalf("published at %d@%d", res.Partition, res.Offset)
				}
				if code := codeOf(t, err); code != c.code {
					t.Fatalf("code %s, want %s (%v)", code, c.code, err)
				}
				if stave.IsRetriable(err) {
					t.Fatalf("%v is said to be retriable", err)
				}
				// The batch form: the failed record has its Err, the others are written.
				good := stave.Record{Topic: topic, Value: []byte("good")}
				results, err := producer.PublishBatch(ctx, []stave.Record{good, c.record, good})
				if err == nil || stave.CodeOf(err) != c.code {
					t.Fatalf("batch: %v", err)
				}
				if results[0].Err != nil || results[2].Err != nil || stave.CodeOf(results[1].Err) != c.code {
					t.Fatalf("batch results %+v", results)
				}
			})
		}
	})

	t.Run("reader of an unknown topic", func(t *testing.T) {
		reader, err := sharedClient.PartitionReader(ctx, topic+"-missing", nil, stave.Earliest)
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close(ctx)
		_, err = reader.Next(ctx)
		if code := codeOf(t, err); code != stave.CodeUnknownTopic {
			t.Fatalf("code %s (%v)", code, err)
		}
	})
	t.Run("reader of a partition out of range", func(t *testing.T) {
		reader, err := sharedClient.PartitionReader(ctx, topic, []uint32{5}, stave.Earliest)
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close(ctx)
		_, err = reader.Next(ctx)
		if code := codeOf(t, err); code != stave.CodeUnknownPartition {
			t.Fatalf("code %s (%v)", code, err)
		}
	})
	t.Run("admin", func(t *testing.T) {
		err := sharedClient.CreateTopic(ctx, topic, stave.TopicConfig{})
		if code := codeOf(t, err); code != stave.CodeTopicExists {
			t.Fatalf("create an existing topic: %s (%v)", code, err)
		}
		err = sharedClient.CreateTopic(ctx, "", stave.TopicConfig{})
		if code := codeOf(t, err); code != stave.CodeInvalidTopicName {
			t.Fatalf("create a topic without a name: %s (%v)", code, err)
		}
		err = sharedClient.CreateTopic(ctx, "__mine", stave.TopicConfig{})
		if code := codeOf(t, err); code != stave.CodeReservedTopicName {
			t.Fatalf("create a topic with a reserved name: %s (%v)", code, err)
		}
		_, err = sharedClient.DescribeTopic(ctx, topic+"-missing")
		if code := codeOf(t, err); code != stave.CodeUnknownTopic {
			t.Fatalf("describe an unknown topic: %s (%v)", code, err)
		}
		err = sharedClient.DeleteTopic(ctx, topic+"-missing")
		if code := codeOf(t, err); code != stave.CodeUnknownTopic {
			t.Fatalf("delete an unknown topic: %s (%v)", code, err)
		}
	})
	t.Run("a consumer without a group", func(t *testing.T) {
		if _, err := sharedClient.Consumer(ctx, stave.ConsumerConfig{Topics: []string{topic}}); err == nil {
			t.Fatal("a consumer without a group was made")
		}
	})
	t.Run("a producer after Close", func(t *testing.T) {
		p := sharedClient.Producer(stave.ProducerConfig{})
		p.Close()
		if _, err := p.Publish(ctx, topic, []byte("v")); !errors.Is(err, stave.ErrClosed) {
			t.Fatalf("publish after close: %v", err)
		}
	})
}

func TestAdmin(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	topic := newTopic(t, sharedClient, 5)
	desc, err := sharedClient.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Name != topic || len(desc.Partitions) != 5 {
		t.Fatalf("described %+v", desc)
	}
	for i, p := range desc.Partitions {
		if p.Partition != uint32(i) || p.Leader < 0 || len(p.Replicas) != 1 {
			t.Fatalf("partition %+v", p)
		}
	}
	if desc.Configs["flush"] == "" {
		t.Fatalf("configs %v", desc.Configs)
	}

	other := topic + "-cfg"
	err = sharedClient.CreateTopic(ctx, other, stave.TopicConfig{Partitions: 1, Configs: map[string]string{"flush": "never"}})
	if err != nil {
		t.Fatal(err)
	}
	if desc, err := sharedClient.DescribeTopic(ctx, other); err != nil || desc.Configs["flush"] != "never" {
		t.Fatalf("described %+v, %v", desc, err)
	}
	names, err := sharedClient.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, name := range names {
		if name == topic || name == other {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("listed %v", names)
	}
	if err := sharedClient.DeleteTopic(ctx, other); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the deleted topic to be gone", func() bool {
		_, err := sharedClient.DescribeTopic(ctx, other)
		return stave.CodeOf(err) == stave.CodeUnknownTopic
	})
}
