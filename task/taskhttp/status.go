package taskhttp

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/jetworker/jetworker/internal/payload"
	"github.com/jetworker/jetworker/task"
)

// Result encodings in [Status].ResultEncoding.
const (
	// EncodingJSON: the result is JSON and Status.Result is that JSON.
	EncodingJSON = payload.EncodingJSON
	// EncodingText: the result is UTF-8 text, not JSON; Status.Result is
	// it as a JSON string.
	EncodingText = payload.EncodingText
	// EncodingBase64: the result is binary; Status.Result is a JSON
	// string holding its standard, padded base64.
	EncodingBase64 = payload.EncodingBase64
)

// Status is a task's record as the handler shows it: the body of GET
// {prefix}/{id} and the data of each event of GET {prefix}/{id}/events.
type Status struct {
	// ID is the task's ID.
	ID string `json:"id"`
	// Subject is the task's subject (its type).
	Subject string `json:"subject"`
	// State is where the task is: scheduled, pending, active, retrying,
	// succeeded, failed or cancelled (the last three are final).
	State task.State `json:"state"`
	// Attempt is the delivery the state belongs to, from 1 (0 before the
	// first); MaxAttempts is the task's own maximum, when it has one.
	Attempt     int `json:"attempt"`
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Progress is what the running task last reported.
	Progress *task.Progress `json:"progress,omitempty"`
	// Result is what the task set with jetworker.SetResult, present once
	// it has succeeded: the result itself when it is JSON, otherwise a
	// JSON string, as ResultEncoding says.
	Result         json.RawMessage `json:"result,omitempty"`
	ResultEncoding string          `json:"result_encoding,omitempty"`
	// LastError is the latest failed attempt's error (or why it was
	// cancelled).
	LastError string `json:"last_error,omitempty"`
	// CancelRequested is set once a cancel was asked for; the task ends
	// cancelled unless it finishes first.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// RunAt is when a scheduled task is due.
	RunAt time.Time `json:"run_at,omitzero"`
	// Created and Updated are when the record was first and last written.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// History lists the task's transitions, oldest first.
	History []task.Transition `json:"history"`
	// Links are the task's URLs.
	Links Links `json:"links"`
}

// Links are a task's URLs, relative to the server: Self takes GET (the
// status) and DELETE (cancel), Events the event stream.
type Links struct {
	Self   string `json:"self"`
	Events string `json:"events"`
}

// Accepted is the body of a 202 Accepted answer to a POST, and of a 303
// See Other answer to a POST of an ID that exists (with that task's state).
type Accepted struct {
	ID    string     `json:"id"`
	State task.State `json:"state"`
	Links Links      `json:"links"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	// State is the task's state, in a 409 Conflict answer to a DELETE of
	// a finished task.
	State task.State `json:"state,omitempty"`
}

// ResultBytes returns the result as the task set it, decoding
// ResultEncoding. It returns nil when there is no result.
func (s Status) ResultBytes() ([]byte, error) {
	switch s.ResultEncoding {
	case "":
		return nil, nil
	case EncodingJSON:
		return []byte(s.Result), nil
	case EncodingText, EncodingBase64:
		var str string
		if err := json.Unmarshal(s.Result, &str); err != nil {
			return nil, fmt.Errorf("taskhttp: result of %q: %w", s.ID, err)
		}
		if s.ResultEncoding == EncodingText {
			return []byte(str), nil
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil, fmt.Errorf("taskhttp: result of %q: %w", s.ID, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("taskhttp: result of %q: unknown encoding %q", s.ID, s.ResultEncoding)
}

// links returns the URLs of task id under prefix.
func links(prefix, id string) Links {
	self := prefix + "/" + url.PathEscape(id)
	return Links{Self: self, Events: self + "/events"}
}

// newStatus renders a record.
func newStatus(prefix string, info task.Info) Status {
	st := Status{
		ID: info.ID, Subject: info.Subject, State: info.State, Attempt: info.Attempt, MaxAttempts: info.MaxAttempts,
		Progress: info.Progress, LastError: info.LastError, CancelRequested: info.CancelRequested,
		RunAt: info.RunAt, Created: info.Created, Updated: info.Updated, History: info.History,
		Links: links(prefix, info.ID),
	}
	if st.History == nil {
		st.History = []task.Transition{}
	}
	st.Result, st.ResultEncoding = encodeResult(info.Result)
	return st
}

// encodeResult picks a result's encoding: JSON as it is, UTF-8 text as a
// JSON string, anything else as a base64 JSON string; none for no result.
func encodeResult(r []byte) (json.RawMessage, string) { return payload.View(r) }
