package stave

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// ConsumerConfig says which group a Consumer joins and what it reads.
type ConsumerConfig struct {
	// Group is the consumer group: its members share the partitions of Topics. Required.
	Group string
	// Topics are topic names or patterns of dot-separated words (`v1.user.*`: one word;
	// `v1.#`: any number); topics created later that match are read too. Required.
	Topics []string
	// FromBeginning starts partitions the group never committed at their first record
	// (default: at the end, only records written from now on).
	FromBeginning bool
	// AutoCommit commits the positions of the records Next returned every
	// AutoCommitInterval (and Close commits them in any case).
	AutoCommit bool
	// AutoCommitInterval defaults to 5 s.
	AutoCommitInterval time.Duration
	// OnAssign is called, inside Next, with the partitions the group gives this consumer
	// and the offsets it reads them from.
	OnAssign func([]TopicPartition)
	// OnRevoke is called, inside Next, with the partitions taken away (after the last of
	// their records Next returned); also with lost ones when OnLost is nil.
	OnRevoke func([]TopicPartition)
	// OnLost is called, inside Next, with partitions taken away without a chance to commit
	// (the membership expired, or the connection failed and the consumer joined again).
	OnLost func([]TopicPartition)
	// CreditRecords is how many records the node may push ahead of Next (default 1,000).
	CreditRecords int
	// CreditBytes is how many bytes of records the node may push ahead of Next (default
	// 16 MiB; a record counts its topic, key, value, headers and 32 bytes).
	CreditBytes int
}

// Consumer reads records through a consumer group. The node it talks to is the group's
// member on its behalf for as long as the consumer is open. A connection failure makes it
// join again (its partitions are reported lost, then assigned again). Next may be called
// from one goroutine at a time; Commit, Assignment, Position and Close from any.
type Consumer struct {
	session    *session
	stopCommit chan struct{}
	committer  sync.WaitGroup
	closeOnce  sync.Once
}

// Consumer joins config.Group and starts reading. ctx bounds only the opening of the
// stream; the consumer lives until Close.
func (c *Client) Consumer(ctx context.Context, config ConsumerConfig) (*Consumer, error) {
	if config.Group == "" {
		return nil, errors.New("stave: a consumer needs a group (read without one with PartitionReader)")
	}
	if len(config.Topics) == 0 {
		return nil, errors.New("stave: a consumer needs at least one topic or pattern")
	}
	subscribe := &pb.Subscribe{Topics: config.Topics, Group: config.Group}
	if config.FromBeginning {
		subscribe.Start = &pb.Subscribe_Earliest{Earliest: true}
	} else {
		subscribe.Start = &pb.Subscribe_Latest{Latest: true}
	}
	records, bytes := creditDefaults(config.CreditRecords, config.CreditBytes)
	hooks := assignmentHooks{onAssign: config.OnAssign, onRevoke: config.OnRevoke, onLost: config.OnLost}
	s := newSession(c, subscribe, records, bytes, true, hooks)
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	consumer := &Consumer{session: s, stopCommit: make(chan struct{})}
	if config.AutoCommit {
		interval := config.AutoCommitInterval
		if interval <= 0 {
			interval = 5 * time.Second
		}
		consumer.committer.Add(1)
		go consumer.autoCommit(interval)
	}
	return consumer, nil
}

func creditDefaults(records, bytes int) (int, int) {
	if records <= 0 {
		records = 1_000
	}
	if bytes <= 0 {
		bytes = 16 << 20
	}
	return records, bytes
}

// Next returns the next record, waiting for one until ctx ends. Assignment callbacks run
// inside it, in order with the records. After the consumer fails or is closed, Next
// returns the error (ErrClosed after Close) once the records already received are taken.
func (c *Consumer) Next(ctx context.Context) (*Record, error) {
	return c.session.next(ctx)
}

// Commit commits, for the partitions this consumer holds, the positions of the records Next
// returned (the offset after each partition's last one), and waits for the answer.
func (c *Consumer) Commit(ctx context.Context) error {
	return c.session.commit(ctx)
}

// Assignment returns the partitions the group gives this consumer now (as the node last
// told it; Next's callbacks may not have run for the latest change yet).
func (c *Consumer) Assignment() []TopicPartition {
	return c.session.assignment()
}

// Position returns, per partition read, the offset after the last record Next returned.
func (c *Consumer) Position() []TopicPartition {
	return c.session.position()
}

// Close commits (as Commit does), then leaves the group: its partitions go to the other
// members at once. It returns the commit's error, if any.
func (c *Consumer) Close(ctx context.Context) error {
	var commitErr error
	c.closeOnce.Do(func() {
		close(c.stopCommit)
		c.committer.Wait()
		c.session.mu.Lock()
		failed := c.session.failure != nil || c.session.closed
		c.session.mu.Unlock()
		if !failed {
			commitErr = c.session.commit(ctx)
		}
		if err := c.session.close(ctx); commitErr == nil {
			commitErr = err
		}
	})
	return commitErr
}

func (c *Consumer) autoCommit(interval time.Duration) {
	defer c.committer.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.stopCommit:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		// A failed commit is made good by the next one (or Close's).
		_ = c.session.commit(ctx)
		cancel()
	}
}
