package task

import (
	"testing"
	"time"
)

// TestApplyIsMonotonic covers the transition rules: late, repeated and
// out-of-order writes never move a record backwards.
func TestApplyIsMonotonic(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := func(s State, attempt, gen int) Info { return Info{State: s, Attempt: attempt, Generation: gen} }
	tests := []struct {
		name    string
		cur     Info
		ev      event
		want    State
		attempt int
		changed bool
	}{
		{"pending to active", rec(Pending, 0, 0), event{state: Active, attempt: 1}, Active, 1, true},
		{"scheduled to active on release", rec(Scheduled, 0, 0), event{state: Active, attempt: 1}, Active, 1, true},
		{"a late pending after active is dropped", rec(Active, 1, 0), event{state: Pending}, Active, 1, false},
		{"active to retrying", rec(Active, 1, 0), event{state: Retrying, attempt: 1}, Retrying, 1, true},
		{"retrying to the next attempt's active", rec(Retrying, 1, 0), event{state: Active, attempt: 2}, Active, 2, true},
		{"a crashed worker's attempt superseded", rec(Active, 1, 0), event{state: Active, attempt: 2}, Active, 2, true},
		{"a late write of an earlier attempt is dropped", rec(Active, 2, 0), event{state: Retrying, attempt: 1}, Active, 2, false},
		{"active to succeeded", rec(Active, 2, 0), event{state: Succeeded, attempt: 2}, Succeeded, 2, true},
		{"a late duplicate delivery never reopens a success", rec(Succeeded, 2, 0), event{state: Active, attempt: 3}, Succeeded, 2, false},
		{"a late retry never reopens a success", rec(Succeeded, 1, 0), event{state: Retrying, attempt: 1}, Succeeded, 1, false},
		{"failed is final within its generation", rec(Failed, 5, 0), event{state: Active, attempt: 6}, Failed, 5, false},
		{"a replay starts a new generation", rec(Failed, 5, 0), event{state: Active, attempt: 1, generation: 1}, Active, 1, true},
		{"an old generation's write is dropped", rec(Active, 1, 1), event{state: Failed, attempt: 5}, Active, 1, false},
		{"unknown generation means the current one", rec(Active, 1, 1), event{state: Failed, attempt: 5, generation: -1}, Failed, 5, true},
		{"cancelled is final", rec(Cancelled, 1, 0), event{state: Active, attempt: 2}, Cancelled, 1, false},
		{"the same state again changes nothing", rec(Retrying, 1, 0), event{state: Retrying, attempt: 1}, Retrying, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.ev.at = at
			got, changed := apply(tt.cur, tt.ev, 10)
			if got.State != tt.want || got.Attempt != tt.attempt || changed != tt.changed {
				t.Fatalf("got %s attempt %d changed %v, want %s attempt %d changed %v",
					got.State, got.Attempt, changed, tt.want, tt.attempt, tt.changed)
			}
			if changed && len(got.History) != len(tt.cur.History)+1 {
				t.Fatalf("history %v: want one transition added", got.History)
			}
		})
	}
}

func TestApplyProgressResultAndCancel(t *testing.T) {
	t.Parallel()
	at := time.Now()
	cur := Info{State: Active, Attempt: 1}
	next, changed := apply(cur, event{state: Active, attempt: 1, at: at, progress: &Progress{Percent: 40, Message: "half"}}, 10)
	if !changed || next.Progress == nil || next.Progress.Percent != 40 || len(next.History) != 0 {
		t.Fatalf("progress of the running attempt: got %+v changed %v, want progress 40 and no new transition", next, changed)
	}
	next, _ = apply(next, event{state: Succeeded, attempt: 1, at: at, result: []byte("done")}, 10)
	if string(next.Result) != "done" {
		t.Fatalf("result: got %q", next.Result)
	}
	if _, changed := apply(next, event{cancel: true, at: at}, 10); changed {
		t.Fatal("a cancel request on a finished task changed it")
	}
	pending, changed := apply(Info{State: Pending}, event{cancel: true, at: at}, 10)
	if !changed || !pending.CancelRequested || pending.State != Pending {
		t.Fatalf("cancel request: got %+v, want the flag set and the state kept", pending)
	}
	long := Info{}
	for i := range 30 {
		long, _ = apply(long, event{state: Active, attempt: i + 1, at: at}, 10)
	}
	if len(long.History) != 10 || long.History[9].Attempt != 30 {
		t.Fatalf("history of 30 transitions with limit 10: got %d, last attempt %d", len(long.History), long.History[len(long.History)-1].Attempt)
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"report-42":    "report-42",
		"a_b":          "a_b",
		"TASKS/17":     "_b" + "VEFTS1MvMTc",
		"with space":   "_bd2l0aCBzcGFjZQ",
		"_bsneaky":     "_bX2JzbmVha3k",
		"dots.in.id":   "_bZG90cy5pbi5pZA",
		"ünïcödé":      "_bw7xuw69jw7Zkw6k",
		"order:1:user": "_bb3JkZXI6MTp1c2Vy",
	} {
		if got := key(id); got != want {
			t.Errorf("key(%q): got %q, want %q", id, got, want)
		}
		if back, ok := unkey(want); !ok || back != id {
			t.Errorf("unkey(%q): got %q, %v; want %q", want, back, ok, id)
		}
	}
}

// TestApplyTimesNeverGoBackwards: a worker's start, stamped before the
// publisher wrote the record but applied after it, does not move Updated
// or the history back in time.
func TestApplyTimesNeverGoBackwards(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cur, _ := apply(Info{History: []Transition{}}, event{state: Pending, at: t0.Add(time.Millisecond)}, 10)
	next, changed := apply(cur, event{state: Active, attempt: 1, at: t0}, 10)
	if !changed || next.State != Active {
		t.Fatalf("got %s, changed %v", next.State, changed)
	}
	if next.Updated.Before(cur.Updated) {
		t.Fatalf("Updated went from %s back to %s", cur.Updated, next.Updated)
	}
	for i := 1; i < len(next.History); i++ {
		if next.History[i].At.Before(next.History[i-1].At) {
			t.Fatalf("history out of time order: %+v", next.History)
		}
	}
	cancelled, _ := apply(next, event{cancel: true, at: t0}, 10)
	if cancelled.Updated.Before(next.Updated) {
		t.Fatalf("a cancel request moved Updated back to %s", cancelled.Updated)
	}
}
