package streams_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/streams"
)

func TestProvisionIsIdempotent(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("first provision: %v", err)
	}
	before := streamCreated(t, js)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("second provision: %v", err)
	}
	if after := streamCreated(t, js); after != before {
		t.Fatalf("second provision changed the streams: %v -> %v", before, after)
	}

	s, err := js.Stream(t.Context(), "TASKS")
	if err != nil {
		t.Fatalf("TASKS: %v", err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Retention != jetstream.WorkQueuePolicy || cfg.Storage != jetstream.FileStorage ||
		cfg.Duplicates != 2*time.Minute || !cfg.AllowMsgSchedules || !cfg.AllowMsgTTL {
		t.Fatalf("TASKS config: got retention=%v storage=%v dup=%v schedules=%v ttl=%v, want the design defaults",
			cfg.Retention, cfg.Storage, cfg.Duplicates, cfg.AllowMsgSchedules, cfg.AllowMsgTTL)
	}
	d, err := js.Stream(t.Context(), "DLQ")
	if err != nil {
		t.Fatalf("DLQ: %v", err)
	}
	if got := d.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != "dlq.>" {
		t.Fatalf("DLQ subjects: got %v, want [dlq.>]", got)
	}
}

// streamCreated returns a fingerprint of both streams' configs.
func streamCreated(t *testing.T, js jetstream.JetStream) [2]string {
	t.Helper()
	var out [2]string
	for i, name := range []string{"TASKS", "DLQ"} {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info := s.CachedInfo()
		out[i] = info.Created.String() + "|" + strings.Join(info.Config.Subjects, ",") + "|" + info.Config.Duplicates.String()
	}
	return out
}

func TestEnsureStreamUpdatesChangeableSettings(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	if _, err := streams.Ensure(t.Context(), js, streams.Tasks{}.StreamConfig()); err != nil {
		t.Fatalf("create: %v", err)
	}
	s, err := streams.Ensure(t.Context(), js, streams.Tasks{Duplicates: 5 * time.Minute}.StreamConfig())
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != 5*time.Minute {
		t.Fatalf("duplicate window after update: got %v, want 5m", got)
	}
}

func TestEnsureStreamReportsConflicts(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	// Somebody else's stream under our name.
	theirs := jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"orders.>"}, Retention: jetstream.LimitsPolicy}
	if _, err := js.CreateStream(t.Context(), theirs); err != nil {
		t.Fatalf("create theirs: %v", err)
	}
	err := streams.Provision(t.Context(), js, streams.Config{})
	if !errors.Is(err, streams.ErrConflict) {
		t.Fatalf("got %v, want streams.ErrConflict", err)
	}
	for _, want := range []string{"Subjects", "orders.>", "Retention"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflict error %q does not name %q", err, want)
		}
	}
	s, err := js.Stream(t.Context(), "TASKS")
	if err != nil {
		t.Fatalf("TASKS: %v", err)
	}
	if cfg := s.CachedInfo().Config; len(cfg.Subjects) != 1 || cfg.Subjects[0] != "orders.>" || cfg.Retention != jetstream.LimitsPolicy {
		t.Fatalf("existing stream was changed: subjects=%v retention=%v", cfg.Subjects, cfg.Retention)
	}
}

func TestProvisionRejectsMaxBytesWithDelays(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	err := streams.Provision(t.Context(), js, streams.Config{Tasks: streams.Tasks{MaxBytes: 1 << 20}})
	if err == nil || !strings.Contains(err.Error(), "DisableDelays") {
		t.Fatalf("got %v, want an error naming DisableDelays", err)
	}
	if err := streams.Provision(t.Context(), js, streams.Config{Tasks: streams.Tasks{MaxBytes: 1 << 20, DisableDelays: true}}); err != nil {
		t.Fatalf("MaxBytes without delays: %v", err)
	}
	s, _ := js.Stream(t.Context(), "TASKS")
	if cfg := s.CachedInfo().Config; cfg.Discard != jetstream.DiscardNew || cfg.MaxBytes != 1<<20 {
		t.Fatalf("got discard=%v maxbytes=%d, want discard new with 1MiB", cfg.Discard, cfg.MaxBytes)
	}
}

func TestStreamsCarryTheirKind(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	// A stream made before kinds existed: Provision adds the kind and
	// direct gets in place.
	old := streams.Tasks{}.StreamConfig()
	old.Metadata, old.AllowDirect = nil, false
	if _, err := js.CreateStream(t.Context(), old); err != nil {
		t.Fatalf("create old TASKS: %v", err)
	}
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	for name, want := range map[string]string{"TASKS": streams.KindTasks, "DLQ": streams.KindDeadLetters} {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		cfg := s.CachedInfo().Config
		if got := streams.Kind(cfg); got != want {
			t.Errorf("%s kind: got %q, want %q", name, got, want)
		}
		if !cfg.AllowDirect {
			t.Errorf("%s: direct gets off, want on", name)
		}
	}
}

func TestProvisionUsesSharedReplicasAndPrefix(t *testing.T) {
	t.Parallel()
	cfg := streams.DeadLetters{Prefix: "dead"}.StreamConfig()
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != "dead.>" {
		t.Fatalf("dead-letter subjects with prefix dead: got %v, want [dead.>]", cfg.Subjects)
	}
	if got := streams.DelaySubject("TASKS"); got != "jetworker.delay.TASKS.>" {
		t.Fatalf("DelaySubject: got %q", got)
	}
}
