package exercise

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Record is one exercise's progress.
type Record struct {
	Started   time.Time `json:"started,omitzero"`
	Passed    time.Time `json:"passed,omitzero"`
	Checks    int       `json:"checks"`
	HintsSeen int       `json:"hints_seen,omitempty"`
	Solved    bool      `json:"solved,omitempty"` // solve applied the documented fix
	Last      *Result   `json:"last,omitempty"`
}

// Progress is the lab's exercise state: the one exercise set up now and
// every exercise's record.
type Progress struct {
	Current   string             `json:"current,omitempty"`
	Exercises map[string]*Record `json:"exercises"`
}

// Rec returns id's record, creating it.
func (p *Progress) Rec(id string) *Record {
	if p.Exercises == nil {
		p.Exercises = map[string]*Record{}
	}
	r := p.Exercises[id]
	if r == nil {
		r = &Record{}
		p.Exercises[id] = r
	}
	return r
}

// Store keeps Progress in a JSON file in the lab's capture folder: it
// belongs to the lab (what this lab's intern did), not to the repository.
type Store struct{ Path string }

// ProgressFile is the file name in the capture folder.
const ProgressFile = "exercises.json"

// NewStore is the store of the lab rooted at repo root dir.
func NewStore(root string) Store {
	return Store{Path: filepath.Join(root, "captures", ProgressFile)}
}

// Load reads the progress; a missing file is an empty one.
func (s Store) Load() (Progress, error) {
	var p Progress
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return Progress{Exercises: map[string]*Record{}}, nil
	}
	if err != nil {
		return p, fmt.Errorf("exercise: progress: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("exercise: progress %s: %w", s.Path, err)
	}
	if p.Exercises == nil {
		p.Exercises = map[string]*Record{}
	}
	return p, nil
}

// Save writes the progress atomically.
func (s Store) Save(p Progress) error {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return fmt.Errorf("exercise: progress: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.Path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("exercise: progress: %w", err)
	}
	return os.Rename(tmp, s.Path)
}
