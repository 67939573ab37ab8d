// Package taskhttp serves tracked tasks over HTTP in the 202 Accepted
// pattern: an endpoint enqueues the work and answers at once with where to
// look, and the client polls that address, or follows it as a stream of
// events, until the task has finished.
//
//	h, err := taskhttp.New(store, pub, taskhttp.Config{Subject: "tasks.report.render", Prefix: "/reports"})
//	...
//	mux.Handle("/reports", h)
//	mux.Handle("/reports/", h)
//
// The handler reads and cancels through a [task.Store] and publishes with a
// publisher.Publisher that records into the same store
// (publisher.Config.Tasks); the workers that run the tasks need the store
// too (consumer.Config.Tasks), to record their progress and to hear cancel
// requests. Handlers report with jetworker.SetProgress and
// jetworker.SetResult.
//
// # Contract
//
// Every answer carries Cache-Control: no-store. Bodies are JSON with
// snake_case keys ([Accepted], [Status]); every error answer is
// {"error": "..."} ([ErrorBody]).
//
//	POST {prefix}              enqueue a task: the body, through Config.DecodeFunc, is its payload
//	  202 Accepted             Location: {prefix}/{id}, Retry-After, body {"id", "state", "links"}
//	  303 See Other            the ID (Config.IDFunc) names a task already: Location and body as
//	                           for 202, with that task's state; nothing is published
//	  400 Bad Request          the body is not JSON (the default decoder), or DecodeFunc or
//	                           IDFunc refused it; the error says why
//	  409 Conflict             the ID is another subject's task's, or a queued task without a
//	                           record holds its uniqueness lock
//	  413 Content Too Large    the body is over Config.MaxBody, or the payload over the server's
//	                           max payload
//	  503 Service Unavailable  NATS or the task stream is unavailable; when the publish's outcome
//	                           is unknown, Location says where the task's status will tell
//	  500                      anything else, IDFunc's empty or too long IDs among it (logged)
//
//	GET {prefix}/{id}          the task's status (Status)
//	  200 OK                   with Retry-After while the task is unfinished
//	  404 Not Found            no task has this ID (never enqueued, or its record expired)
//
//	DELETE {prefix}/{id}       cancel the task (task.Store.Cancel)
//	  202 Accepted             the cancel is done (a scheduled or pending task: state cancelled)
//	                           or requested (a running task: cancel_requested, and state
//	                           cancelled within moments); body: the status
//	  409 Conflict             the task had finished: {"error", "state"}
//	  404 Not Found            no task has this ID
//
//	GET {prefix}/{id}/events   the task's changes as a text/event-stream
//	  200 OK                   the stream described below
//	  204 No Content           a reconnect (Last-Event-ID) that saw the final event already
//	  404 Not Found            no task has this ID
//
// Other methods are answered 405 with an Allow header, other paths 404,
// all in JSON. A path's {id} is unescaped, so IDs with any characters
// work (the links escape them); IDs longer than [MaxIDLength] are 404.
//
// The handler shows and cancels only the tasks of its own subject: the
// store may hold others, which are 404 to it (and a POST of an ID another
// subject's task has is 409). A DELETE of an unknown ID writes nothing.
// It does no authentication or authorization: wrap it in middleware that
// does, and keep task IDs unguessable (the default UUIDv7s are) or check
// that the caller may see the task.
//
// # Results
//
// The result a task set is shown as it is when it is JSON
// ("result_encoding": "json"), as a JSON string when it is other UTF-8
// text ("text"), and as a base64 JSON string otherwise ("base64");
// [Status.ResultBytes] undoes it.
//
// # Races
//
// A DELETE and the task's own end race. A task that finished before the
// cancel reached its record is 409; one that finishes after the cancel was
// requested (its handler returned before it saw its context end, or
// ignored it) ends as it finished — GET shows succeeded with
// cancel_requested — and the DELETE was 202. The final state is the one
// to read.
//
// A POST's publish and a DELETE's cancel are not abandoned when the
// client goes away mid-request (they are bounded by
// Config.RequestTimeout), so no task is left with a record but no message.
//
// # Event stream
//
// GET {prefix}/{id}/events follows the record with a KV watch
// ([task.Store.Follow]), not by polling. It sends the current status at
// once, so a client that connects late starts from the present, then one
// event per change:
//
//	event: state
//	id: 1764625201123456789
//	data: {"id":"...","state":"active","attempt":1,"progress":{"percent":40,...},...}
//
// and ends after the final state (succeeded, failed or cancelled); a
// client that connects after the end gets that one event. The id is the
// record's update time in Unix nanoseconds. While nothing changes, a
// comment line (": keep-alive") is sent every Config.Heartbeat so proxies
// keep the connection open. If the watch fails mid-stream, an "event:
// error" with an [ErrorBody] ends the stream; reconnecting resumes from
// the current status.
//
// A browser's EventSource reconnects whenever a stream ends; the
// reconnect carries Last-Event-ID, and when that is the final event's id
// the answer is 204, which makes EventSource stop. Clients should still
// close the stream on a final state.
//
// When the client goes away, the request's context ends, the watch is
// stopped and the handler returns: nothing is left running for it. A
// stream is exempt from the server's WriteTimeout: each write has a
// deadline of its own instead, twice Config.Heartbeat, so a client that
// stops reading without going away ends its stream too.
package taskhttp
