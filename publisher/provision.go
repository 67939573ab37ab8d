package publisher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for [TaskStream] and [DeadLetterStream].
const (
	// DefaultTaskStream is the task stream's name.
	DefaultTaskStream = "TASKS"
	// DefaultTaskSubjects is the subject filter of the task stream.
	DefaultTaskSubjects = "tasks.>"
	// DefaultDeadLetterStream is the dead-letter stream's name.
	DefaultDeadLetterStream = "DLQ"
	// DefaultDeadLetterSubjects is the subject filter of the dead-letter
	// stream; a dead task of stream S and consumer C is stored on dlq.S.C.
	DefaultDeadLetterSubjects = "dlq.>"
	// DefaultDuplicates is the duplicate window of both streams.
	DefaultDuplicates = 2 * time.Minute
)

// Retention says when a task stream removes a message.
type Retention int

const (
	// WorkQueue removes a message once one consumer acknowledges it: a
	// task queue. The default.
	WorkQueue Retention = iota
	// Interest keeps a message until every consumer with interest in it
	// has acknowledged it: event fan-out to several services' durables.
	Interest
	// Limits keeps messages until the stream's limits remove them.
	Limits
)

func (r Retention) policy() jetstream.RetentionPolicy {
	switch r {
	case Interest:
		return jetstream.InterestPolicy
	case Limits:
		return jetstream.LimitsPolicy
	default:
		return jetstream.WorkQueuePolicy
	}
}

// StreamConfig describes a task or dead-letter stream. The zero value
// gives the defaults of jetworker's design.
type StreamConfig struct {
	// Name is the stream name. Defaults to "TASKS" for [TaskStream] and
	// "DLQ" for [DeadLetterStream].
	Name string
	// Subjects are the subjects the stream stores. Defaults to "tasks.>"
	// or "dlq.>". A task stream with delays also stores its delay subject.
	Subjects []string
	// Retention applies to task streams. Defaults to [WorkQueue]. The
	// dead-letter stream always uses limits retention.
	Retention Retention
	// Replicas is the number of copies in a cluster. Defaults to 1; use 3
	// in a cluster.
	Replicas int
	// Memory stores the stream in memory instead of files. Defaults to
	// file storage.
	Memory bool
	// Duplicates is the duplicate window. Defaults to 2m.
	Duplicates time.Duration
	// MaxBytes bounds the stream's size; when full, new publishes fail
	// (discard new) so nothing stored is lost. Defaults to -1, no limit.
	// The server does not allow message schedules with discard new, so a
	// task stream with MaxBytes needs DisableDelays.
	MaxBytes int64
	// MaxAge removes messages older than this. Defaults to 0, never; task
	// streams should keep it 0 (it expires tasks by wall clock).
	MaxAge time.Duration
	// DisableDelays turns off message schedules on a task stream. Defaults
	// to false: delayed tasks are allowed.
	DisableDelays bool
}

// TaskStream returns the stream configuration for a task stream: file
// storage, work-queue retention, a 2-minute duplicate window, message
// schedules (delayed tasks) and per-message TTLs on.
func TaskStream(c StreamConfig) jetstream.StreamConfig {
	name := cmp.Or(c.Name, DefaultTaskStream)
	subjects := c.Subjects
	if len(subjects) == 0 {
		subjects = []string{DefaultTaskSubjects}
	}
	cfg := streamConfig(c, name, subjects)
	cfg.Retention = c.Retention.policy()
	cfg.AllowMsgTTL = true
	if !c.DisableDelays {
		cfg.Subjects = append(cfg.Subjects, DelaySubject(name))
		cfg.AllowMsgSchedules = true
		// The server turns roll-ups on with schedules; ask for it so the
		// stored config matches what we want.
		cfg.AllowRollup = true
	}
	return cfg
}

// DeadLetterStream returns the stream configuration for the dead-letter
// stream: file storage, limits retention, a 2-minute duplicate window
// (the consumer de-duplicates dead letters by task through it).
func DeadLetterStream(c StreamConfig) jetstream.StreamConfig {
	name := cmp.Or(c.Name, DefaultDeadLetterStream)
	subjects := c.Subjects
	if len(subjects) == 0 {
		subjects = []string{DefaultDeadLetterSubjects}
	}
	cfg := streamConfig(c, name, subjects)
	cfg.Retention = jetstream.LimitsPolicy
	return cfg
}

func streamConfig(c StreamConfig, name string, subjects []string) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:       name,
		Subjects:   slices.Clone(subjects),
		Storage:    jetstream.FileStorage,
		Replicas:   cmp.Or(c.Replicas, 1),
		Duplicates: cmp.Or(c.Duplicates, DefaultDuplicates),
		MaxBytes:   cmp.Or(c.MaxBytes, -1),
		MaxAge:     c.MaxAge,
		Discard:    jetstream.DiscardOld,
	}
	if c.Memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	if cfg.MaxBytes > 0 {
		cfg.Discard = jetstream.DiscardNew
	}
	return cfg
}

// Provision ensures the task stream and the dead-letter stream exist with
// the given settings (see [EnsureStream]). It is idempotent.
func Provision(ctx context.Context, js jetstream.JetStream, tasks, deadLetters StreamConfig) error {
	if tasks.MaxBytes > 0 && !tasks.DisableDelays {
		return fmt.Errorf("publisher: task stream MaxBytes needs DisableDelays: the server does not allow message schedules with discard new")
	}
	if _, err := EnsureStream(ctx, js, TaskStream(tasks)); err != nil {
		return err
	}
	if _, err := EnsureStream(ctx, js, DeadLetterStream(deadLetters)); err != nil {
		return err
	}
	return nil
}

// EnsureStream creates the stream want describes, or brings an existing
// one in line with it. It is idempotent: when the stream already matches,
// it changes nothing.
//
// Settings the server can change in place (duplicate window, size limits,
// replicas, enabling schedules or TTLs) are updated. Differences that
// cannot be changed or that would take over a stream configured for
// something else (subjects, retention, storage, turning features off) are
// returned as an error wrapping [ErrStreamConflict] that names each field
// with its existing and wanted value; the stream is left as it is.
func EnsureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("create stream %q: %w", want.Name, err)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %q: %w", want.Name, err)
	}

	have := s.CachedInfo().Config
	conflicts, update := diffStream(have, want)
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("stream %q: %w: %s", want.Name, ErrStreamConflict, strings.Join(conflicts, "; "))
	}
	if !update {
		return s, nil
	}
	next := have
	next.Duplicates = want.Duplicates
	next.MaxBytes = want.MaxBytes
	next.MaxAge = want.MaxAge
	next.Discard = want.Discard
	next.Replicas = want.Replicas
	next.AllowMsgSchedules = next.AllowMsgSchedules || want.AllowMsgSchedules
	next.AllowMsgTTL = next.AllowMsgTTL || want.AllowMsgTTL
	next.AllowRollup = next.AllowRollup || want.AllowRollup
	if next.AllowRollup {
		next.DenyPurge = false
	}
	s, err = js.UpdateStream(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("update stream %q: %w", want.Name, err)
	}
	return s, nil
}

// diffStream compares an existing stream's config with the wanted one. It
// returns the conflicts (human-readable) and whether an in-place update is
// needed.
func diffStream(have, want jetstream.StreamConfig) (conflicts []string, update bool) {
	conflict := func(field string, h, w any) {
		conflicts = append(conflicts, fmt.Sprintf("%s is %v, want %v", field, h, w))
	}
	if !sameSet(have.Subjects, want.Subjects) {
		conflict("Subjects", have.Subjects, want.Subjects)
	}
	if have.Retention != want.Retention {
		conflict("Retention", have.Retention, want.Retention)
	}
	if have.Storage != want.Storage {
		conflict("Storage", have.Storage, want.Storage)
	}
	if have.AllowMsgSchedules && !want.AllowMsgSchedules {
		conflict("AllowMsgSchedules", true, false)
	}
	if have.AllowMsgTTL && !want.AllowMsgTTL {
		conflict("AllowMsgTTL", true, false)
	}
	if have.AllowMsgSchedules && want.Discard == jetstream.DiscardNew {
		conflict("Discard", "old (required by message schedules)", "new")
	}
	update = have.Duplicates != want.Duplicates ||
		have.MaxBytes != want.MaxBytes ||
		have.MaxAge != want.MaxAge ||
		have.Discard != want.Discard ||
		have.Replicas != want.Replicas ||
		(want.AllowMsgSchedules && !have.AllowMsgSchedules) ||
		(want.AllowMsgTTL && !have.AllowMsgTTL) ||
		(want.AllowRollup && !have.AllowRollup)
	return conflicts, update
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
