// Package stave is the Go client of Stave, a distributed log broker: a Producer that
// publishes records (batched, with ids so that a retry is written once), a Consumer that
// reads through a consumer group, a QueueConsumer that shares records one by one with a
// queue group's other members (each acked, released or rejected), a PartitionReader that
// reads chosen partitions from an offset or a time, and topic administration.
//
// It speaks Stave's public gRPC API (proto/stave/v1/stave.proto). Any node takes any
// request, so the client needs one reachable node's address; give several to fail over.
//
//	client, err := stave.Dial(ctx, "127.0.0.1:7070")
//	if err != nil { ... }
//	defer client.Close()
//	producer := client.Producer(stave.ProducerConfig{})
//	defer producer.Close()
//	res, err := producer.Publish(ctx, "orders", []byte("hello"), stave.WithKey([]byte("k")))
package stave

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// maxMessageBytes is the server's message limit (16 MiB); the client's gRPC limits are
// raised to it (grpc-go's default receive limit is 4 MiB).
const maxMessageBytes = 16 << 20

// Client is a connection to a Stave cluster. It is safe for concurrent use; make one per
// process and share it. Producers, consumers and readers made from it share its connection.
type Client struct {
	conn    *grpc.ClientConn
	rpc     pb.StaveClient
	options options
}

// Option configures Dial.
type Option func(*options)

type options struct {
	dialTimeout    time.Duration
	requestTimeout time.Duration
	grpcOptions    []grpc.DialOption
}

// WithDialTimeout bounds how long Dial waits for a node to answer when its context has no
// deadline (default 10 s).
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) { o.dialTimeout = d }
}

// WithRequestTimeout bounds each admin call and the retries of retriable failures within it,
// when the call's context has no earlier deadline (default 30 s).
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) { o.requestTimeout = d }
}

// WithGRPCOptions adds options to the underlying grpc.NewClient call (TLS credentials, an
// interceptor, ...). They are applied after the client's own.
func WithGRPCOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.grpcOptions = append(o.grpcOptions, opts...) }
}

// Dial connects to a cluster through bootstrap: one "host:port" or several separated by
// commas, tried in turn (and again when the one in use fails). It returns once a node has
// answered, or with the last error when none did before ctx (or the dial timeout) ended.
func Dial(ctx context.Context, bootstrap string, opts ...Option) (*Client, error) {
	o := options{dialTimeout: 10 * time.Second, requestTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	var addrs []resolver.Address
	for _, addr := range strings.Split(bootstrap, ",") {
		if addr = strings.TrimSpace(addr); addr != "" {
			addrs = append(addrs, resolver.Address{Addr: addr})
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("stave: no bootstrap address given")
	}
	// The addresses come from the caller, not DNS: a manual resolver hands them all to the
	// pick_first balancer, which uses the first that connects and moves on when it fails.
	nodes := manual.NewBuilderWithScheme("stave")
	nodes.InitialState(resolver.State{Addresses: addrs})
	grpcOptions := []grpc.DialOption{
		grpc.WithResolvers(nodes),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageBytes),
			grpc.MaxCallSendMsgSize(maxMessageBytes),
		),
		// Reconnect quickly to a restarting node (grpc-go's default backoff grows to 120 s).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   time.Second,
			},
			MinConnectTimeout: 5 * time.Second,
		}),
		// A connection that died silently fails its streams within about 20 s (a consumer
		// then joins again, a producer sends again) instead of waiting for good.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 15 * time.Second, Timeout: 5 * time.Second}),
	}
	conn, err := grpc.NewClient(nodes.Scheme()+":///cluster", append(grpcOptions, o.grpcOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("stave: connect to %s: %w", bootstrap, err)
	}
	client := &Client{conn: conn, rpc: pb.NewStaveClient(conn), options: o}
	if _, hasDeadline := ctx.Deadline(); !hasDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.dialTimeout)
		defer cancel()
	}
	if _, err := client.rpc.Metadata(ctx, &pb.MetadataRequest{}, grpc.WaitForReady(true)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("stave: no node of %s answered: %w", bootstrap, err)
	}
	return client, nil
}

// Close closes the connection. Close producers, consumers and readers first: their
// outstanding work fails once the connection is gone.
func (c *Client) Close() error {
	return c.conn.Close()
}

// retry calls fn until it succeeds, fails with a non-retriable error, or ctx (bounded by
// the request timeout) ends; then it returns fn's last error.
func (c *Client) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, hasDeadline := ctx.Deadline(); !hasDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.options.requestTimeout)
		defer cancel()
	}
	delay := backoffStart
	for {
		err := fn(ctx)
		if err == nil || !IsRetriable(err) {
			return err
		}
		if !sleep(ctx, delay) {
			return err
		}
		delay = nextBackoff(delay)
	}
}

const (
	backoffStart = 20 * time.Millisecond
	backoffMax   = time.Second
)

func nextBackoff(delay time.Duration) time.Duration {
	return min(delay*2, backoffMax)
}

// sleep waits d, or until ctx ends (then it returns false).
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
