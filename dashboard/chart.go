package dashboard

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Charts are inline SVG rendered on the server: no script draws them, the
// live refresh replaces them with the rest of the page, and the page's CSP
// (default-src 'self') needs nothing else. Colours come from classes in
// app.css, so dark mode restyles them.

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartWidth  = 640
	chartHeight = 200
	plotLeft    = 48
	plotRight   = chartWidth - 12
	plotTop     = 10
	plotBottom  = chartHeight - 22
	// maxChartPoints bounds the points drawn per line: samples are
	// averaged into this many buckets.
	maxChartPoints = 320
	// chartPalette is how many series colours app.css defines (.s0 …).
	chartPalette = 8
)

// chartUnit says how a chart's values read.
type chartUnit int

const (
	unitRate    chartUnit = iota // per second
	unitCount                    // a number of things
	unitSeconds                  // an age
	unitLatency                  // a short duration: ms to minutes
)

// chartLine is one series to draw.
type chartLine struct {
	Key  string // the series name in the history
	Name string // the legend's label
	Vals []float64
	// Max merges buckets by their maximum (ages, backlogs: a spike must
	// show) instead of their mean (rates).
	Max bool
}

// chartView is a chart ready for the "chart" template.
type chartView struct {
	ID, Title, Unit, Note string
	Width, Height         int
	PlotLeft, PlotRight   int
	PlotTop, PlotBottom   int
	Lines                 []lineView
	YTicks, XTicks        []tickView
	// Empty, when set, says why nothing is drawn.
	Empty string
}

type lineView struct {
	Key, Name, Class string
	// Segments are polyline point lists; a missing sample breaks the line.
	Segments []string
	// Points are values without a neighbour to join (a sample between two
	// gaps), drawn as dots.
	Points []pointView
	// Last is the latest value, formatted ("—" when unknown); the dot
	// marks it.
	Last       string
	HasDot     bool
	DotX, DotY string
}

type pointView struct{ X, Y string }

type tickView struct {
	Pos   string
	Label string
}

// renderChart lays lines over times, from start to end.
func renderChart(id, title string, unit chartUnit, times []time.Time, lines []chartLine, start, end time.Time) chartView {
	cv := chartView{
		ID: id, Title: title, Unit: unitLabel(unit),
		Width: chartWidth, Height: chartHeight,
		PlotLeft: plotLeft, PlotRight: plotRight, PlotTop: plotTop, PlotBottom: plotBottom,
		Lines: []lineView{},
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	peak := 0.0
	for _, l := range lines {
		for _, v := range l.Vals {
			if !math.IsNaN(v) && v > peak {
				peak = v
			}
		}
	}
	top := niceCeil(peak, unit)
	x := func(t time.Time) float64 {
		return plotLeft + float64(t.Sub(start))/float64(span)*(plotRight-plotLeft)
	}
	y := func(v float64) float64 {
		return plotBottom - v/top*(plotBottom-plotTop)
	}
	for i, l := range lines {
		bt, bv := bucket(times, l.Vals, maxChartPoints, l.Max)
		lv := lineView{Key: l.Key, Name: l.Name, Class: "s" + strconv.Itoa(i%chartPalette), Last: "—"}
		var seg []string
		flush := func() {
			switch len(seg) {
			case 0:
			case 1:
				px, py, _ := strings.Cut(seg[0], ",")
				lv.Points = append(lv.Points, pointView{X: px, Y: py})
			default:
				lv.Segments = append(lv.Segments, strings.Join(seg, " "))
			}
			seg = seg[:0]
		}
		for j, v := range bv {
			if math.IsNaN(v) || bt[j].Before(start) {
				flush()
				continue
			}
			seg = append(seg, coord(x(bt[j]))+","+coord(y(v)))
		}
		flush()
		for j := len(l.Vals) - 1; j >= 0; j-- {
			if !math.IsNaN(l.Vals[j]) {
				lv.Last = formatValue(l.Vals[j], unit)
				break
			}
		}
		for j := len(bv) - 1; j >= 0; j-- {
			if !math.IsNaN(bv[j]) {
				lv.HasDot, lv.DotX, lv.DotY = true, coord(x(bt[j])), coord(y(bv[j]))
				break
			}
		}
		cv.Lines = append(cv.Lines, lv)
	}
	for _, f := range []float64{0, .5, 1} {
		cv.YTicks = append(cv.YTicks, tickView{Pos: coord(y(top * f)), Label: formatValue(top*f, unit)})
	}
	for i := range 5 {
		t := start.Add(span * time.Duration(i) / 4)
		label := "now"
		if i < 4 {
			label = "−" + axisAge(end.Sub(t))
		}
		cv.XTicks = append(cv.XTicks, tickView{Pos: coord(x(t)), Label: label})
	}
	return cv
}

// bucket averages (or takes the maximum of) consecutive samples so that at
// most n remain; a bucket without values is NaN. Each bucket is placed at
// its last sample's time.
func bucket(times []time.Time, vals []float64, n int, useMax bool) ([]time.Time, []float64) {
	if len(vals) <= n {
		return times, vals
	}
	k := (len(vals) + n - 1) / n
	var bt []time.Time
	var bv []float64
	for i := 0; i < len(vals); i += k {
		j := min(i+k, len(vals))
		sum, cnt, peak := 0.0, 0, math.Inf(-1)
		for _, v := range vals[i:j] {
			if !math.IsNaN(v) {
				sum += v
				cnt++
				peak = max(peak, v)
			}
		}
		v := math.NaN()
		switch {
		case cnt > 0 && useMax:
			v = peak
		case cnt > 0:
			v = sum / float64(cnt)
		}
		bt = append(bt, times[j-1])
		bv = append(bv, v)
	}
	return bt, bv
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten (ages and
// latencies above a minute to a round number of minutes or hours); an
// empty chart is scaled to 1. Counts and ages are scaled to 1 at least,
// rates and latencies (milliseconds) are not.
func niceCeil(v float64, unit chartUnit) float64 {
	if (unit == unitSeconds || unit == unitLatency) && v > 60 {
		for _, step := range []float64{120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400} {
			if v <= step {
				return step
			}
		}
		return math.Ceil(v/86400) * 86400
	}
	if v <= 0 {
		return 1
	}
	if unit != unitRate && unit != unitLatency && v < 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func unitLabel(u chartUnit) string {
	switch u {
	case unitRate:
		return "per second"
	case unitSeconds:
		return "age"
	case unitLatency:
		return "time to start"
	}
	return "count"
}

// formatValue shows a chart value: rates with up to 3 significant digits,
// counts whole (1.2k above 10 000), ages as 45s, 12m, 3h.
func formatValue(v float64, unit chartUnit) string {
	switch unit {
	case unitSeconds:
		if v == 0 {
			return "0s"
		}
		return formatAge(time.Duration(v * float64(time.Second)))
	case unitLatency:
		return formatLatency(v)
	case unitCount:
		if v >= 10_000 {
			return compact(v)
		}
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	if v >= 1000 {
		return compact(v)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// formatLatency shows seconds the way latencies read: 0.8ms, 12ms, 2.5s,
// and from a minute on as ages (3m).
func formatLatency(v float64) string {
	switch {
	case v <= 0:
		return "0s"
	case v < 1:
		return shortFloat(v*1000) + "ms"
	case v < 60:
		return shortFloat(v) + "s"
	}
	return formatAge(time.Duration(v * float64(time.Second)))
}

// shortFloat formats v (≥ 0) with about three significant digits and no
// trailing zeros: 0.25, 2.5, 12.5, 250.
func shortFloat(v float64) string {
	decimals := 0
	switch {
	case v < 1:
		decimals = 3
	case v < 10:
		decimals = 2
	case v < 100:
		decimals = 1
	}
	out := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(out, ".") {
		out = strings.TrimRight(strings.TrimRight(out, "0"), ".")
	}
	return out
}

func compact(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	}
	return fmt.Sprintf("%.3gk", v/1e3)
}

// axisAge labels a time axis tick: 12m, 45s, or 0.4s for the first
// moments of a history.
func axisAge(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return formatAge(d.Round(time.Second))
}

func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// chartWindows are the spans the overview offers.
var chartWindows = []time.Duration{15 * time.Minute, time.Hour}

// chartsView is the overview's chart section.
type chartsView struct {
	Charts  []chartView
	Window  time.Duration
	Windows []windowOption
	// Span is what the charts show: the window, or less when the
	// dashboard has not sampled for that long (Partial).
	Span    time.Duration
	Partial bool
	// Note, when set, says why there are no charts or why they are empty.
	Note string
}

type windowOption struct {
	Label, Value string
	Active       bool
}

// parseWindow reads the chart window from ?window= (15m or 1h; the
// history's span at most).
func (s *Server) parseWindow(v string) time.Duration {
	w := s.cfg.SampleWindow
	if d, err := time.ParseDuration(v); err == nil && d > 0 && d < w {
		w = d
	}
	return w
}

// charts draws the overview's charts from the sampler's history: the
// window up to now.
func (s *Server) charts(window time.Duration) chartsView {
	cv := chartsView{Window: window, Charts: []chartView{}}
	for _, w := range chartWindows {
		if w <= s.cfg.SampleWindow {
			cv.Windows = append(cv.Windows, windowOption{Label: formatAge(w), Value: w.String(), Active: w == window})
		}
	}
	switch {
	case s.cfg.SampleInterval < 0:
		cv.Note = "Charts are off (Config.SampleInterval is -1)."
		return cv
	case !s.sampling.Load():
		cv.Note = "Charts are drawn from samples that Server.Run takes every " + s.cfg.SampleInterval.String() +
			"; this dashboard is served without Run (mounted with Handler), so there are none."
		return cv
	}
	end := s.cfg.NowFunc()
	start := end.Add(-window)
	snap := s.sampler.hist.snapshot(start.Add(-s.cfg.SampleInterval))
	if len(snap.Times) < 2 {
		cv.Note = fmt.Sprintf("Collecting: the dashboard samples every %s; lines appear after two samples.", s.cfg.SampleInterval)
	}
	if len(snap.Times) > 1 && snap.Times[0].After(start) {
		// Less history than the window: spread what there is.
		start = snap.Times[0]
		cv.Partial = true
	}
	cv.Span = end.Sub(start)
	line := func(key, name string, useMax bool) chartLine {
		vals := snap.Series[key]
		if vals == nil {
			vals = nanSeries(len(snap.Times))
		}
		return chartLine{Key: key, Name: name, Vals: vals, Max: useMax}
	}
	throughput := renderChart("throughput", "Throughput", unitRate, snap.Times, []chartLine{
		line(seriesPublished, "published", false),
		line(seriesProcessed, "processed", false),
		line(seriesFailed, "failed", false),
		line(seriesDeadLettered, "dead-lettered", false),
	}, start, end)
	throughput.Note = "Published: tasks stored in the task streams (a delayed task counts when enqueued and again when released). " +
		"Processed and failed: handler runs counted in the live workers' presence records (unknown while tasks are acknowledged by workers without one). Dead-lettered: entries stored in " + s.cfg.DeadLetterStream + "."
	if s.cfg.DisableWorkers {
		throughput.Note += " Worker presence is disabled here, so processed and failed are unknown."
	}
	cv.Charts = append(cv.Charts, throughput)

	var waits, backlog []chartLine
	for _, name := range seriesNames(snap, prefixOldest) {
		waits = append(waits, line(prefixOldest+name, name, true))
	}
	if s.cfg.Outbox != nil {
		waits = append(waits, line(seriesOutboxLag, "outbox lag", true))
	}
	latency := renderChart("latency", "Enqueue-to-start latency", unitLatency, snap.Times, []chartLine{
		line(seriesWaitP50, "p50", true),
		line(seriesWaitP99, "p99", true),
	}, start, end)
	latency.Note = "p50 and p99 of the time from enqueue (when the task was stored, or when a delayed task became due) to its handler's start, " +
		"for first deliveries (not retries or replays), merged from the live workers' presence records in buckets from 1ms to 5m (a p99 above 5m reads 5m). " +
		"A point exists only when tasks started between two samples, so an idle period is a gap, not a zero. Prometheus has the same as jetworker_task_wait_seconds."
	if s.cfg.DisableWorkers {
		latency.Note += " Worker presence is disabled here, so it is unknown."
	}
	cv.Charts = append(cv.Charts, latency)

	wait := renderChart("wait", "Oldest waiting task", unitSeconds, snap.Times, waits, start, end)
	wait.Note = "How long the oldest task each consumer has not yet delivered has waited: an upper bound on the latency of what is still queued."
	if len(waits) == 0 && cv.Note == "" {
		wait.Empty = "No consumers yet."
	}
	cv.Charts = append(cv.Charts, wait)

	for _, name := range seriesNames(snap, prefixPending) {
		backlog = append(backlog, line(prefixPending+name, name, true))
	}
	bl := renderChart("backlog", "Backlog", unitCount, snap.Times, backlog, start, end)
	bl.Note = "Tasks each consumer has not yet delivered (its pending count)."
	if len(backlog) == 0 && cv.Note == "" {
		bl.Empty = "No consumers yet."
	}
	cv.Charts = append(cv.Charts, bl)

	if s.cfg.Outbox != nil {
		ob := renderChart("outbox", "Outbox", unitCount, snap.Times, []chartLine{
			line(seriesOutboxRows, "pending rows", true),
			line(seriesOutboxDead, "dead rows", true),
		}, start, end)
		ob.Note = "Rows not yet published (due or delayed), and rows moved aside because the server refused them. The relay's lag is on the waiting chart."
		cv.Charts = append(cv.Charts, ob)
	}

	return cv
}

func nanSeries(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// chartsJSON is GET /api/charts: the sampled history, oldest first. A
// point is null where the series had no value (the state could not be
// read, or a rate had no earlier sample).
type chartsJSON struct {
	Sampling   bool         `json:"sampling"`
	IntervalNS int64        `json:"interval_ns"`
	WindowNS   int64        `json:"window_ns"`
	Times      []time.Time  `json:"times"`
	Series     []seriesJSON `json:"series"`
}

type seriesJSON struct {
	Name   string     `json:"name"`
	Unit   string     `json:"unit"`
	Points []*float64 `json:"points"`
}

// seriesUnit names the unit of a history series.
func seriesUnit(name string) string {
	switch {
	case name == seriesOutboxLag, name == seriesWaitP50, name == seriesWaitP99, strings.HasPrefix(name, prefixOldest):
		return "seconds"
	case name == seriesOutboxRows, name == seriesOutboxDead, strings.HasPrefix(name, prefixPending):
		return "count"
	}
	return "per_second"
}

func (s *Server) chartsJSON(window time.Duration) chartsJSON {
	out := chartsJSON{Sampling: s.sampling.Load(), IntervalNS: int64(s.cfg.SampleInterval), WindowNS: int64(window), Times: []time.Time{}, Series: []seriesJSON{}}
	if s.sampler == nil {
		return out
	}
	snap := s.sampler.hist.snapshot(s.cfg.NowFunc().Add(-window))
	out.Times = snap.Times
	names := make([]string, 0, len(snap.Series))
	for name := range snap.Series {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		sj := seriesJSON{Name: name, Unit: seriesUnit(name), Points: make([]*float64, len(snap.Times))}
		for i, v := range snap.Series[name] {
			if !math.IsNaN(v) {
				sj.Points[i] = &v
			}
		}
		out.Series = append(out.Series, sj)
	}
	return out
}
