// Command email is the choreography example's email service: a member of consumer group
// "email" that reads v1.user.signedup events and "sends" one welcome email per event.
//
// Delivery from the broker is at least once: an instance that dies between handling records
// and committing their offsets leaves them to be read again by whichever instance takes the
// partition next. The service is therefore an idempotent consumer keyed by the event id:
// every instance appends to one shared outbox file (one line per email), under an exclusive
// flock, after checking the event id is not in it yet. This is what a real service does
// with a unique key in its database; the file stands in for the database and the email
// provider.
//
// Files (all paths given by flags):
//
//	outbox     shared; one line per email sent: "<event-id> <causation-id> <instance> <unix-ms>"
//	skipped    this instance's; one line per redelivered event it did not send again
//
// Offsets are committed every -commit-interval (2 s) rather than per record, as a service
// batching its commits would, so a SIGKILL usually lands while the instance holds records
// it handled but did not commit: the redeliveries the outbox check absorbs.
//
// BREAK=dedupe in the environment skips the outbox check (every delivery sends an email),
// to show that the example's checks catch duplicate emails.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

// outbox is the shared, append-only outbox file with the set of event ids it holds.
// Instances only append whole lines under the lock, so reading from where this instance
// last stopped brings its set up to date with what the others appended.
type outbox struct {
	file    *os.File
	seen    map[string]struct{}
	readTo  int64  // bytes of the file already parsed into seen
	partial []byte // an incomplete last line (never expected: writes are whole lines)
}

func openOutbox(path string) (*outbox, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &outbox{file: f, seen: make(map[string]struct{})}, nil
}

// catchUp parses the lines appended since the last call. Called with the lock held.
func (o *outbox) catchUp() error {
	buf := make([]byte, 64<<10)
	for {
		n, err := o.file.ReadAt(buf, o.readTo)
		if n > 0 {
			o.readTo += int64(n)
			data := append(o.partial, buf[:n]...)
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				if fields := strings.Fields(string(data[:i])); len(fields) > 0 {
					o.seen[fields[0]] = struct{}{}
				}
				data = data[i+1:]
			}
			o.partial = append([]byte(nil), data...)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// send appends the email's line unless the event id is there already (or dedupe is off).
// It reports whether it sent.
func (o *outbox) send(eventID, causationID, instance string, dedupe bool) (bool, error) {
	fd := int(o.file.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return false, fmt.Errorf("flock: %w", err)
	}
	defer syscall.Flock(fd, syscall.LOCK_UN)
	if err := o.catchUp(); err != nil {
		return false, fmt.Errorf("read outbox: %w", err)
	}
	if _, ok := o.seen[eventID]; ok && dedupe {
		return false, nil
	}
	line := fmt.Sprintf("%s %s %s %d\n", eventID, causationID, instance, time.Now().UnixMilli())
	if _, err := o.file.WriteString(line); err != nil { // one write(2) on an O_APPEND file
		return false, fmt.Errorf("append to outbox: %w", err)
	}
	o.seen[eventID] = struct{}{}
	return true, nil
}

func main() {
	instance := flag.String("instance", "email-1", "this instance's name (written on its outbox lines)")
	bootstrap := flag.String("bootstrap", "127.0.0.1:7070", "nodes to contact: HOST:PORT[,HOST:PORT...]")
	group := flag.String("group", "email", "consumer group")
	topic := flag.String("topic", "v1.user.signedup", "topic (or pattern) to read")
	outboxPath := flag.String("outbox", "outbox.txt", "the outbox shared by every instance")
	skippedPath := flag.String("skipped", "", "this instance's file of skipped redeliveries (default <outbox dir>/<instance>.skipped)")
	commitInterval := flag.Duration("commit-interval", 2*time.Second, "how often offsets are committed")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix(*instance + " ")
	dedupe := os.Getenv("BREAK") != "dedupe"
	if !dedupe {
		log.Printf("BREAK=dedupe: the outbox check is OFF, redeliveries send duplicate emails")
	}
	if *skippedPath == "" {
		dir := *outboxPath
		if i := strings.LastIndexByte(dir, '/'); i >= 0 {
			dir = dir[:i]
		} else {
			dir = "."
		}
		*skippedPath = dir + "/" + *instance + ".skipped"
	}

	box, err := openOutbox(*outboxPath)
	if err != nil {
		log.Fatalf("open outbox: %v", err)
	}
	skipped, err := os.OpenFile(*skippedPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatalf("open skipped file: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	dialCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	client, err := stave.Dial(dialCtx, *bootstrap)
	cancel()
	if err != nil {
		log.Fatalf("dial %s: %v", *bootstrap, err)
	}
	defer client.Close()

	openCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	consumer, err := client.Consumer(openCtx, stave.ConsumerConfig{
		Group:         *group,
		Topics:        []string{*topic},
		FromBeginning: true,
		OnAssign:      func(tps []stave.TopicPartition) { log.Printf("assigned: %s", describe(tps)) },
		OnRevoke:      func(tps []stave.TopicPartition) { log.Printf("revoked: %s", describe(tps)) },
		OnLost:        func(tps []stave.TopicPartition) { log.Printf("lost: %s", describe(tps)) },
	})
	cancel()
	if err != nil {
		log.Fatalf("join group %s: %v", *group, err)
	}
	log.Printf("joined group %s, reading %s", *group, *topic)

	var sent, skips, sinceCommit int
	lastCommit := time.Now()
	commit := func() {
		if sinceCommit == 0 {
			lastCommit = time.Now()
			return
		}
		started := time.Now() // the commit covers every record handled before this
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := consumer.Commit(cctx)
		cancel()
		lastCommit = started
		if err != nil {
			log.Printf("commit failed (retried at the next one): %v", err)
			return
		}
		log.Printf("committed %d records at unix-ms %d (sent %d, skipped %d so far)", sinceCommit, lastCommit.UnixMilli(), sent, skips)
		sinceCommit = 0
	}

	for {
		nctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		record, err := consumer.Next(nctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break // SIGTERM or SIGINT
			}
			if errors.Is(err, context.DeadlineExceeded) {
				if time.Since(lastCommit) >= *commitInterval {
					commit()
				}
				continue
			}
			log.Fatalf("consumer failed: %v", err)
		}
		eventID := record.ID()
		causation, _ := record.Header("causation-id")
		if eventID == "" {
			log.Printf("record %s/%d@%d has no id; ignored", record.Topic, record.Partition, record.Offset)
		} else {
			ok, err := box.send(eventID, string(causation), *instance, dedupe)
			if err != nil {
				log.Fatalf("%v", err)
			}
			if ok {
				sent++
			} else {
				skips++
				line := fmt.Sprintf("%s %s %s/%d@%d %d\n", eventID, causation, record.Topic, record.Partition, record.Offset, time.Now().UnixMilli())
				if _, err := skipped.WriteString(line); err != nil {
					log.Fatalf("write skipped file: %v", err)
				}
			}
		}
		sinceCommit++
		if time.Since(lastCommit) >= *commitInterval {
			commit()
		}
	}

	log.Printf("stopping: sent %d, skipped %d redeliveries in this run", sent, skips)
	cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := consumer.Close(cctx); err != nil {
		log.Printf("close: %v", err)
	}
}

func describe(tps []stave.TopicPartition) string {
	parts := make([]string, len(tps))
	for i, tp := range tps {
		parts[i] = fmt.Sprintf("%s/%d@%d", tp.Topic, tp.Partition, tp.Offset)
	}
	return strings.Join(parts, " ")
}
