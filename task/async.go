package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxAsyncWrites bounds the record writes a store has in flight; a write
// beyond it waits for an ack.
const maxAsyncWrites = 4096

// async publishes record writes without waiting for their acks: a
// revision-checked write is a publish to the record's subject with
// Nats-Expected-Last-Subject-Sequence (0: the record must not exist), so
// many can be in flight at once where a kv.Update waits a round trip for
// each.
type async struct {
	js    jetstream.JetStream
	slots chan struct{}
	done  sync.Map // *nats.Msg -> func(rev uint64, err error)
}

// asyncWrites returns the store's async writer, made on first use.
func (s *Store) asyncWrites() (*async, error) {
	s.asyncOnce.Do(func() {
		a := &async{slots: make(chan struct{}, maxAsyncWrites)}
		a.js, s.asyncErr = jetstream.New(s.js.Conn(),
			jetstream.WithPublishAsyncAckHandler(a.onAck),
			jetstream.WithPublishAsyncErrHandler(a.onErr),
			jetstream.WithPublishAsyncMaxPending(2*maxAsyncWrites),
			jetstream.WithPublishAsyncTimeout(s.cfg.RequestTimeout),
		)
		if s.asyncErr != nil {
			s.asyncErr = fmt.Errorf("task: async jetstream context: %w", s.asyncErr)
		}
		s.async = a
	})
	return s.async, s.asyncErr
}

// publishRecord writes data as the record of id, if its revision is still
// expect (0: if there is none), without waiting: done gets the new
// revision or the error, on nats.go's ack goroutine, so it must not
// block. A conflict's error wraps [errConflict]. It blocks only while
// maxAsyncWrites writes are in flight.
func (s *Store) publishRecord(id string, data []byte, expect uint64, done func(rev uint64, err error)) error {
	a, err := s.asyncWrites()
	if err != nil {
		return err
	}
	if _, err := s.bucket(context.Background(), false); err != nil {
		return err
	}
	m := &nats.Msg{
		Subject: "$KV." + s.cfg.Bucket + "." + recordPrefix + key(id),
		Data:    data,
		Header:  nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(expect, 10)}},
	}
	a.slots <- struct{}{}
	a.done.Store(m, done)
	if _, err := a.js.PublishMsgAsync(m); err != nil {
		a.done.Delete(m)
		<-a.slots
		return fmt.Errorf("task: write %q: %w", id, err)
	}
	return nil
}

func (a *async) onAck(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	if f, ok := a.done.LoadAndDelete(m); ok {
		<-a.slots
		f.(func(uint64, error))(ack.Sequence, nil)
	}
}

func (a *async) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	if f, ok := a.done.LoadAndDelete(m); ok {
		<-a.slots
		if errors.Is(err, jetstream.ErrKeyExists) {
			// The server's wrong-last-sequence error: what a kv.Create or
			// kv.Update turns into ErrKeyExists and ErrKeyRevisionMismatch.
			err = fmt.Errorf("%w: %w", errConflict, err)
		}
		f.(func(uint64, error))(0, err)
	}
}

// errConflict is wrapped by a revision-checked write whose record changed
// (or appeared) since it was read.
var errConflict = errors.New("task: record changed meanwhile")

// TrackAsync records a stored task as [Store.Track] does, without
// waiting: the record is created by one async publish, and done (which
// must not block) is called once it is written, or with the error that
// stopped it. It blocks only while many writes are in flight.
//
// A record that exists already was written by the task's worker (it
// started the task first) or by an earlier publish of this ID: the
// Pending this write carries is then dropped, as [Store.Track] would
// drop it on top of such a record (an earlier state of an earlier
// attempt, or the same state), without a read.
func (s *Store) TrackAsync(st Stored, done func(error)) {
	info, ev := st.seed()
	ev.at = s.cfg.NowFunc().UTC()
	info.ID = st.ID
	info.Created = ev.at
	next, _ := fold(info, []event{ev}, s.cfg.HistoryLimit)
	data, err := json.Marshal(next)
	if err == nil {
		err = s.publishRecord(st.ID, data, 0, func(_ uint64, err error) {
			switch {
			case err == nil, errors.Is(err, errConflict):
				done(nil)
			default:
				s.lost.Add(1)
				done(fmt.Errorf("task: track %q: %w", st.ID, err))
			}
		})
	}
	if err != nil {
		s.lost.Add(1)
		done(fmt.Errorf("task: track %q: %w", st.ID, err))
	}
}
