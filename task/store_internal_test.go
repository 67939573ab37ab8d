package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
)

// TestFollowWhileTheRecordIsRewritten: Follow started while its record is
// being replaced never reports it missing. (A KV watch's initial snapshot
// can: a consumer created while the only message of its subject is
// replaced may count nothing pending and report "caught up" with no
// value, measured at about 1 in 4,500 watches; a direct get does not.
// Follow reads first and watches from the next revision.)
func TestFollowWhileTheRecordIsRewritten(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	s, err := New(js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	var follows, missing atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		id := fmt.Sprint("rewritten-", i)
		if err := s.Track(t.Context(), Stored{ID: id, Subject: "tasks.x"}); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { // replaces the record as fast as the server takes it
			kv, _ := s.bucket(ctx, false)
			data, _ := json.Marshal(Info{ID: id, Subject: "tasks.x", State: Active, Attempt: 1})
			for ctx.Err() == nil {
				if _, err := kv.Put(ctx, recordPrefix+key(id), data); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for ctx.Err() == nil {
				for _, err := range s.Follow(ctx, id) {
					if err != nil && ctx.Err() == nil {
						missing.Add(1)
						t.Errorf("Follow of a record being rewritten: %v", err)
					}
					break
				}
				follows.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d follows, %d reported the record missing", follows.Load(), missing.Load())
}

// TestReadMany: records read in one batch are those a read of each
// returns, and a missing one is not found.
func TestReadMany(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	s, err := New(js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"a", "odd id/1", "c", "missing"}
	for _, id := range ids[:3] {
		if err := s.Track(t.Context(), Stored{ID: id, Subject: "tasks." + key(id)}); err != nil {
			t.Fatal(err)
		}
	}
	got := s.readMany(t.Context(), ids)
	for _, id := range ids[:3] {
		want, rev, err := s.get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r := got[id]; r.err != nil || r.rev != rev || r.info.ID != id || r.info.Subject != want.Subject {
			t.Errorf("%s: got %+v rev %d (%v), want rev %d", id, r.info, r.rev, r.err, rev)
		}
	}
	if r := got["missing"]; !errors.Is(r.err, ErrNotFound) {
		t.Errorf("missing: got %v, want ErrNotFound", r.err)
	}
}
