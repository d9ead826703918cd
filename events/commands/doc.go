// Package commands is the write side of Infracast Auth. It turns a request into
// a domain command, decides it against the aggregate's state as the read models
// hold it, appends the resulting events with optimistic concurrency on the
// aggregate's subject (on a conflict: catch up, decide again, retry), and waits
// until the local read models show the write, so the caller reads its own writes.
//
// Password hashing, sealing and secret generation happen here, before a
// command reaches the domain; no secret leaves this package in plain text
// except the ones handed back to the caller once (a new refresh token).
package commands
