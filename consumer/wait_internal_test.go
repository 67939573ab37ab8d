package consumer

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
)

func TestWaitHistogram(t *testing.T) {
	t.Parallel()
	enq := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first := func(h nats.Header) *jetworker.Task {
		return &jetworker.Task{Delivered: 1, Published: enq, Header: h}
	}
	ms := time.Millisecond
	tests := []struct {
		name   string
		task   *jetworker.Task
		waited time.Duration
		bucket int // -1: not counted
	}{
		{name: "no wait", task: first(nil), waited: 0, bucket: 0},
		{name: "on the first bound", task: first(nil), waited: ms, bucket: 0},
		{name: "just above the first bound", task: first(nil), waited: ms + time.Microsecond, bucket: 1},
		{name: "on a middle bound (1s)", task: first(nil), waited: time.Second, bucket: 9},
		{name: "between 1s and 2.5s", task: first(nil), waited: 2 * time.Second, bucket: 10},
		{name: "on the last bound (5m)", task: first(nil), waited: 5 * time.Minute, bucket: 15},
		{name: "above the last bound", task: first(nil), waited: time.Hour, bucket: 16},
		{name: "started before its enqueue time (clock skew)", task: first(nil), waited: -time.Second, bucket: 0},
		{name: "a delayed task counts from its due time, not when it was stored", task: &jetworker.Task{Delivered: 1, Published: enq.Add(-time.Hour),
			Header: nats.Header{jetworker.HeaderEnqueuedAt: {enq.Format(time.RFC3339Nano)}}}, waited: 3 * ms, bucket: 2},
		{name: "a retry is not counted", task: &jetworker.Task{Delivered: 2, Published: enq}, waited: ms, bucket: -1},
		{name: "a replay is not counted", task: first(nats.Header{jetworker.HeaderReplayedFrom: {"DLQ/7"}}), waited: ms, bucket: -1},
		{name: "no enqueue time is not counted", task: &jetworker.Task{Delivered: 1}, waited: ms, bucket: -1},
		{name: "a malformed enqueue time is not counted", task: first(nats.Header{jetworker.HeaderEnqueuedAt: {"yesterday"}}), waited: ms, bucket: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h waitHistogram
			h.observe(tt.task, enq.Add(tt.waited))
			got := h.counts(nil)
			if len(got) != WaitBuckets || WaitBuckets != len(WaitBounds())+1 {
				t.Fatalf("counts: got %d buckets, want WaitBuckets %d = len(WaitBounds())+1 = %d", len(got), WaitBuckets, len(WaitBounds())+1)
			}
			want := make([]uint64, WaitBuckets)
			if tt.bucket >= 0 {
				want[tt.bucket] = 1
			}
			if !slices.Equal(got, want) {
				t.Errorf("counts after one task that waited %s: got %v, want %v", tt.waited, got, want)
			}
		})
	}
}

func TestWaitHistogramAccumulates(t *testing.T) {
	t.Parallel()
	var h waitHistogram
	enq := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{0, time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 10 * time.Minute} {
		h.observe(&jetworker.Task{Delivered: 1, Published: enq}, enq.Add(d))
	}
	buf := make([]uint64, 0, WaitBuckets)
	got := h.counts(buf)
	want := []uint64{2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	if !slices.Equal(got, want) {
		t.Errorf("counts: got %v, want %v", got, want)
	}
	if &got[0] != &buf[:1][0] {
		t.Error("counts did not reuse the buffer it was given")
	}
}

func TestWaitBoundsIsACopy(t *testing.T) {
	t.Parallel()
	b := WaitBounds()
	if !slices.IsSorted(b) || b[0] != 0.001 || b[len(b)-1] != 300 {
		t.Fatalf("WaitBounds: got %v, want ascending from 0.001 to 300", b)
	}
	b[0] = 99
	if WaitBounds()[0] != 0.001 || len(WaitBounds()) != WaitBuckets-1 {
		t.Error("changing the slice WaitBounds returned changed the bounds")
	}
}
