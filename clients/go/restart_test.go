package stave_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

// A publish retried after its node was SIGKILLed and restarted (same port, same data) is
// written once: the same ids are answered as duplicates at the first write's offsets, and
// records published while the node was down are retried by the producer until it is back.
func TestPublishRetriedAfterServerKillIsWrittenOnce(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	server, err := startServer(shared.bin)
	if err != nil {
		t.Fatal(err)
	}
	defer server.stop()
	client, err := stave.Dial(ctx, server.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topic := newTopic(t, client, 3)
	producer := client.Producer(stave.ProducerConfig{})
	defer producer.Close()

	records := make([]stave.Record, 30)
	for i := range records {
		records[i] = stave.Record{Topic: topic, Value: []byte(fmt.Sprintf("first %d", i))}
	}
	first, err := producer.PublishBatch(ctx, records)
	if err != nil {
		t.Fatal(err)
	}
	// A group consumer that reads the first records and commits them, then lives through
	// the restart: it joins again and goes on from its commit.
	var lost []stave.TopicPartition
	consumer, err := client.Consumer(ctx, stave.ConsumerConfig{
		Group: topic + "-group", Topics: []string{topic}, FromBeginning: true,
		OnLost: func(ps []stave.TopicPartition) { lost = append(lost, ps...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close(context.Background())
	readN(t, ctx, consumer.Next, len(records))
	if err := consumer.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	server.kill()
	// While the node is down: new records, retried by the producer until it is back.
	var during []*stave.Future
	for i := range 20 {
		during = append(during, producer.PublishAsync(ctx, topic, []byte(fmt.Sprintf("during %d", i))))
	}
	if err := server.start(); err != nil {
		t.Fatal(err)
	}

	// The first records again, with their ids: the caller's retry after a lost answer.
	again := make([]stave.Record, len(records))
	for i, r := range records {
		again[i] = r
		again[i].Headers = []stave.Header{{Key: stave.IDHeader, Value: []byte(first[i].ID)}}
	}
	second, err := producer.PublishBatch(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		f, s := first[i], second[i]
		if !s.Duplicate || s.ID != f.ID || s.Partition != f.Partition || s.Offset != f.Offset {
			t.Fatalf("record %d: first %+v, retried %+v", i, f, s)
		}
	}
	wanted := map[string]bool{}
	for _, r := range first {
		wanted[r.ID] = true
	}
	for i, f := range during {
		res, err := f.Wait(ctx)
		if err != nil {
			t.Fatalf("record %d published while the node was down: %v", i, err)
		}
		wanted[res.ID] = true
	}

	// The consumer reads what was written since its commit, once.
	fresh := map[string]bool{}
	for id := range wanted {
		fresh[id] = true
	}
	for _, r := range first {
		delete(fresh, r.ID)
	}
	for _, r := range readN(t, ctx, consumer.Next, len(fresh)) {
		if !fresh[r.ID()] {
			t.Fatalf("the consumer read %s at %d@%d again after the restart", r.ID(), r.Partition, r.Offset)
		}
		delete(fresh, r.ID())
	}
	if len(lost) != 3 {
		t.Fatalf("the consumer was told of %d lost partitions", len(lost))
	}

	reader, err := client.PartitionReader(ctx, topic, nil, stave.Earliest)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(context.Background())
	seen := map[string]bool{}
	for _, r := range readN(t, ctx, reader.Next, len(wanted)) {
		if !wanted[r.ID()] || seen[r.ID()] {
			t.Fatalf("unexpected or repeated record %s at %d@%d", r.ID(), r.Partition, r.Offset)
		}
		seen[r.ID()] = true
	}
	expectNothing(t, reader.Next, 300*time.Millisecond)
}
