// Command kafka-bench is the Kafka side of scripts/compare/clients.sh for Go: with franz-go
// (github.com/twmb/franz-go), the most used pure-Go Kafka client, it publishes -records
// records of -size bytes from one process to an existing topic, then reads them back
// through a new consumer group from the beginning, and prints records/s for each phase,
// timed the way clients/go/cmd/bench times the Stave client:
//
//   - publish: from the first Produce call until every record is acknowledged (Flush
//     returned and every promise ran without error); with -warmup-topic the client first
//     publishes one record there, untimed, so that getting its idempotent producer id (slow on
//     a broker that has just started) is not in the figure;
//   - consume: from the first record returned until the -records'th (the group join before
//     the first record is left out, as in Stave's bench; the time from joining is printed too).
//
// The consumer uses franz-go's defaults (the classic group protocol, cooperative-sticky
// balancer, fetches of up to 50 MB), starting at the beginning of each partition.
//
// Producer settings (the rest are franz-go's defaults: acks=all, idempotent writes, the
// uniform-bytes sticky partitioner for records without keys, at most one produce request in
// flight per broker): -linger (5 ms), -batch-bytes (1,000,000, about franz-go's and Kafka's
// default max.message.bytes; the Stave clients batch up to 1 MiB a request), no compression
// (franz-go would use snappy; Stave does not compress), -max-buffered (100,000 records, the
// Stave Go client's MaxBufferedRecords; franz-go's own default is 50,000).
//
// Each phase prints one line "RESULT {json}" for the script, after a line for people.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	bootstrap   string
	topic       string
	records     int
	size        int
	mode        string
	group       string
	linger      time.Duration
	batchBytes  int
	maxBuffered int
	concurrency int
	timeout     time.Duration
	warmupTopic string
}

func main() {
	var o options
	flag.StringVar(&o.bootstrap, "bootstrap", "127.0.0.1:9092", "Kafka brokers: HOST:PORT[,HOST:PORT...]")
	flag.StringVar(&o.topic, "topic", "clients-go", "topic (must exist)")
	flag.IntVar(&o.records, "records", 1_000_000, "records to publish and read")
	flag.IntVar(&o.size, "size", 100, "value bytes per record")
	flag.StringVar(&o.mode, "mode", "both", "produce, consume or both")
	flag.StringVar(&o.group, "group", "", "consumer group (default: bench-<time>)")
	flag.DurationVar(&o.linger, "linger", 5*time.Millisecond, "ProducerLinger")
	flag.IntVar(&o.batchBytes, "batch-bytes", 1_000_000, "ProducerBatchMaxBytes")
	flag.IntVar(&o.maxBuffered, "max-buffered", 100_000, "MaxBufferedRecords")
	flag.IntVar(&o.concurrency, "concurrency", 1, "goroutines calling Produce")
	flag.StringVar(&o.warmupTopic, "warmup-topic", "", "an existing topic to publish one record to before the clock starts (the producer id is fetched then)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "longest a phase may take")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "kafka-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.mode == "produce" || o.mode == "both" {
		if err := produce(o); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	if o.mode == "consume" || o.mode == "both" {
		if err := consume(o); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
	}
	return nil
}

func result(fields map[string]any) {
	b, _ := json.Marshal(fields)
	fmt.Printf("RESULT %s\n", b)
}

func produce(o options) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(o.bootstrap),
		kgo.DefaultProduceTopic(o.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(o.linger),
		kgo.ProducerBatchMaxBytes(int32(o.batchBytes)),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(o.maxBuffered),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	// Connect and load the topic's metadata before the clock starts (the Stave benches dial
	// and create their topic before theirs).
	if err := cl.Ping(ctx); err != nil {
		return err
	}
	if o.warmupTopic != "" {
		// One record to another topic first, so that the idempotent producer has its producer
		// id before the clock starts: on a broker that has just started, InitProducerId is
		// answered COORDINATOR_LOAD_IN_PROGRESS for a while, and the client retries it.
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: o.warmupTopic, Value: []byte("warmup")}).FirstErr(); err != nil {
			return fmt.Errorf("the warm-up record to %s: %w", o.warmupTopic, err)
		}
	}
	value := make([]byte, o.size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var next, acked, failed atomic.Int64
	var firstErr atomic.Value
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(o.records) {
				cl.Produce(ctx, &kgo.Record{Value: value}, promise)
			}
		}()
	}
	wg.Wait()
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d records failed, the first: %w", failed.Load(), err)
	}
	if acked.Load() != int64(o.records) {
		return fmt.Errorf("only %d of %d records acknowledged", acked.Load(), o.records)
	}
	rate := float64(o.records) / elapsed.Seconds()
	fmt.Printf("publish: %d records of %d B in %.2f s: %.0f records/s, %.1f MB/s (franz-go Produce, %d goroutine(s))\n",
		o.records, o.size, elapsed.Seconds(), rate, float64(o.records*o.size)/elapsed.Seconds()/1e6, o.concurrency)
	result(map[string]any{
		"phase": "publish", "records": o.records, "bytes": o.records * o.size,
		"seconds": elapsed.Seconds(), "records_per_s": rate,
	})
	return nil
}

func consume(o options) error {
	group := o.group
	if group == "" {
		group = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	joined := time.Now()
	target := int64(o.records)
	var got, nbytes int64
	var firstAt time.Time
	// The first record alone, then the clock starts (as Stave's benches: from the first record).
	for got == 0 {
		fetches := cl.PollRecords(ctx, 1)
		if err := fetchErr(fetches); err != nil {
			return err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got++
			nbytes += int64(len(r.Value))
		})
		if got > 0 {
			firstAt = time.Now()
		}
	}
	for got < target {
		fetches := cl.PollFetches(ctx)
		if err := fetchErr(fetches); err != nil {
			return fmt.Errorf("after %d of %d records: %w", got, target, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got++
			nbytes += int64(len(r.Value))
		})
	}
	end := time.Now()
	steady := end.Sub(firstAt).Seconds()
	total := end.Sub(joined).Seconds()
	fmt.Printf("consume: %d records through a group in %.2f s from the first record: %.0f records/s (%.2f s and %.0f records/s from joining)\n",
		got, steady, float64(got)/steady, total, float64(got)/total)
	result(map[string]any{
		"phase": "consume", "records": got, "bytes": nbytes,
		"seconds": steady, "records_per_s": float64(got) / steady,
		"seconds_from_join": total, "records_per_s_from_join": float64(got) / total,
	})
	if got != target {
		return fmt.Errorf("read %d records, %d were published", got, target)
	}
	return nil
}

func fetchErr(f kgo.Fetches) error {
	if f.IsClientClosed() {
		return errors.New("client closed")
	}
	if errs := f.Errors(); len(errs) > 0 {
		e := errs[0]
		if errors.Is(e.Err, context.DeadlineExceeded) {
			return fmt.Errorf("timed out: %w", e.Err)
		}
		return fmt.Errorf("%s/%d: %w", e.Topic, e.Partition, e.Err)
	}
	return nil
}
