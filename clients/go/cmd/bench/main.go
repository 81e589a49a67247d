// Command bench measures the Go client's throughput against a running node: it publishes
// records (the batch form, ids made by the client) from one process, then reads them back
// through a consumer group, and prints records/s for each.
//
//	stave server --listen 127.0.0.1:7070 --data-dir /tmp/stave-bench &
//	go run ./cmd/bench -bootstrap 127.0.0.1:7070 -records 2000000 -size 100
//
// The topic (default: a new one per run) is created with 6 partitions, replication factor
// 1 and flush=never.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

type options struct {
	bootstrap     string
	topic         string
	partitions    int
	records       int
	size          int
	batch         int
	concurrency   int
	consumers     int
	credit        int
	mode          string
	cpuProfile    string
	linger        time.Duration
	maxInFlight   int
	batchBytes    int
	publishSingle bool
}

func main() {
	var o options
	flag.StringVar(&o.bootstrap, "bootstrap", "127.0.0.1:7070", "nodes to contact: HOST:PORT[,HOST:PORT...]")
	flag.StringVar(&o.topic, "topic", "", "topic (default: bench-<time>, created)")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions of a topic created")
	flag.IntVar(&o.records, "records", 1_000_000, "records to publish and read")
	flag.IntVar(&o.size, "size", 100, "value bytes per record")
	flag.IntVar(&o.batch, "batch", 1000, "records per PublishBatch call")
	flag.IntVar(&o.concurrency, "concurrency", 8, "goroutines calling PublishBatch at once")
	flag.BoolVar(&o.publishSingle, "single", false, "publish with PublishAsync, one record a call, from -concurrency goroutines")
	flag.IntVar(&o.consumers, "consumers", 1, "consumers in the group")
	flag.IntVar(&o.credit, "credit", 0, "CreditRecords of each consumer (0: the client's default)")
	flag.StringVar(&o.mode, "mode", "both", "produce, consume or both")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	flag.DurationVar(&o.linger, "linger", 0, "ProducerConfig.Linger (0: the default)")
	flag.IntVar(&o.maxInFlight, "max-in-flight", 0, "ProducerConfig.MaxInFlight (0: the default)")
	flag.IntVar(&o.batchBytes, "batch-bytes", 0, "ProducerConfig.BatchBytes (0: the default)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	client, err := stave.Dial(ctx, o.bootstrap)
	if err != nil {
		return err
	}
	defer client.Close()
	if o.topic == "" {
		o.topic = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	err = client.CreateTopic(ctx, o.topic, stave.TopicConfig{
		Partitions: o.partitions, ReplicationFactor: 1, Configs: map[string]string{"flush": "never"},
	})
	if err != nil && stave.CodeOf(err) != stave.CodeTopicExists {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.mode == "produce" || o.mode == "both" {
		if err := produce(ctx, client, o); err != nil {
			return err
		}
	}
	if o.mode == "consume" || o.mode == "both" {
		if err := consume(ctx, client, o); err != nil {
			return err
		}
	}
	return nil
}

func produce(ctx context.Context, client *stave.Client, o options) error {
	producer := client.Producer(stave.ProducerConfig{
		Linger: o.linger, MaxInFlight: o.maxInFlight, BatchBytes: o.batchBytes,
	})
	defer producer.Close()
	value := make([]byte, o.size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.publishSingle {
				publishSingles(ctx, producer, o, value, &next, &failed, &firstErr)
				return
			}
			records := make([]stave.Record, o.batch)
			for {
				from := next.Add(int64(o.batch)) - int64(o.batch)
				if from >= int64(o.records) {
					return
				}
				n := min(int64(o.batch), int64(o.records)-from)
				for i := range records[:n] {
					records[i] = stave.Record{Topic: o.topic, Value: value}
				}
				if _, err := producer.PublishBatch(ctx, records[:n]); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := producer.Flush(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d publish calls failed, the first: %w", failed.Load(), err)
	}
	fmt.Printf("publish: %d records of %d B in %.2f s: %.0f records/s, %.1f MB/s (%s, %d goroutines)\n",
		o.records, o.size, elapsed.Seconds(), float64(o.records)/elapsed.Seconds(),
		float64(o.records*o.size)/elapsed.Seconds()/1e6, publishForm(o), o.concurrency)
	return nil
}

func publishForm(o options) string {
	if o.publishSingle {
		return "PublishAsync"
	}
	return fmt.Sprintf("PublishBatch of %d", o.batch)
}

func publishSingles(ctx context.Context, producer *stave.Producer, o options, value []byte,
	next, failed *atomic.Int64, firstErr *atomic.Value) {
	const window = 1000
	futures := make([]*stave.Future, 0, window)
	wait := func() {
		for _, f := range futures {
			if _, err := f.Wait(ctx); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}
		futures = futures[:0]
	}
	for next.Add(1) <= int64(o.records) {
		futures = append(futures, producer.PublishAsync(ctx, o.topic, value))
		if len(futures) == window {
			wait()
		}
	}
	wait()
}

func consume(ctx context.Context, client *stave.Client, o options) error {
	group := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	var read atomic.Int64
	target := int64(o.records)
	start := time.Now()
	var firstAt atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.consumers)
	done := make(chan struct{})
	var once sync.Once
	for range o.consumers {
		consumer, err := client.Consumer(ctx, stave.ConsumerConfig{
			Group: group, Topics: []string{o.topic}, FromBeginning: true, CreditRecords: o.credit,
		})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer consumer.Close(context.Background())
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-done:
					cancel()
				case <-cctx.Done():
				}
			}()
			for {
				if _, err := consumer.Next(cctx); err != nil {
					select {
					case <-done:
					default:
						errs <- err
					}
					return
				}
				if n := read.Add(1); n == 1 {
					firstAt.Store(time.Now().UnixNano())
				} else if n == target {
					once.Do(func() { close(done) })
				}
			}
		}()
	}
	select {
	case <-done:
	case err := <-errs:
		return err
	}
	end := time.Now()
	wg.Wait()
	total := end.Sub(start)
	steady := end.Sub(time.Unix(0, firstAt.Load()))
	fmt.Printf("consume: %d records through a group of %d in %.2f s from the first record: %.0f records/s (%.2f s and %.0f records/s from joining)\n",
		target, o.consumers, steady.Seconds(), float64(target)/steady.Seconds(), total.Seconds(), float64(target)/total.Seconds())
	return nil
}
