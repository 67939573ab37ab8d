package check_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jetworker/jetworker/reliability/internal/check"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	exec := func(id, worker string, delivered int, seq uint64, start, end, status int) check.Execution {
		return check.Execution{ID: id, Worker: worker, Delivered: delivered, Seq: seq, Start: at(start), End: at(end), Status: status}
	}
	h := check.History{
		Attempted: []string{"a", "b", "c", "d", "e", "f"},
		Acked:     []string{"a", "b", "c", "d", "e", "f", "a"},
		AckWait:   2 * time.Second,
		Kills:     []check.Kill{{Worker: "w1", At: at(150)}},
		Executions: []check.Execution{
			exec("a", "w1", 1, 1, 0, 100, 200), // once
			// b: in flight on w1 when it was killed, resumed on w2 at 1.15s
			exec("b", "w1", 1, 2, 100, 150, 0),
			exec("b", "w2", 2, 2, 1150, 1200, 200),
			// c: answered 200 on w1, killed before the ack: explained duplicate
			exec("c", "w1", 1, 3, 50, 120, 200),
			exec("c", "w2", 2, 3, 2000, 2100, 200),
			// d: ran twice on w2 with no kill and no expired ack wait
			exec("d", "w2", 1, 4, 0, 50, 200),
			exec("d", "w2", 2, 4, 500, 550, 200),
			// e: a 500 then a retry (not a duplicate), then stored twice: an
			// unexplained duplicate from a second sequence
			exec("e", "w2", 1, 5, 0, 10, 500),
			exec("e", "w2", 2, 5, 100, 110, 200),
			exec("e", "w2", 1, 9, 300, 310, 200),
			// f: never completed: lost
			exec("f", "w2", 1, 6, 0, 10, 500),
			// g: completed but never attempted
			exec("g", "w2", 1, 7, 0, 10, 200),
		},
	}
	r := check.Check(h)
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"attempted", r.Attempted, 6},
		{"acked", r.Acked, 6},
		{"completed", r.Completed, 6},
		{"lost", r.Lost, []string{"f"}},
		{"unexpected", r.Unexpected, []string{"g"}},
		{"duplicates", r.Duplicates, 4},
		{"explained", r.Explained, 2},
		{"unexplained", r.Unexplained, []string{"d", "e"}},
		{"stored twice", r.StoredTwice, []string{"e"}},
		{"resumed", r.Resumed, 2},
		{"resume max", r.ResumeMax, 1850 * time.Millisecond},
	} {
		if !equal(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestSlotCounts(t *testing.T) {
	t.Parallel()
	counts, twice := check.SlotCounts([]string{"s@1", "s@2", "s@2", "s@3"})
	if got, want := counts["s@2"], 2; got != want {
		t.Errorf("count s@2: got %d, want %d", got, want)
	}
	if want := []string{"s@2"}; !slices.Equal(twice, want) {
		t.Errorf("twice: got %v, want %v", twice, want)
	}
}

func equal(a, b any) bool {
	as, ok1 := a.([]string)
	bs, ok2 := b.([]string)
	if ok1 && ok2 {
		return slices.Equal(as, bs)
	}
	return a == b
}
