// Command queues-peer is the peer side of W6 (scripts/compare/queues.sh): against NATS
// JetStream or RabbitMQ it preloads N records of B bytes into a work queue, then M members
// drain it, each handling one record at a time (sleep --work-ms, then ack), and it prints one
// JSON line with the keys of `stave bench queue --json`.
//
//	queues-peer nats   -url nats://127.0.0.1:4222 -records 100000 -members 8 -credit 64 -work-ms 0
//	queues-peer rabbit -url amqp://guest:guest@127.0.0.1:5672/ -records 100000 -members 8 -credit 64
//
// Throughput is records / (first delivery -> last ack). Which moment is "the ack" depends on
// what the system confirms: see -ack (NATS) and rabbitDrain (RabbitMQ has no ack confirmation).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

// settings are the command line, shared by both systems.
type settings struct {
	system    string
	url       string
	name      string
	records   int
	size      int
	members   int
	credit    int
	work      time.Duration
	ackMode   string
	timeout   time.Duration
	pubWindow int
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "nats" && os.Args[1] != "rabbit") {
		fmt.Fprintln(os.Stderr, "usage: queues-peer nats|rabbit [flags] (-h for the flags)")
		os.Exit(2)
	}
	s := settings{system: os.Args[1]}
	fs := flag.NewFlagSet(s.system, flag.ExitOnError)
	fs.StringVar(&s.url, "url", "", "server URL (nats://... or amqp://...)")
	fs.StringVar(&s.name, "name", "w6", "stream / queue name (NATS: also the durable consumer's)")
	fs.IntVar(&s.records, "records", 100000, "records to preload and drain")
	fs.IntVar(&s.size, "size", 100, "record payload in bytes")
	fs.IntVar(&s.members, "members", 8, "consumers draining the queue, one connection each")
	fs.IntVar(&s.credit, "credit", 64, "records a member may hold unacked (NATS: PullMaxMessages; RabbitMQ: basic.qos prefetch)")
	workMs := fs.Float64("work-ms", 0, "each member sleeps this long per record before acking it")
	fs.StringVar(&s.ackMode, "ack", "confirm", "NATS only: confirm (ack sent with a reply subject, pipelined: the server's reply is the confirmation), sync (DoubleAck: wait for the reply before the next record), plain (Ack: no confirmation)")
	fs.DurationVar(&s.timeout, "timeout", 10*time.Minute, "give up when preload + drain take longer")
	fs.IntVar(&s.pubWindow, "pub-window", 1000, "preload: publishes awaiting their confirmation at most")
	_ = fs.Parse(os.Args[2:])
	s.work = time.Duration(*workMs * float64(time.Millisecond))
	if s.url == "" || s.records < 1 || s.members < 1 || s.credit < 1 {
		fmt.Fprintln(os.Stderr, "queues-peer: -url is required; -records, -members and -credit must be at least 1")
		os.Exit(2)
	}
	if s.ackMode != "confirm" && s.ackMode != "sync" && s.ackMode != "plain" {
		fmt.Fprintln(os.Stderr, "queues-peer: -ack is confirm, sync or plain")
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	var (
		res result
		err error
	)
	switch s.system {
	case "nats":
		res, err = runNats(ctx, s)
	case "rabbit":
		res, err = runRabbit(ctx, s)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "queues-peer %s: %v\n", s.system, err)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// logf reports progress on stderr; stdout carries only the JSON line.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}
