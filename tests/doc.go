// Package tests holds the end-to-end tests of Infracast Auth: the real service
// over real HTTP on loopback against a real embedded nats-server (JetStream on a
// temporary store directory). harness.go starts instances for them.
package tests
