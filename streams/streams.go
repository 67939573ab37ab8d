package streams

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for [Tasks] and [DeadLetters].
const (
	// DefaultTaskStream is the task stream's name.
	DefaultTaskStream = "TASKS"
	// DefaultTaskSubjects is the subject filter of the task stream.
	DefaultTaskSubjects = "tasks.>"
	// DefaultDeadLetterStream is the dead-letter stream's name.
	DefaultDeadLetterStream = "DLQ"
	// DefaultDeadLetterPrefix is the first token of every dead-letter
	// subject; the dead-letter stream stores <prefix>.>. The dlq package
	// documents the layout of the rest.
	DefaultDeadLetterPrefix = "dlq"
	// DefaultDuplicates is the duplicate window of both streams.
	DefaultDuplicates = 2 * time.Minute
)

// Stream metadata written by this package.
const (
	// MetadataKind is the metadata key naming what a stream holds.
	MetadataKind = "jetworker.kind"
	// KindTasks marks a task stream.
	KindTasks = "tasks"
	// KindDeadLetters marks a dead-letter stream.
	KindDeadLetters = "dead-letters"
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

// Config describes the task stream and the dead-letter stream [Provision]
// ensures. The zero value gives the defaults of jetworker's design.
type Config struct {
	// Tasks is the task stream.
	Tasks Tasks
	// DeadLetters is the dead-letter stream.
	DeadLetters DeadLetters
	// Replicas is the number of copies of both streams in a cluster,
	// unless a stream sets its own. Defaults to 1; use 3 in a cluster.
	Replicas int
}

// Tasks describes a task stream. The zero value is the default TASKS
// stream: file storage, work-queue retention, subjects tasks.>, a 2-minute
// duplicate window, delayed tasks (message schedules), per-message TTLs and
// fast-ingest batch publishing on.
type Tasks struct {
	// Name is the stream name. Defaults to "TASKS".
	Name string
	// Subjects are the task subjects the stream stores. Defaults to
	// ["tasks.>"]. The stream also stores its delay subject
	// ([DelaySubject]) unless DisableDelays is set.
	Subjects []string
	// Retention says when a task is removed. Defaults to [WorkQueue].
	Retention Retention
	// Replicas is the number of copies in a cluster. Defaults to
	// Config.Replicas, then 1.
	Replicas int
	// Memory stores the stream in memory instead of files. Defaults to
	// file storage.
	Memory bool
	// Duplicates is the duplicate window. Defaults to 2m.
	Duplicates time.Duration
	// MaxBytes bounds the stream's size; when full, new publishes fail
	// (discard new) so nothing stored is lost. Defaults to -1, no limit.
	// The server does not allow message schedules with discard new, so a
	// stream with MaxBytes needs DisableDelays.
	MaxBytes int64
	// MaxAge removes tasks older than this. Defaults to 0, never; task
	// streams should keep it 0 (it expires tasks by wall clock).
	MaxAge time.Duration
	// DisableDelays turns off message schedules (delayed tasks). Defaults
	// to false: delayed tasks are allowed.
	DisableDelays bool
}

// DeadLetters describes a dead-letter stream. The zero value is the
// default DLQ stream: file storage, limits retention, subjects dlq.>, a
// 2-minute duplicate window (the consumer de-duplicates dead letters of
// one task through it) and direct gets on (the dlq package reads entries
// without creating consumers).
type DeadLetters struct {
	// Name is the stream name. Defaults to "DLQ".
	Name string
	// Prefix is the first token of dead-letter subjects; the stream
	// stores <Prefix>.>. Defaults to "dlq".
	Prefix string
	// Replicas is the number of copies in a cluster. Defaults to
	// Config.Replicas, then 1.
	Replicas int
	// Memory stores the stream in memory instead of files. Defaults to
	// file storage.
	Memory bool
	// Duplicates is the duplicate window. Defaults to 2m.
	Duplicates time.Duration
	// MaxBytes bounds the stream's size (discard new). Defaults to -1, no
	// limit.
	MaxBytes int64
	// MaxAge removes dead letters older than this. Defaults to 0, never.
	MaxAge time.Duration
}

// StreamConfig returns the stream configuration t describes.
func (t Tasks) StreamConfig() jetstream.StreamConfig {
	name := cmp.Or(t.Name, DefaultTaskStream)
	subjects := t.Subjects
	if len(subjects) == 0 {
		subjects = []string{DefaultTaskSubjects}
	}
	cfg := base(name, subjects, t.Replicas, t.Memory, t.Duplicates, t.MaxBytes, t.MaxAge, KindTasks)
	cfg.Retention = t.Retention.policy()
	cfg.AllowMsgTTL = true
	cfg.AllowBatchPublish = true // publisher.PublishBatch: fast-ingest batches
	if !t.DisableDelays {
		cfg.Subjects = append(cfg.Subjects, DelaySubject(name))
		cfg.AllowMsgSchedules = true
		// The server turns roll-ups on with schedules; ask for it so the
		// stored config matches what we want.
		cfg.AllowRollup = true
	}
	return cfg
}

// StreamConfig returns the stream configuration d describes.
func (d DeadLetters) StreamConfig() jetstream.StreamConfig {
	name := cmp.Or(d.Name, DefaultDeadLetterStream)
	prefix := cmp.Or(d.Prefix, DefaultDeadLetterPrefix)
	cfg := base(name, []string{prefix + ".>"}, d.Replicas, d.Memory, d.Duplicates, d.MaxBytes, d.MaxAge, KindDeadLetters)
	cfg.Retention = jetstream.LimitsPolicy
	return cfg
}

func base(name string, subjects []string, replicas int, memory bool, dup time.Duration, maxBytes int64, maxAge time.Duration, kind string) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:        name,
		Subjects:    slices.Clone(subjects),
		Storage:     jetstream.FileStorage,
		Replicas:    cmp.Or(replicas, 1),
		Duplicates:  cmp.Or(dup, DefaultDuplicates),
		MaxBytes:    cmp.Or(maxBytes, -1),
		MaxAge:      maxAge,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
		Metadata:    map[string]string{MetadataKind: kind},
	}
	if memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	if cfg.MaxBytes > 0 {
		cfg.Discard = jetstream.DiscardNew
	}
	return cfg
}

// Kind returns what the stream with configuration cfg holds, from its
// metadata: [KindTasks], [KindDeadLetters], or "" for a stream this
// package did not make.
func Kind(cfg jetstream.StreamConfig) string { return cfg.Metadata[MetadataKind] }

// DelaySubject returns the subject filter under which delayed tasks of
// the named stream wait for their release time. [Tasks.StreamConfig] adds
// it to the task stream's subjects; consumers must not filter on it.
func DelaySubject(stream string) string {
	return DelaySubjectPrefix(stream) + ">"
}

// DelaySubjectPrefix returns the prefix of the delay subjects of the named
// stream: jetworker.delay.<stream>. followed by one token per delayed task.
func DelaySubjectPrefix(stream string) string {
	return "jetworker.delay." + stream + "."
}

// Provision ensures the task stream and the dead-letter stream cfg
// describes exist with its settings (see [Ensure]). It is idempotent.
func Provision(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if cfg.Tasks.MaxBytes > 0 && !cfg.Tasks.DisableDelays {
		return errors.New("streams: Tasks.MaxBytes needs Tasks.DisableDelays: the server does not allow message schedules with discard new")
	}
	cfg.Tasks.Replicas = cmp.Or(cfg.Tasks.Replicas, cfg.Replicas)
	cfg.DeadLetters.Replicas = cmp.Or(cfg.DeadLetters.Replicas, cfg.Replicas)
	if _, err := Ensure(ctx, js, cfg.Tasks.StreamConfig()); err != nil {
		return err
	}
	if _, err := Ensure(ctx, js, cfg.DeadLetters.StreamConfig()); err != nil {
		return err
	}
	return nil
}

// Ensure creates the stream want describes, or brings an existing
// one in line with it. It is idempotent: when the stream already matches,
// it changes nothing.
//
// Settings the server can change in place (duplicate window, size limits,
// replicas, enabling schedules, TTLs or direct gets, metadata) are
// updated. Differences that
// cannot be changed or that would take over a stream configured for
// something else (subjects, retention, storage, turning features off) are
// returned as an error wrapping [ErrConflict] that names each field
// with its existing and wanted value; the stream is left as it is.
func Ensure(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
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
		return nil, fmt.Errorf("stream %q: %w: %s", want.Name, ErrConflict, strings.Join(conflicts, "; "))
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
	next.AllowDirect = next.AllowDirect || want.AllowDirect
	next.AllowBatchPublish = next.AllowBatchPublish || want.AllowBatchPublish
	if len(want.Metadata) > 0 {
		next.Metadata = maps.Clone(next.Metadata)
		if next.Metadata == nil {
			next.Metadata = map[string]string{}
		}
		maps.Copy(next.Metadata, want.Metadata)
	}
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
		(want.AllowRollup && !have.AllowRollup) ||
		(want.AllowDirect && !have.AllowDirect) ||
		(want.AllowBatchPublish && !have.AllowBatchPublish) ||
		!metadataHas(have.Metadata, want.Metadata)
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

// metadataHas reports whether have holds every key of want with its value.
func metadataHas(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
