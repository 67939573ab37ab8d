// Package webhook provides a [jetworker.Handler] that delivers each task
// to an HTTP endpoint with a signed POST, and [Verify], which the
// receiving side uses to check the signature.
//
// # Request
//
// The request body is the task's payload, unchanged. The headers are:
//
//	Content-Type          the task's Content-Type header (any case) if set,
//	                      else Config.ContentType (application/json)
//	User-Agent            jetworker-webhook
//	Jetworker-Task-Id     Task.ID (omitted when empty)
//	Jetworker-Subject     Task.Subject
//	Jetworker-Delivered   Task.Delivered: 1 on the first attempt
//	Jetworker-Stream      Task.Stream (omitted when empty)
//	Jetworker-Sequence    Task.Sequence (omitted when 0)
//	Jetworker-Signature   t=<unix seconds>,v1=<hex HMAC-SHA256>
//	Jetworker-Header-<K>  every task header K, each of its values
//	                      (the prefix is Config.HeaderPrefix)
//	traceparent,          copied unprefixed too, so the receiver can
//	tracestate            continue the W3C trace
//
// A task header whose name or value is not a valid HTTP header fails the
// task as [jetworker.Permanent], since retrying cannot fix it.
// The receiver can deduplicate redeliveries by Jetworker-Task-Id, or by
// Jetworker-Stream with Jetworker-Sequence.
//
// # Signature
//
// Like Stripe's and GitHub's webhooks, the signature is an HMAC-SHA256,
// keyed by Config.Secret, of the Unix timestamp in seconds, a dot, and
// the body: "1700000000.{...}". The header carries both:
// "t=1700000000,v1=5257a8…". Signing the timestamp lets [Verify] refuse
// replayed requests older than a tolerance. [Sign] computes the header.
//
// # Outcome
//
// The response status decides the task's fate:
//
//	2xx                          nil: the task is acknowledged
//	429, 503 with Retry-After    jetworker.RetryAfter with the delay given
//	                             (seconds or an HTTP date)
//	408, 429, 5xx otherwise      plain error: retried with the consumer's backoff
//	network error, timeout       plain error: retried with the consumer's backoff
//	other 4xx, 1xx, 3xx          jetworker.Permanent with the status and up to
//	                             Config.MaxErrorBody bytes of the response body
//
// Redirects are not followed by the default client: a webhook URL that
// redirects is a misconfiguration, and following a 301 or 302 would turn
// the POST into a GET.
package webhook
