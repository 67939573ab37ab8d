package outbox

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jetworker/jetworker/internal/pgtest"
)

// TestQueriesStayCheapWithMillionsOfRows fills an outbox with 1,000,000
// rows (700,000 published and kept, as with KeepPublished; 200,000 due
// without a key; 100,000 keyed over 1,000 keys, a tenth of them delayed)
// and checks each relay query's plan, as PostgreSQL executes it: no
// sequential scan of the outbox, and the buffers it touches bounded by a
// few per row it looks at, not by the table. (Buffers, not times: they do
// not depend on the machine. On a 2-core VM the keyed claim, the most
// expensive, took 19-31 ms; the plain claim under 1 ms.)
func TestQueriesStayCheapWithMillionsOfRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := pgtest.Start(t, pgtest.Options{})
	pool, err := pgxpool.New(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg := Config{}.withDefaults()
	if err := Migrate(ctx, pool, cfg); err != nil {
		t.Fatal(err)
	}
	n := newNames(cfg)
	start := time.Now()
	fill := "INSERT INTO " + n.table + " (subject, payload, order_key, available_at, published_at)" +
		" SELECT 'tasks.load', '\\x00'::bytea," +
		" CASE WHEN i > 900000 THEN 'key-' || (i % 1000) END," +
		" now() - interval '1 hour' + CASE WHEN i > 990000 THEN interval '2 hours' ELSE i * interval '1 ms' END," +
		" CASE WHEN i <= 700000 THEN now() END" +
		" FROM generate_series(1, 1000000) AS i"
	if _, err := pool.Exec(ctx, fill); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+n.table); err != nil {
		t.Fatal(err)
	}
	t.Logf("1,000,000 rows in %s", time.Since(start).Round(time.Millisecond))

	q := newQueries(n)
	for _, tc := range []struct {
		name      string
		sql       string
		args      []any
		maxBuffer float64
	}{
		// About 3 pages per row claimed: index, heap, lock.
		{"claim 1000", q.claim, []any{1000}, 3 * 1000},
		// Per candidate of the window (4,000): its index entry, its row
		// by primary key, and the probe for an earlier row of its key.
		{"keyed claim 1000 of 4000", q.claimKeyed, []any{1000, 4000}, 10 * 4000},
		// A key's rows lie on pages of their own: a heap page per row,
		// and the key's index path.
		{"followers of 100 keys", q.followers, []any{keys(100), firstIDs(100), 10}, 12 * 1000},
		{"next due", q.nextDue, nil, 50},
	} {
		var plan []struct {
			Plan map[string]any `json:"Plan"`
		}
		rows, err := pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+tc.sql, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var raw []byte
		for rows.Next() {
			if err := rows.Scan(&raw); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		if err := json.Unmarshal(raw, &plan); err != nil || len(plan) != 1 {
			t.Fatalf("%s: plan %s: %v", tc.name, raw, err)
		}
		var seqScans []string
		walk(plan[0].Plan, func(node map[string]any) {
			if node["Node Type"] == "Seq Scan" && strings.HasPrefix(fmt.Sprint(node["Relation Name"]), cfg.Table) {
				seqScans = append(seqScans, fmt.Sprint(node["Relation Name"]))
			}
		})
		buffers := num(plan[0].Plan["Shared Hit Blocks"]) + num(plan[0].Plan["Shared Read Blocks"])
		t.Logf("%s: %.0f buffers, %.1f ms, %v rows", tc.name, buffers, num(plan[0].Plan["Actual Total Time"]), plan[0].Plan["Actual Rows"])
		if len(seqScans) > 0 {
			t.Errorf("%s: sequential scan of %v:\n%s", tc.name, seqScans, raw)
		}
		if buffers > tc.maxBuffer {
			t.Errorf("%s: touched %.0f buffers, want at most %.0f:\n%s", tc.name, buffers, tc.maxBuffer, raw)
		}
	}
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("key-%d", i)
	}
	return out
}

// firstIDs are ids just before each key's rows begin.
func firstIDs(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = 900000
	}
	return out
}

func walk(node map[string]any, f func(map[string]any)) {
	f(node)
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			if m, ok := k.(map[string]any); ok {
				walk(m, f)
			}
		}
	}
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
