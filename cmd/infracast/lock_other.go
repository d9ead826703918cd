//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package main

import "os"

// tryLock: no file lock on this platform; commands run side by side may
// refresh with the same refresh token (with rotation, the service then ends
// the session).
func tryLock(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) error { return nil }

// syncDir: a folder cannot be synced on this platform.
func syncDir(string) error { return nil }
