package main

import (
	"fmt"
	"regexp"
	"strings"
)

// usageError marks an error in the command line or the environment (exit
// 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// codeError ends a command with an exit code of its own, for an outcome
// a script tells apart (task wait: the task failed).
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }

func (e *codeError) Unwrap() error { return e.err }

// inTermsOf rewrites the validation error of a library Config in the
// words of the command line: the package prefix becomes prefix, and each
// Config field a setting sets is named by its flag. The result is a usage
// error.
func inTermsOf(err error, pkg, prefix string, fields map[string]string) error {
	if err == nil {
		return nil
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, pkg+": "); ok {
			l = prefix + rest
		}
		lines[i] = fieldName.ReplaceAllStringFunc(l, func(w string) string {
			if f, ok := fields[w]; ok {
				return f
			}
			return w
		})
	}
	return usagef("%s", strings.Join(lines, "\n"))
}

// fieldName matches a Go field name, with an index ("TaskStreams[0]").
var fieldName = regexp.MustCompile(`\b[A-Z][A-Za-z]+(\[\d+\])?`)

// Flags by the Config fields they set, for inTermsOf.
var (
	dashboardFields = map[string]string{
		"Addr": "--http-addr", "BasicAuthUser": "--http-user", "BasicAuthPassword": "--http-password",
		"BearerToken": "--http-token", "ReadOnly": "--http-read-only", "UnsafeNoAuth": "--http-unsafe-no-auth",
		"MetricsAddr": "--metrics-addr", "MetricsToken": "--metrics-token", "TaskStreams[0]": "--stream",
		"DeadLetterStream": "--dlq-stream", "DisableUI": "no --http-addr", "TaskBucket": "--task-bucket",
		"SessionKey": "--http-session-key", "SessionTTL": "--http-session-ttl",
		"SampleInterval": "--http-sample-interval", "SampleWindow": "--http-sample-window",
	}
	consumerFields = map[string]string{
		"Stream": "--stream", "Durable": "--durable", "DeadLetterStream": "--dlq-stream",
		"Concurrency": "--concurrency (or the route's concurrency)", "AckWait": "--ack-wait (or the route's ack_wait)",
		"MaxDeliver": "--max-deliver (or the route's max_deliver)", "HandlerTimeout": "--handler-timeout (or the route's timeout)",
		"ShutdownGrace": "--shutdown-grace",
	}
	outboxFields = map[string]string{
		"Schema": "--schema", "Table": "--table", "BatchSize": "--batch-size", "Concurrency": "--concurrency",
		"PollInterval": "--poll-interval", "AckTimeout": "--ack-timeout",
	}
	schedulerFields = map[string]string{"LeaseKey": "--lease-key", "LeaseTTL": "--lease-ttl", "Replicas": "--replicas"}
	taskFields      = map[string]string{"Bucket": "--task-bucket", "TTL": "--task-ttl", "Replicas": "--replicas"}
)
