package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// durability is what the durability guard found: settings that decide
// whether acknowledged work can be lost.
type durability struct {
	// Cluster is the NATS cluster name, "" for a single server.
	Cluster string `json:"cluster,omitempty"`
	// Sync is "always", "every <interval>", or "unknown" when the server's
	// configuration cannot be read.
	Sync string `json:"sync"`
	// Warnings name each risky setting.
	Warnings []string `json:"warnings,omitempty"`
}

// checkDurability inspects the streams a command uses: R1 streams in a
// cluster, streams with asynchronous persistence, and (through the
// server's monitoring endpoint, when configured) a server that does not
// sync every write. Missing streams are skipped.
func checkDurability(ctx context.Context, c *conn, monitorURL string, streams []string) durability {
	d := durability{Cluster: c.nc.ConnectedClusterName(), Sync: "unknown"}
	for _, name := range streams {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		cfg := s.CachedInfo().Config
		if d.Cluster != "" && cfg.Replicas < 3 {
			d.Warnings = append(d.Warnings, fmt.Sprintf("stream %s has %d replica(s) in cluster %s: losing one server loses its data; use 3", name, cfg.Replicas, d.Cluster))
		}
		if cfg.PersistMode == jetstream.AsyncPersistMode {
			d.Warnings = append(d.Warnings, fmt.Sprintf("stream %s uses asynchronous persistence: acknowledged writes can be lost", name))
		}
	}
	jsc, err := serverJetStreamConfig(ctx, monitorURL)
	switch {
	case err != nil:
		d.Sync = "unknown"
	case jsc.SyncAlways:
		d.Sync = "always"
	default:
		every := time.Duration(jsc.SyncInterval)
		if every == 0 {
			every = 2 * time.Minute // the server's default
		}
		d.Sync = "every " + every.String()
		d.Warnings = append(d.Warnings, fmt.Sprintf("the server syncs to disk only every %s: an OS crash or power loss can lose acknowledged writes; set sync_interval: always", every))
	}
	return d
}

// jsConfig is the part of nats-server's /varz JetStream config we read.
type jsConfig struct {
	SyncAlways   bool  `json:"sync_always"`
	SyncInterval int64 `json:"sync_interval"`
}

// serverJetStreamConfig reads the connected server's JetStream config from
// its monitoring endpoint. Without one it reports an error: asking $SYS
// would be a permission violation for every identity but the system
// account's.
func serverJetStreamConfig(ctx context.Context, monitorURL string) (jsConfig, error) {
	if monitorURL == "" {
		return jsConfig{}, errors.New("no monitoring URL")
	}
	var v struct {
		JetStream struct {
			Config *jsConfig `json:"config"`
		} `json:"jetstream"`
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(monitorURL, "/")+"/varz", nil)
	if err != nil {
		return jsConfig{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return jsConfig{}, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return jsConfig{}, fmt.Errorf("decode varz: %w", err)
	}
	if v.JetStream.Config == nil {
		return jsConfig{}, errors.New("varz has no JetStream config")
	}
	return *v.JetStream.Config, nil
}

// warnDurability logs the guard's warnings at start-up.
func warnDurability(ctx context.Context, log *slog.Logger, d durability) {
	for _, w := range d.Warnings {
		log.WarnContext(ctx, "durability", slog.String("warning", w))
	}
	if d.Sync == "unknown" {
		log.InfoContext(ctx, "durability: cannot read the server's sync setting (set JETWORKER_NATS_MONITOR_URL to its monitoring endpoint)")
	}
}
