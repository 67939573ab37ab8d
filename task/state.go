package task

import (
	"slices"
	"time"
)

// State is where a tracked task is in its life.
type State string

// The states of a task. Succeeded, Failed and Cancelled are terminal.
const (
	// Scheduled: published with a delay, waiting for its release time.
	Scheduled State = "scheduled"
	// Pending: stored in its stream, waiting for a worker.
	Pending State = "pending"
	// Active: a handler is running it.
	Active State = "active"
	// Retrying: an attempt failed; it waits for its next delivery.
	Retrying State = "retrying"
	// Succeeded: a handler returned nil.
	Succeeded State = "succeeded"
	// Failed: it was dead-lettered (a permanent error or its last attempt
	// failed).
	Failed State = "failed"
	// Cancelled: it was cancelled before or while it ran.
	Cancelled State = "cancelled"
)

// States returns every state in the order of a task's life (a new slice
// each call).
func States() []State {
	return []State{Scheduled, Pending, Active, Retrying, Succeeded, Failed, Cancelled}
}

// Terminal reports whether s is a final state.
func (s State) Terminal() bool { return s == Succeeded || s == Failed || s == Cancelled }

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	return slices.Contains(States(), s)
}

// rank orders the states of one attempt.
func (s State) rank() int {
	switch s {
	case "":
		return -1 // a record being created
	case Scheduled:
		return 0
	case Pending:
		return 1
	case Active:
		return 2
	case Retrying:
		return 3
	}
	return 4 // terminal
}

// Progress is what a running task last reported of how far it is.
type Progress struct {
	// Percent is in [0, 100].
	Percent float64 `json:"percent"`
	// Message is a short text ("rendering page 3 of 9").
	Message string `json:"message,omitempty"`
	// At is when it was reported.
	At time.Time `json:"at"`
}

// Transition is one entry of a task's history.
type Transition struct {
	State   State     `json:"state"`
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt,omitempty"`
	Worker  string    `json:"worker,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// Info is a tracked task's record: its state, its history, and what it
// reported. It is stored as JSON in the task bucket.
type Info struct {
	// ID is the task's ID; tracked tasks always have one.
	ID string `json:"id"`
	// Subject is the task's subject (its type).
	Subject string `json:"subject"`
	// Stream and Sequence locate the stored message (for a scheduled task, its
	// schedule message until it is released); Ref is the same as a
	// jetworker.Ref.
	Stream   string `json:"stream,omitempty"`
	Sequence uint64 `json:"seq,omitempty"`
	Ref      string `json:"ref,omitempty"`
	// State is where the task is now.
	State State `json:"state"`
	// Attempt is the delivery the latest transition belongs to, from 1;
	// MaxAttempts the most the task gets: the publisher's
	// PublishOpts.MaxAttempts until a worker runs it, then the lower of
	// that and the consumer's MaxDeliver (0 when unknown).
	Attempt     int `json:"attempt,omitempty"`
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Generation counts the task's lives: a dead letter replayed starts a
	// new one.
	Generation int `json:"generation,omitempty"`
	// Worker is the worker that ran the latest attempt.
	Worker string `json:"worker,omitempty"`
	// LastError is the latest attempt's error.
	LastError string `json:"last_error,omitempty"`
	// Progress is the latest progress report, nil when none was made.
	Progress *Progress `json:"progress,omitempty"`
	// Result is what the handler set with jetworker.SetResult.
	Result []byte `json:"result,omitempty"`
	// RunAt is when a scheduled task is due.
	RunAt time.Time `json:"run_at,omitzero"`
	// Unique is the task's uniqueness mode ("" when none).
	Unique string `json:"unique,omitempty"`
	// CancelRequested is set by Cancel; the task ends Cancelled unless it
	// finishes first.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// Created and Updated are when the record was written first and last.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// History lists the transitions, oldest first (the latest
	// Config.HistoryLimit of them).
	History []Transition `json:"history"`
}

// event is a change a publisher, worker or Cancel wants to record.
type event struct {
	state       State
	attempt     int
	maxAttempts int // the attempts the consumer allows, 0 when unknown
	generation  int
	at          time.Time
	worker      string
	err         string
	result      []byte
	progress    *Progress
	cancel      bool // request a cancel
	// message location, when known
	stream string
	seq    uint64
	ref    string
}

// apply folds ev into cur and reports whether anything changed. The rules
// make transitions monotonic, so late or repeated writes are harmless:
//
//   - a record in a terminal state takes nothing but a later generation
//     (a replayed dead letter) or a cancel request (ignored there);
//   - within a generation, an event of an earlier attempt is dropped, and
//     within an attempt a state may only move forward (scheduled, pending,
//     active, retrying, then terminal);
//   - progress and results come with an active event of the current
//     attempt;
//   - a cancel request is a flag; it never moves the state;
//   - times never go backwards: an event older than the record's last
//     update counts as of that update.
func apply(cur Info, ev event, historyLimit int) (Info, bool) {
	next := cur
	if ev.at.Before(cur.Updated) {
		// Writers' clocks and queues differ (a worker's start, held back
		// while a publisher writes the record): times never go backwards.
		ev.at = cur.Updated
	}
	if ev.cancel {
		if cur.State.Terminal() || cur.CancelRequested {
			return cur, false
		}
		next.CancelRequested = true
		next.Updated = ev.at
		return next, true
	}
	if ev.generation < 0 {
		ev.generation = cur.Generation // the event does not know: the current one
	}

	switch {
	case ev.generation > cur.Generation:
		// A new life: everything of the old one but its history goes.
		next.Generation = ev.generation
		next.Attempt = 0
		next.Result, next.Progress, next.LastError, next.CancelRequested = nil, nil, "", false
	case ev.generation < cur.Generation:
		return cur, false
	case cur.State.Terminal():
		return cur, false
	case ev.attempt < cur.Attempt:
		return cur, false
	case ev.attempt == cur.Attempt && ev.state.rank() < cur.State.rank():
		return cur, false
	}
	changed := false
	if ev.state != cur.State || ev.attempt != cur.Attempt || ev.generation != cur.Generation {
		next.State, next.Attempt = ev.state, ev.attempt
		next.History = append(append([]Transition(nil), cur.History...),
			Transition{State: ev.state, At: ev.at, Attempt: ev.attempt, Worker: ev.worker, Error: ev.err})
		if n := len(next.History); historyLimit > 0 && n > historyLimit {
			next.History = next.History[n-historyLimit:]
		}
		changed = true
	}
	if ev.worker != "" && ev.worker != next.Worker {
		next.Worker, changed = ev.worker, true
	}
	if ev.maxAttempts > 0 && ev.maxAttempts != next.MaxAttempts {
		next.MaxAttempts, changed = ev.maxAttempts, true
	}
	if ev.err != "" && ev.err != next.LastError {
		next.LastError, changed = ev.err, true
	}
	if ev.progress != nil {
		p := *ev.progress
		next.Progress, changed = &p, true
	}
	if ev.result != nil {
		next.Result, changed = ev.result, true
	}
	if ev.ref != "" && ev.ref != next.Ref {
		next.Stream, next.Sequence, next.Ref, changed = ev.stream, ev.seq, ev.ref, true
	}
	if changed {
		next.Updated = ev.at
	}
	return next, changed
}

// fold applies events to cur in order and reports whether any changed it.
func fold(cur Info, events []event, historyLimit int) (Info, bool) {
	changed := false
	for _, ev := range events {
		var c bool
		cur, c = apply(cur, ev, historyLimit)
		changed = changed || c
	}
	return cur, changed
}
