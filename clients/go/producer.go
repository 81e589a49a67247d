package stave

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// ErrClosed is returned by a producer, consumer or reader used after Close.
var ErrClosed = errors.New("stave: closed")

// ProducerConfig tunes a Producer; the zero value is ready to use.
type ProducerConfig struct {
	// Linger is how long a record waits for others to share its request (default 5 ms;
	// negative: none, every Publish is sent at once). PublishBatch and Flush do not wait.
	Linger time.Duration
	// BatchRecords caps the records of one request (default and maximum 10,000).
	BatchRecords int
	// BatchBytes caps the bytes of one request (default 1 MiB).
	BatchBytes int
	// MaxInFlight is how many requests may await their answer at once (default 8).
	MaxInFlight int
	// DeliveryTimeout bounds the retries of a record (default 30 s): a record still failing
	// with a retriable error then fails with its last error.
	DeliveryTimeout time.Duration
	// RequestTimeout is how long a request may wait for its answer before the connection
	// is presumed dead and its records are sent again (default 10 s).
	RequestTimeout time.Duration
	// UnknownTopicRetry is how long UNKNOWN_TOPIC is retried, for a topic just created
	// that a node does not know of yet (default 2 s; negative: not retried).
	UnknownTopicRetry time.Duration
	// MaxBufferedRecords is how many records may be published and not yet answered
	// (default 100,000); Publish blocks beyond it.
	MaxBufferedRecords int
}

func (c ProducerConfig) withDefaults() ProducerConfig {
	if c.Linger == 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.BatchRecords <= 0 || c.BatchRecords > 10_000 {
		c.BatchRecords = 10_000
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	c.BatchBytes = min(c.BatchBytes, 15<<20)
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 8
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = 30 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.UnknownTopicRetry == 0 {
		c.UnknownTopicRetry = 2 * time.Second
	}
	if c.MaxBufferedRecords <= 0 {
		c.MaxBufferedRecords = 100_000
	}
	return c
}

// Producer publishes records. Records are gathered into requests (up to Linger, BatchRecords
// and BatchBytes) and sent on one pipelined stream, so records of one producer keep their
// order within a partition unless a retry moves them. Every record gets a UUIDv7 id unless
// it has an "id" header, and a record failing with a retriable error is sent again with the
// same id, so the node writes it once. A Producer is safe for concurrent use.
type Producer struct {
	client *Client
	config ProducerConfig

	mu sync.Mutex
	// batch: records waiting for their request, and their estimated bytes.
	batch      []*item
	batchBytes int
	// lingerGen identifies the batch a linger timer was armed for.
	lingerGen   uint64
	lingerArmed bool
	// ready: requests' records, to be sent in this order.
	ready [][]*item
	// outstanding: records published and not yet answered for good.
	outstanding int
	// idle is closed while outstanding == 0.
	idle chan struct{}
	// space is closed (and replaced) when outstanding falls, for Publish calls waiting.
	space        chan struct{}
	spaceWaiters int
	closed       bool

	wake     chan struct{}
	inflight chan struct{}
	stop     chan struct{}
	done     sync.WaitGroup

	streamMu sync.Mutex
	stream   *publishStream
}

// item is one record on its way.
type item struct {
	record   *pb.PublishRecord
	id       string
	size     int
	deadline time.Time
	// unknownTopicSince: when UNKNOWN_TOPIC was first answered (zero: never).
	unknownTopicSince time.Time
	tries             int
	sink              sink
	index             int
}

// sink receives the outcome of a record.
type sink interface {
	complete(index int, result Result, err error)
}

// Producer returns a producer on the client's connection. Close it when done.
func (c *Client) Producer(config ProducerConfig) *Producer {
	config = config.withDefaults()
	idle := make(chan struct{})
	close(idle)
	p := &Producer{
		client:   c,
		config:   config,
		idle:     idle,
		space:    make(chan struct{}),
		wake:     make(chan struct{}, 1),
		inflight: make(chan struct{}, config.MaxInFlight),
		stop:     make(chan struct{}),
	}
	p.done.Add(2)
	go p.dispatch()
	go p.watch()
	return p
}

// Publish publishes one record and waits for its answer. If ctx ends first, Publish returns
// ctx's error, but the record may still be written.
func (p *Producer) Publish(ctx context.Context, topic string, value []byte, opts ...RecordOption) (*Result, error) {
	return p.PublishAsync(ctx, topic, value, opts...).Wait(ctx)
}

// PublishAsync publishes one record without waiting for its answer; the Future gets it.
// It blocks only while MaxBufferedRecords are outstanding (then ctx bounds the wait).
func (p *Producer) PublishAsync(ctx context.Context, topic string, value []byte, opts ...RecordOption) *Future {
	record := Record{Topic: topic, Value: value}
	for _, opt := range opts {
		opt(&record)
	}
	return p.PublishRecordAsync(ctx, &record)
}

// PublishRecordAsync is PublishAsync for a Record built by the caller (not modified).
func (p *Producer) PublishRecordAsync(ctx context.Context, record *Record) *Future {
	future := &Future{done: make(chan struct{})}
	items := p.newItems(unsafe.Slice(record, 1), future)
	if err := p.reserve(ctx, 1); err != nil {
		future.complete(0, Result{Topic: record.Topic, ID: items[0].id}, err)
		return future
	}
	p.add(items, false)
	return future
}

// PublishBatch publishes records together (as few requests as the batch limits allow, sent
// at once) and waits for all their answers. The results are in the records' order; a record
// that failed has its Result.Err set, and the first such error is returned. If ctx ends
// first, PublishBatch returns ctx's error, but the records may still be written.
func (p *Producer) PublishBatch(ctx context.Context, records []Record) ([]Result, error) {
	if len(records) == 0 {
		return nil, nil
	}
	batch := &batchSink{results: make([]Result, len(records)), done: make(chan struct{})}
	batch.remaining.Store(int64(len(records)))
	items := p.newItems(records, batch)
	if err := p.reserve(ctx, len(items)); err != nil {
		return nil, err
	}
	p.add(items, true)
	select {
	case <-batch.done:
		return batch.results, batch.firstErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Flush sends the records waiting for their request at once and waits until every record
// published so far is answered (or ctx ends).
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.cutLocked()
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes (waiting up to the delivery timeout) and stops the producer. Records still
// unanswered then fail with ErrClosed.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.config.DeliveryTimeout+time.Second)
	defer cancel()
	flushErr := p.Flush(ctx)
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.done.Wait()
	p.streamMu.Lock()
	if p.stream != nil {
		p.stream.abandon(ErrClosed)
	}
	p.streamMu.Unlock()
	return flushErr
}

// newItems makes the items of records, ids given, deadlines set from now.
func (p *Producer) newItems(records []Record, s sink) []*item {
	pbRecords, ids := publishRecords(records)
	deadline := time.Now().Add(p.config.DeliveryTimeout)
	items := make([]item, len(records))
	ptrs := make([]*item, len(records))
	for i, rec := range pbRecords {
		size := len(rec.Topic) + len(rec.Key) + len(rec.Value) + 24
		for _, h := range rec.Headers {
			size += len(h.Key) + len(h.Value) + 4
		}
		items[i] = item{record: rec, id: ids[i], size: size, deadline: deadline, sink: s, index: i}
		ptrs[i] = &items[i]
	}
	return ptrs
}

// reserve counts n records as outstanding, waiting while MaxBufferedRecords are (a larger
// n waits until nothing is outstanding).
func (p *Producer) reserve(ctx context.Context, n int) error {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		if p.outstanding == 0 || p.outstanding+n <= p.config.MaxBufferedRecords {
			if p.outstanding == 0 {
				p.idle = make(chan struct{})
			}
			p.outstanding += n
			p.mu.Unlock()
			return nil
		}
		space := p.space
		p.spaceWaiters++
		p.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			p.mu.Lock()
			p.spaceWaiters--
			p.mu.Unlock()
			return ctx.Err()
		}
		p.mu.Lock()
		p.spaceWaiters--
	}
}

// settled counts n records as answered for good.
func (p *Producer) settled(n int) {
	p.mu.Lock()
	p.outstanding -= n
	if p.outstanding == 0 {
		close(p.idle)
	}
	if p.spaceWaiters > 0 {
		close(p.space)
		p.space = make(chan struct{})
	}
	p.mu.Unlock()
}

// add puts records into the current batch, cutting it into requests as it fills; flush
// cuts the last one too instead of letting it linger.
func (p *Producer) add(items []*item, flush bool) {
	p.mu.Lock()
	for _, it := range items {
		full := len(p.batch) >= p.config.BatchRecords || p.batchBytes+it.size > p.config.BatchBytes
		if full && len(p.batch) > 0 {
			p.cutLocked()
		}
		p.batch = append(p.batch, it)
		p.batchBytes += it.size
	}
	if flush || p.config.Linger < 0 {
		p.cutLocked()
	} else if len(p.batch) > 0 && !p.lingerArmed {
		p.lingerArmed = true
		gen := p.lingerGen
		time.AfterFunc(p.config.Linger, func() { p.lingerExpired(gen) })
	}
	p.mu.Unlock()
}

func (p *Producer) lingerExpired(gen uint64) {
	p.mu.Lock()
	if p.lingerGen == gen {
		p.cutLocked()
	}
	p.mu.Unlock()
}

// cutLocked makes the current batch a request, ready to send.
func (p *Producer) cutLocked() {
	p.lingerGen++
	p.lingerArmed = false
	if len(p.batch) == 0 {
		return
	}
	p.ready = append(p.ready, p.batch)
	p.batch = nil
	p.batchBytes = 0
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// requeue sends records that failed again, as a request of their own.
func (p *Producer) requeue(items []*item) {
	p.mu.Lock()
	p.ready = append(p.ready, items)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// dispatch sends the ready requests in order, within the in-flight limit.
func (p *Producer) dispatch() {
	defer p.done.Done()
	for {
		p.mu.Lock()
		var items []*item
		if len(p.ready) > 0 {
			items = p.ready[0]
			p.ready[0] = nil
			p.ready = p.ready[1:]
		}
		p.mu.Unlock()
		if items == nil {
			select {
			case <-p.wake:
				continue
			case <-p.stop:
				p.abortReady()
				return
			}
		}
		select {
		case p.inflight <- struct{}{}:
		case <-p.stop:
			p.fail(items, ErrClosed)
			p.abortReady()
			return
		}
		p.send(items)
	}
}

// send sends one request on the stream, opening one if needed; a failure to open fails the
// request (retriably, for a connection problem).
func (p *Producer) send(items []*item) {
	for {
		p.streamMu.Lock()
		stream := p.stream
		if stream == nil {
			var err error
			stream, err = openPublishStream(p.client.rpc, p.answered, p.broken)
			if err != nil {
				p.streamMu.Unlock()
				<-p.inflight
				p.failedAll(items, err)
				return
			}
			p.stream = stream
		}
		p.streamMu.Unlock()
		if stream.send(items) {
			return
		}
		p.forget(stream)
	}
}

// forget drops a broken stream, so the next request opens a new one.
func (p *Producer) forget(stream *publishStream) {
	p.streamMu.Lock()
	if p.stream == stream {
		p.stream = nil
	}
	p.streamMu.Unlock()
}

// watch ends a stream whose oldest request went unanswered for RequestTimeout (a node that
// hangs, a connection dead without a word): its records are sent again.
func (p *Producer) watch() {
	defer p.done.Done()
	tick := time.NewTicker(min(p.config.RequestTimeout/4, 250*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.streamMu.Lock()
		stream := p.stream
		p.streamMu.Unlock()
		if stream == nil {
			continue
		}
		if oldest := stream.oldest(); !oldest.IsZero() && time.Since(oldest) > p.config.RequestTimeout {
			stream.abandon(status.Errorf(codes.DeadlineExceeded,
				"no answer to a publish request within %s", p.config.RequestTimeout))
		}
	}
}

// answered handles a request's answer: each record succeeded, failed, or goes again.
func (p *Producer) answered(req *publishRequest, resp *pb.PublishResponse) {
	<-p.inflight
	if len(resp.Results) != len(req.items) {
		err := status.Errorf(codes.Internal, "a publish request of %d records was answered with %d results",
			len(req.items), len(resp.Results))
		p.fail(req.items, err)
		return
	}
	var retry []*item
	settled := 0
	for i, it := range req.items {
		r := resp.Results[i]
		result := Result{Topic: it.record.Topic, Partition: r.Partition, Offset: r.Offset, Duplicate: r.Duplicate, ID: r.Id}
		if result.ID == "" {
			result.ID = it.id
		}
		err := asError(r.Error)
		if err != nil && p.mayRetry(it, err) {
			retry = append(retry, it)
			continue
		}
		if err != nil && it.tries > 0 && IsRetriable(err) {
			err = p.timedOut(it, err)
		}
		it.sink.complete(it.index, result, err)
		settled++
	}
	p.settled(settled)
	p.retryLater(retry)
}

// broken handles the requests of a stream that ended unanswered.
func (p *Producer) broken(stream *publishStream, unanswered []*publishRequest, reason error) {
	p.forget(stream)
	for _, req := range unanswered {
		<-p.inflight
		p.failedAll(req.items, reason)
	}
}

// failedAll handles records that all failed with err: retried, or failed for good.
func (p *Producer) failedAll(items []*item, err error) {
	var retry []*item
	settled := 0
	for _, it := range items {
		if p.mayRetry(it, err) {
			retry = append(retry, it)
			continue
		}
		final := err
		if IsRetriable(err) {
			final = p.timedOut(it, err)
		}
		it.sink.complete(it.index, Result{Topic: it.record.Topic, ID: it.id}, final)
		settled++
	}
	p.settled(settled)
	p.retryLater(retry)
}

// fail fails records for good with err.
func (p *Producer) fail(items []*item, err error) {
	for _, it := range items {
		it.sink.complete(it.index, Result{Topic: it.record.Topic, ID: it.id}, err)
	}
	p.settled(len(items))
}

// abortReady fails every record not sent yet (the producer is stopping).
func (p *Producer) abortReady() {
	p.mu.Lock()
	ready := p.ready
	p.ready = nil
	if len(p.batch) > 0 {
		ready = append(ready, p.batch)
		p.batch = nil
	}
	p.mu.Unlock()
	for _, items := range ready {
		p.fail(items, ErrClosed)
	}
}

// mayRetry counts a try of it that failed with err, and says whether it goes again.
func (p *Producer) mayRetry(it *item, err error) bool {
	it.tries++
	retriable := IsRetriable(err)
	if !retriable && CodeOf(err) == CodeUnknownTopic && p.config.UnknownTopicRetry > 0 {
		if it.unknownTopicSince.IsZero() {
			it.unknownTopicSince = time.Now()
		}
		retriable = time.Since(it.unknownTopicSince) < p.config.UnknownTopicRetry
	}
	if !retriable {
		return false
	}
	select {
	case <-p.stop:
		return false
	default:
	}
	return time.Now().Add(retryDelay(it.tries)).Before(it.deadline)
}

func (p *Producer) timedOut(it *item, err error) error {
	return fmt.Errorf("stave: record %s not written within the delivery timeout (%s, %d tries): %w",
		it.id, p.config.DeliveryTimeout, it.tries, err)
}

// retryLater sends records again after a pause that grows with their tries.
func (p *Producer) retryLater(items []*item) {
	if len(items) == 0 {
		return
	}
	tries := 0
	for _, it := range items {
		tries = max(tries, it.tries)
	}
	time.AfterFunc(retryDelay(tries), func() { p.requeue(items) })
}

// retryDelay is the pause before try number tries+1: 25 ms doubling to 1 s.
func retryDelay(tries int) time.Duration {
	delay := 25 * time.Millisecond
	for i := 1; i < tries && delay < time.Second; i++ {
		delay *= 2
	}
	return min(delay, time.Second)
}

// Future is the outcome of a record published with PublishAsync.
type Future struct {
	done   chan struct{}
	result Result
	err    error
}

func (f *Future) complete(_ int, result Result, err error) {
	f.result, f.err = result, err
	close(f.done)
}

// Done is closed once the record is answered for good.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait waits for the record's answer (or for ctx to end: then it returns ctx's error).
func (f *Future) Wait(ctx context.Context) (*Result, error) {
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		result := f.result
		return &result, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// batchSink collects the outcomes of a PublishBatch.
type batchSink struct {
	results   []Result
	remaining atomic.Int64
	done      chan struct{}
}

func (b *batchSink) complete(index int, result Result, err error) {
	result.Err = err
	b.results[index] = result
	if b.remaining.Add(-1) == 0 {
		close(b.done)
	}
}

func (b *batchSink) firstErr() error {
	for i, r := range b.results {
		if r.Err != nil {
			return fmt.Errorf("stave: record %d of the batch: %w", i, r.Err)
		}
	}
	return nil
}
