package stave_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

// member is a group consumer whose Next runs on its own goroutine, with its callbacks'
// calls recorded.
type member struct {
	consumer *stave.Consumer
	records  chan *stave.Record
	mu       sync.Mutex
	assigned []stave.TopicPartition
	revoked  []stave.TopicPartition
}

func join(t *testing.T, ctx context.Context, group, topic string) *member {
	t.Helper()
	m := &member{records: make(chan *stave.Record, 1000)}
	consumer, err := sharedClient.Consumer(ctx, stave.ConsumerConfig{
		Group: group, Topics: []string{topic}, FromBeginning: true,
		OnAssign: func(ps []stave.TopicPartition) {
			m.mu.Lock()
			m.assigned = append(m.assigned, ps...)
			m.mu.Unlock()
		},
		OnRevoke: func(ps []stave.TopicPartition) {
			m.mu.Lock()
			m.revoked = append(m.revoked, ps...)
			m.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("join %s: %v", group, err)
	}
	m.consumer = consumer
	go func() {
		defer close(m.records)
		for {
			r, err := consumer.Next(ctx)
			if err != nil {
				return
			}
			m.records <- r
		}
	}()
	return m
}

func (m *member) callbacks() (assigned, revoked int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.assigned), len(m.revoked)
}

// publishKeyed publishes n records with distinct keys (spread over the partitions) and
// returns their ids.
func publishKeyed(t *testing.T, ctx context.Context, topic, prefix string, n int) map[string]bool {
	t.Helper()
	producer := sharedClient.Producer(stave.ProducerConfig{})
	defer producer.Close()
	records := make([]stave.Record, n)
	for i := range records {
		records[i] = stave.Record{Topic: topic, Key: []byte(fmt.Sprintf("%s-%d", prefix, i)), Value: []byte("v")}
	}
	results, err := producer.PublishBatch(ctx, records)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range results {
		ids[r.ID] = true
	}
	return ids
}

// collect reads from the members until every wanted id arrived, failing on a repeat or an
// unexpected record, then checks nothing more comes within a short wait.
func collect(t *testing.T, ctx context.Context, wanted map[string]bool, members ...*member) map[*member]int {
	t.Helper()
	counts := map[*member]int{}
	seen := map[string]bool{}
	for len(seen) < len(wanted) {
		for _, m := range members {
			select {
			case r, ok := <-m.records:
				if !ok {
					t.Fatalf("a member stopped reading")
				}
				if !wanted[r.ID()] || seen[r.ID()] {
					t.Fatalf("unexpected or repeated record %s at %d@%d", r.ID(), r.Partition, r.Offset)
				}
				seen[r.ID()] = true
				counts[m]++
			case <-ctx.Done():
				t.Fatalf("%d of %d records read when the test timed out", len(seen), len(wanted))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	quiet := time.After(300 * time.Millisecond)
	for {
		for _, m := range members {
			select {
			case r, ok := <-m.records:
				if ok {
					t.Fatalf("record %s at %d@%d read after all were", r.ID(), r.Partition, r.Offset)
				}
			case <-quiet:
				return counts
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

func TestGroupSplitsPartitionsAndHandsThemOverOnClose(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	topic := newTopic(t, sharedClient, 4)
	group := topic + "-group"

	a := join(t, ctx, group, topic)
	waitFor(t, 15*time.Second, "the first member to hold all 4 partitions", func() bool {
		return len(a.consumer.Assignment()) == 4
	})
	b := join(t, ctx, group, topic)
	defer b.consumer.Close(ctx)
	waitFor(t, 15*time.Second, "the two members to split the partitions", func() bool {
		pa, pb := a.consumer.Assignment(), b.consumer.Assignment()
		if len(pa) == 0 || len(pb) == 0 || len(pa)+len(pb) != 4 {
			return false
		}
		held := map[uint32]bool{}
		for _, p := range append(pa, pb...) {
			held[p.Partition] = true
		}
		return len(held) == 4
	})

	counts := collect(t, ctx, publishKeyed(t, ctx, topic, "first", 80), a, b)
	if counts[a] == 0 || counts[b] == 0 {
		t.Fatalf("records read by the members: %d and %d", counts[a], counts[b])
	}
	if assigned, revoked := a.callbacks(); assigned != 4 || revoked == 0 {
		t.Fatalf("the first member's callbacks: %d assigned, %d revoked", assigned, revoked)
	}

	if err := a.consumer.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitFor(t, 15*time.Second, "the remaining member to hold all 4 partitions", func() bool {
		return len(b.consumer.Assignment()) == 4
	})
	// The closed member committed what it read: nothing of the first round comes again.
	counts = collect(t, ctx, publishKeyed(t, ctx, topic, "second", 40), b)
	if counts[b] != 40 {
		t.Fatalf("the remaining member read %d records", counts[b])
	}
	if assigned, _ := b.callbacks(); assigned != 4 {
		t.Fatalf("the remaining member was assigned %d partitions in all", assigned)
	}
}

func TestConsumerRestartedResumesAtItsCommit(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	topic := newTopic(t, sharedClient, 1)
	group := topic + "-group"
	publishKeyed(t, ctx, topic, "r", 10)
	config := stave.ConsumerConfig{Group: group, Topics: []string{topic}, FromBeginning: true}

	first, err := sharedClient.Consumer(ctx, config)
	if err != nil {
		t.Fatal(err)
	}
	readN(t, ctx, first.Next, 3)
	if err := first.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// All 10 records were pushed to the client, but Close commits only what Next returned.
	readN(t, ctx, first.Next, 2)
	if pos := first.Position(); len(pos) != 1 || pos[0].Offset != 5 {
		t.Fatalf("position %v", pos)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := first.Next(ctx); err != stave.ErrClosed {
		t.Fatalf("Next after Close: %v", err)
	}

	second, err := sharedClient.Consumer(ctx, config)
	if err != nil {
		t.Fatal(err)
	}
	got := readN(t, ctx, second.Next, 5)
	for i, r := range got {
		if r.Offset != uint64(5+i) {
			t.Fatalf("the restarted consumer's record %d is offset %d", i, r.Offset)
		}
	}
	expectNothing(t, second.Next, 200*time.Millisecond)
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Everything is committed now: a third start reads nothing old.
	third, err := sharedClient.Consumer(ctx, config)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close(ctx)
	expectNothing(t, third.Next, 300*time.Millisecond)
}
