// Package check turns a reliability scenario's history (executions, kills,
// acknowledged IDs) into its figures: lost, duplicated and unexplained
// executions. It is internal to the reliability suite.
package check

import (
	"cmp"
	"slices"
	"time"
)

// Execution is one webhook request a worker made for a task, as the test's
// HTTP receiver saw it.
type Execution struct {
	ID        string    // Jetworker-Task-Id
	Delivered int       // Jetworker-Delivered, 1 on the first attempt
	Seq       uint64    // Jetworker-Sequence: the stored message it came from
	Worker    string    // which worker process (incarnation) sent it
	Start     time.Time // request received
	End       time.Time // response written or request aborted
	Status    int       // HTTP status answered; 0 when the request was aborted
}

// OK reports whether the receiver answered the execution with a 2xx.
func (e Execution) OK() bool { return e.Status >= 200 && e.Status < 300 }

// Kill is a fault injected into one worker process: SIGKILL, or SIGTERM
// whose grace expired.
type Kill struct {
	Worker string
	At     time.Time
}

// History is what a scenario recorded.
type History struct {
	Attempted  []string // task IDs the publisher tried to publish
	Acked      []string // task IDs with a PubAck (on any attempt)
	Executions []Execution
	Kills      []Kill
	// AckWait is the consumer's ack wait: a later execution that starts
	// this long after an earlier one is explained by an expired ack wait.
	AckWait time.Duration
}

// Report is what [Check] found.
type Report struct {
	Attempted, Acked, Completed int
	// Lost are acknowledged IDs that never completed (no 2xx answer).
	Lost []string
	// Unexpected are completed IDs that were never attempted.
	Unexpected []string
	// Duplicates counts executions after an earlier one of the same ID
	// that was answered 2xx or aborted (not retries of an answered failure).
	Duplicates int
	// Explained of them had a kill of the earlier execution's worker, or an
	// expired ack wait, between the two starts. Unexplained lists the IDs of
	// the rest.
	Explained   int
	Unexplained []string
	// StoredTwice are IDs that arrived from more than one stream sequence:
	// the server stored the same task ID twice.
	StoredTwice []string
	// ResumeMax is the longest time from a kill to the next execution of a
	// task whose latest execution before the kill was on the killed worker.
	ResumeMax time.Duration
	Resumed   int
}

// Check computes lost, duplicate and resume figures from h. It does not
// modify h.
func Check(h History) Report {
	r := Report{Attempted: len(uniq(h.Attempted)), Acked: len(uniq(h.Acked))}
	byID := map[string][]Execution{}
	for _, e := range h.Executions {
		byID[e.ID] = append(byID[e.ID], e)
	}
	attempted := set(h.Attempted)
	for id, es := range byID {
		slices.SortFunc(es, func(a, b Execution) int { return a.Start.Compare(b.Start) })
		seqs := map[uint64]bool{}
		completed := false
		for i, e := range es {
			seqs[e.Seq] = true
			completed = completed || e.OK()
			if i == 0 {
				continue
			}
			prev := es[i-1]
			if prev.Status != 0 && !prev.OK() {
				continue // a retry after an answered failure, not a duplicate
			}
			r.Duplicates++
			if explained(prev, e, h.Kills, h.AckWait) {
				r.Explained++
			} else {
				r.Unexplained = append(r.Unexplained, id)
			}
		}
		if completed {
			r.Completed++
			if !attempted[id] {
				r.Unexpected = append(r.Unexpected, id)
			}
		}
		if len(seqs) > 1 {
			r.StoredTwice = append(r.StoredTwice, id)
		}
	}
	for _, id := range uniq(h.Acked) {
		if !slices.ContainsFunc(byID[id], Execution.OK) {
			r.Lost = append(r.Lost, id)
		}
	}
	for _, k := range h.Kills {
		for _, es := range byID {
			var last, next *Execution
			for i := range es {
				switch {
				case !es[i].Start.After(k.At):
					last = &es[i]
				case next == nil:
					next = &es[i]
				}
			}
			if last == nil || next == nil || last.Worker != k.Worker {
				continue
			}
			r.Resumed++
			r.ResumeMax = max(r.ResumeMax, next.Start.Sub(k.At))
		}
	}
	slices.Sort(r.Lost)
	slices.Sort(r.Unexpected)
	slices.Sort(r.Unexplained)
	slices.Sort(r.StoredTwice)
	return r
}

func explained(prev, e Execution, kills []Kill, ackWait time.Duration) bool {
	for _, k := range kills {
		if k.Worker == prev.Worker && !k.At.Before(prev.Start) && !k.At.After(e.Start) {
			return true
		}
	}
	return ackWait > 0 && e.Start.Sub(prev.Start) >= ackWait
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func uniq(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}

// SlotCounts counts stored messages per Nats-Msg-Id and reports the IDs
// stored more than once.
func SlotCounts(msgIDs []string) (counts map[string]int, twice []string) {
	counts = map[string]int{}
	for _, id := range msgIDs {
		counts[id]++
	}
	for id, n := range counts {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	slices.SortFunc(twice, cmp.Compare)
	return counts, twice
}
