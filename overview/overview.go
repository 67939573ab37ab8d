// Package overview reads the state of jetworker's streams and their
// consumers from the server: messages and bytes per stream, and per
// consumer what is pending, delivered and waiting, and how old the oldest
// undelivered task is. The dashboard, the Prometheus collector and
// "jetworker status" all show what it reads.
package overview

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/streams"
)

// DefaultTimeout is the default Config.Timeout.
const DefaultTimeout = 2 * time.Second

// Config says which streams [Read] reads. The zero value reads TASKS and
// DLQ.
type Config struct {
	// TaskStreams are the task streams. Defaults to ["TASKS"].
	TaskStreams []string
	// DeadLetterStream is the dead-letter stream. Defaults to "DLQ".
	DeadLetterStream string
	// Timeout bounds the whole read. Defaults to 2s.
	Timeout time.Duration
	// NowFunc is the clock for ages. Defaults to time.Now.
	NowFunc func() time.Time
}

func (c Config) withDefaults() Config {
	if len(c.TaskStreams) == 0 {
		c.TaskStreams = []string{streams.DefaultTaskStream}
	}
	c.DeadLetterStream = cmp.Or(c.DeadLetterStream, streams.DefaultDeadLetterStream)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

// Stream is one stream's state.
type Stream struct {
	Name        string    `json:"name"`
	Subjects    []string  `json:"subjects"`
	Retention   string    `json:"retention"`
	Replicas    int       `json:"replicas"`
	DeadLetters bool      `json:"dead_letters"`
	Missing     bool      `json:"missing"`
	Messages    uint64    `json:"messages"`
	Bytes       uint64    `json:"bytes"`
	FirstSeq    uint64    `json:"first_seq"`
	LastSeq     uint64    `json:"last_seq"`
	LastTime    time.Time `json:"last_time,omitzero"`
	Consumers   int       `json:"consumers"`
}

// Consumer is one durable consumer's state.
type Consumer struct {
	Stream         string   `json:"stream"`
	Name           string   `json:"name"`
	FilterSubjects []string `json:"filter_subjects"`
	// Pending counts the messages its filter selects that were never
	// delivered.
	Pending uint64 `json:"pending"`
	// AckPending counts messages delivered and not yet acknowledged:
	// running, or buffered by a worker and waiting for a free handler.
	AckPending  int `json:"ack_pending"`
	Redelivered int `json:"redelivered"`
	// Waiting counts pull requests waiting for messages (idle workers).
	Waiting    int       `json:"waiting"`
	Delivered  uint64    `json:"delivered_seq"`
	AckFloor   uint64    `json:"ack_floor_seq"`
	LastActive time.Time `json:"last_active,omitzero"`
	// OldestPending is the age of the oldest undelivered message, 0 when
	// none is pending.
	OldestPending time.Duration `json:"oldest_pending_ns"`
}

// Overview is what [Read] found.
type Overview struct {
	Streams   []Stream   `json:"streams"`
	Consumers []Consumer `json:"consumers"`
	// Pending and AckPending total the task streams' consumers.
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
	// DeadLetters is the number of messages in the dead-letter stream.
	DeadLetters uint64 `json:"dead_letters"`
}

// Read reads the streams cfg names and the consumers of the task streams.
// A stream that does not exist is reported as Missing, not as an error. It
// fails fast, without a request, when the connection is not up.
func Read(ctx context.Context, js jetstream.JetStream, cfg Config) (Overview, error) {
	cfg = cfg.withDefaults()
	ov := Overview{Streams: []Stream{}, Consumers: []Consumer{}}
	if st := js.Conn().Status(); st != nats.CONNECTED {
		return ov, fmt.Errorf("overview: NATS connection is %s", strings.ToLower(st.String()))
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var errs []error
	names := append(slices.Clone(cfg.TaskStreams), cfg.DeadLetterStream)
	for i, name := range names {
		dead := i == len(names)-1
		sv := Stream{Name: name, DeadLetters: dead, Subjects: []string{}}
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			sv.Missing = true
			ov.Streams = append(ov.Streams, sv)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %q: %w", name, err))
			continue
		}
		info := st.CachedInfo()
		sv.Subjects = info.Config.Subjects
		sv.Retention = info.Config.Retention.String()
		sv.Replicas = info.Config.Replicas
		sv.Messages, sv.Bytes = info.State.Msgs, info.State.Bytes
		sv.FirstSeq, sv.LastSeq, sv.LastTime = info.State.FirstSeq, info.State.LastSeq, info.State.LastTime
		sv.Consumers = info.State.Consumers
		ov.Streams = append(ov.Streams, sv)
		if dead {
			ov.DeadLetters = sv.Messages
			continue
		}
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			cv := Consumer{
				Stream: name, Name: ci.Name,
				Pending: ci.NumPending, AckPending: ci.NumAckPending,
				Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting,
				Delivered: ci.Delivered.Stream, AckFloor: ci.AckFloor.Stream,
				FilterSubjects: filters(ci.Config),
			}
			if ci.Delivered.Last != nil {
				cv.LastActive = *ci.Delivered.Last
			}
			if cv.Pending > 0 {
				at, err := oldest(ctx, st, ci.Delivered.Stream+1, cv.FilterSubjects)
				if err != nil {
					errs = append(errs, fmt.Errorf("oldest pending of %q: %w", ci.Name, err))
				} else if !at.IsZero() {
					cv.OldestPending = max(cfg.NowFunc().Sub(at), 0)
				}
			}
			ov.Consumers = append(ov.Consumers, cv)
			ov.Pending += cv.Pending
			ov.AckPending += cv.AckPending
		}
		if err := lister.Err(); err != nil {
			errs = append(errs, fmt.Errorf("list consumers of %q: %w", name, err))
		}
	}
	slices.SortFunc(ov.Consumers, func(a, b Consumer) int {
		return cmp.Or(strings.Compare(a.Stream, b.Stream), strings.Compare(a.Name, b.Name))
	})
	return ov, errors.Join(errs...)
}

func filters(cc jetstream.ConsumerConfig) []string {
	f := []string{}
	if cc.FilterSubject != "" {
		f = append(f, cc.FilterSubject)
	}
	return append(f, cc.FilterSubjects...)
}

// oldest returns the time of the first message at or after seq on any of
// the filters (every subject without filters), or the zero time.
func oldest(ctx context.Context, st jetstream.Stream, seq uint64, fs []string) (time.Time, error) {
	if len(fs) == 0 {
		fs = []string{">"}
	}
	var at time.Time
	for _, f := range fs {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(f))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		if at.IsZero() || m.Time.Before(at) {
			at = m.Time
		}
	}
	return at, nil
}
