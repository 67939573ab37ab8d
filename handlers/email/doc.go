// Package email provides a [jetworker.Handler] that sends the email
// described by a task's JSON payload (a [Message]) through an SMTP
// server, using github.com/wneessen/go-mail.
//
// # Payload
//
//	{
//	  "from":     "Shop <shop@example.com>",   optional, defaults to Config.From
//	  "to":       ["ada@example.com"],
//	  "cc":       ["ops@example.com"],           optional
//	  "bcc":      ["audit@example.com"],         optional, never shown in headers
//	  "reply_to": "support@example.com",         optional
//	  "subject":  "Your order",
//	  "text":     "plain text body",             text, html or both
//	  "html":     "<p>HTML body</p>"
//	}
//
// Addresses follow RFC 5322 ("name <addr>" or "addr"). The payload is
// decoded strictly: an unknown key is an error, so a misspelt "bc" does not
// silently drop recipients. With both text and html, the email is a
// multipart/alternative message.
//
// # Outcome
//
//	sent (the server accepted the DATA)        nil: the task is acknowledged
//	payload not JSON, unknown key, invalid      jetworker.Permanent, before any
//	address, no recipient, no body, no sender   connection is made
//	SMTP reply 5xx (e.g. 550 no such user)      jetworker.Permanent
//	SMTP reply 4xx (e.g. 451, 452)              plain error: retried with backoff
//	connection, TLS or timeout failure          plain error: retried with backoff
//
// A failure to close the connection after the server accepted the
// message is ignored, so an accepted email is not sent twice because QUIT
// failed. A 5xx reply to AUTH (535, wrong credentials) is permanent too:
// the task is dead-lettered and can be replayed once the configuration is
// fixed.
//
// # Duplicates
//
// The consumer delivers a task at least once: if the worker dies after the
// server accepted the email but before the task was acknowledged, the task
// runs again and the email is sent again. To let receiving systems and
// people recognise such a duplicate, [Handler.Handle] derives the email's
// Message-ID from the task ID (or, without one, from the task's stream and
// sequence), so every delivery of a task carries the same Message-ID.
// [Handler.Send] has no task and uses a random Message-ID.
//
// Each send uses its own connection, so a Handler is safe for concurrent
// use; bound the number of parallel connections with the consumer's
// concurrency or handlers.ConcurrencyLimit.
package email
