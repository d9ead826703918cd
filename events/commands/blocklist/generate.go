//go:build ignore

// generate.go builds common-passwords.txt.gz from a ranked password list read
// on standard input (one password a line, most common first): it lowercases
// each entry (the lookup lowercases the password), drops those shorter than
// -min characters (the length rule refuses them before the list is asked),
// keeps the first occurrence of each, stops after -n entries, and writes
// them sorted, one a line, gzip-compressed, to standard output. Run it
// through generate.sh, which fetches and checks the source.
package main

import (
	"bufio"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

func main() {
	n := flag.Int("n", 100000, "entries to keep")
	minRunes := flag.Int("min", 8, "drop entries shorter than this many characters")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *n, *minRunes); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, n, minRunes int) error {
	seen := make(map[string]bool, n)
	var list []string
	rank := 0
	sc := bufio.NewScanner(in)
	for sc.Scan() && len(list) < n {
		rank++
		p := strings.ToLower(strings.TrimRight(sc.Text(), "\r"))
		switch {
		case !utf8.ValidString(p), strings.ContainsAny(p, "\n\x00"):
			return fmt.Errorf("line %d is not a usable password", rank)
		case utf8.RuneCountInString(p) < minRunes, seen[p]:
			continue
		}
		seen[p] = true
		list = append(list, p)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(list) < n {
		return fmt.Errorf("the source holds only %d usable entries, %d wanted", len(list), n)
	}
	slices.Sort(list)
	zw, err := gzip.NewWriterLevel(out, gzip.BestCompression) // no name, no time: reproducible
	if err != nil {
		return err
	}
	for _, p := range list {
		if _, err := io.WriteString(zw, p+"\n"); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "generate: %d entries of at least %d characters, from the source's %d most common\n", len(list), minRunes, rank)
	return nil
}
