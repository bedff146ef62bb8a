package ladder

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// NumbersFile is the file in a capture folder that keeps the calls'
// numbers: one line per call, "<number>\t<Call-ID>", in the order the
// numbers were given.
const NumbersFile = "calls.tsv"

// Number gives every INVITE call of calls its number for good. Numbers
// already given are read from path (a call is known by any of its
// Call-IDs); a new call gets the next number after the highest ever given,
// in the order calls started. With save, new numbers are appended to path,
// so the numbers of a live lab never shift: not when capture files rotate
// away the oldest calls, not when pings and registrations come and go
// (those get no number: N is 0). Without save (a copied folder, a fixture)
// path is only read, and may be missing.
func Number(calls []*Call, path string, save bool) error {
	known := map[string]int{}
	max := 0
	f, err := os.Open(path)
	switch {
	case err == nil:
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			num, id, ok := strings.Cut(sc.Text(), "\t")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 1 {
				continue // a torn or hand-edited line: skip it
			}
			known[id] = n
			max = maxInt(max, n)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("ladder: read %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("ladder: %w", err)
	}
	var fresh []string
	for _, c := range calls {
		c.N = 0
		if !c.IsInvite() {
			continue
		}
		for _, id := range c.CallIDs {
			if n, ok := known[id]; ok {
				c.N = n
				break
			}
		}
		if c.N == 0 {
			max++
			c.N = max
			fresh = append(fresh, fmt.Sprintf("%d\t%s\n", c.N, c.ID))
			for _, id := range c.CallIDs {
				known[id] = c.N
			}
		}
	}
	if !save || len(fresh) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("ladder: %w", err)
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("ladder: %w", err)
	}
	_, err = out.WriteString(strings.Join(fresh, ""))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ladder: write %s: %w", path, err)
	}
	return nil
}
