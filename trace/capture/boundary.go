package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// BoundaryFile is the file in a capture folder that marks where the lab
// was last reset (`siplab reset`): readers of the folder (ReadFiles, hence
// ladder, doctor, explain) ignore every packet captured before the time it
// holds, so what an intern did before the reset cannot be mistaken for
// what follows. Delete it to see everything again.
const BoundaryFile = "boundary"

// WriteBoundary records t as the boundary of the capture folder dir.
func WriteBoundary(dir string, t time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("capture: boundary: %w", err)
	}
	path := filepath.Join(dir, BoundaryFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(t.UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		return fmt.Errorf("capture: boundary: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("capture: boundary: %w", err)
	}
	return nil
}

// ReadBoundary returns the boundary of the capture folder dir; ok is
// false when there is none.
func ReadBoundary(dir string) (t time.Time, ok bool, err error) {
	raw, err := os.ReadFile(filepath.Join(dir, BoundaryFile))
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("capture: boundary: %w", err)
	}
	t, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(raw)))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("capture: boundary file %s: %w", filepath.Join(dir, BoundaryFile), err)
	}
	return t, true, nil
}

// cut drops the packets before t, and the SIP after t that belongs to a
// dialog begun before it (a BYE the reset sent, a retransmission still
// running): what follows the boundary is only what began after it.
func (tr *Trace) cut(t time.Time) {
	before := map[string]bool{}
	for _, p := range tr.SIP {
		if p.Time.Before(t) {
			if id := p.Header("Call-ID"); id != "" {
				before[id] = true
			}
		}
	}
	sip := tr.SIP[:0]
	for _, p := range tr.SIP {
		if !p.Time.Before(t) && !before[p.Header("Call-ID")] {
			sip = append(sip, p)
		}
	}
	rtp := tr.RTP[:0]
	for _, p := range tr.RTP {
		if !p.Time.Before(t) {
			rtp = append(rtp, p)
		}
	}
	tr.SIP, tr.RTP = sip, rtp
	tr.Boundary = t
}
