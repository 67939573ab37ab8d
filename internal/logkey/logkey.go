// Package logkey holds the fixed set of structured log keys jetworker's
// packages use, so the same fact always has the same key.
package logkey

// Log attribute keys.
const (
	Component = "component"
	Subject   = "subject"
	Stream    = "stream"
	Consumer  = "consumer"
	Seq       = "seq"
	Delivered = "delivered"
	TaskID    = "task_id"
	Task      = "task" // a task's Ref, <stream>/<seq>
	Schedule  = "schedule"
	Slot      = "slot"
	Delay     = "delay"
	Duration  = "duration"
	Err       = "err"
	Cause     = "cause" // the error that led to the one in err
	Stack     = "stack"
	Leader    = "leader"
	Addr      = "addr"
	Path      = "path"
)
