// Command quickstart checks a Stave cluster end to end with the Go client: it creates the
// topic "quickstart" if missing, publishes 100 records with a key and a header, reads them
// back through a new consumer group from the earliest records, and prints
// "quickstart ok 100".
//
//	go run ./cmd/quickstart -bootstrap 127.0.0.1:7070
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

const (
	topic   = "quickstart"
	records = 100
)

func main() {
	bootstrap := flag.String("bootstrap", "127.0.0.1:7070", "nodes to contact: HOST:PORT[,HOST:PORT...]")
	timeout := flag.Duration("timeout", time.Minute, "how long the whole run may take")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	n, err := run(ctx, *bootstrap)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quickstart failed: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("quickstart ok %d\n", n)
}

func run(ctx context.Context, bootstrap string) (int, error) {
	client, err := stave.Dial(ctx, bootstrap)
	if err != nil {
		return 0, err
	}
	defer client.Close()

	err = client.CreateTopic(ctx, topic, stave.TopicConfig{Partitions: 3})
	if err != nil && stave.CodeOf(err) != stave.CodeTopicExists {
		return 0, fmt.Errorf("create topic %s: %w", topic, err)
	}

	// Earlier runs left records in the topic: this run's carry its own header value.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	batch := make([]stave.Record, records)
	for i := range batch {
		batch[i] = stave.Record{
			Topic:   topic,
			Key:     []byte(fmt.Sprintf("key-%d", i)),
			Value:   []byte(fmt.Sprintf("record %d", i)),
			Headers: []stave.Header{{Key: "run", Value: []byte(run)}},
		}
	}
	producer := client.Producer(stave.ProducerConfig{})
	results, err := producer.PublishBatch(ctx, batch)
	if closeErr := producer.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}

	consumer, err := client.Consumer(ctx, stave.ConsumerConfig{
		Group:         "quickstart-" + run,
		Topics:        []string{topic},
		FromBeginning: true,
	})
	if err != nil {
		return 0, fmt.Errorf("consume: %w", err)
	}
	defer consumer.Close(context.Background())
	wanted := make(map[string]int, records) // id -> index in batch
	for i, r := range results {
		wanted[r.ID] = i
	}
	for len(wanted) > 0 {
		record, err := consumer.Next(ctx)
		if err != nil {
			return 0, fmt.Errorf("consume (%d of %d records read): %w", records-len(wanted), records, err)
		}
		i, ok := wanted[record.ID()]
		if !ok {
			continue // another run's record
		}
		sent := batch[i]
		if value, _ := record.Header("run"); !bytes.Equal(record.Key, sent.Key) ||
			!bytes.Equal(record.Value, sent.Value) || !bytes.Equal(value, []byte(run)) {
			return 0, fmt.Errorf("record %s came back as key %q value %q", record.ID(), record.Key, record.Value)
		}
		delete(wanted, record.ID())
	}
	if err := consumer.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return records, nil
}
