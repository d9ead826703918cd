package natstest

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Listing names every file and folder under dir with its size, in walk
// order: two listings of a store folder differ when anything in it was
// deleted, added or rewritten to another size (a damaged store must be left
// as it was found).
func Listing(tb testing.TB, dir string) string {
	tb.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%d ", strings.TrimPrefix(path, dir), info.Size())
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.String()
}
