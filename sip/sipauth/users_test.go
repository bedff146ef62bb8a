package sipauth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseUsers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []User
		wantErr error
		errText string
	}{
		{
			name: "comments blanks and blocked",
			in:   "# lab users\n\nalice secret1\n  bob\tp#ss  blocked\n   # indented comment\ncarol x BLOCKED\n",
			want: []User{{"alice", "secret1", false}, {"bob", "p#ss", true}, {"carol", "x", true}},
		},
		{name: "empty file", in: "", want: nil},
		{name: "one field", in: "alice secret\nbob\n", wantErr: ErrUsersFile, errText: "line 2"},
		{name: "four fields", in: "alice secret blocked extra\n", wantErr: ErrUsersFile, errText: "line 1"},
		{name: "bad flag", in: "alice secret disabled\n", wantErr: ErrUsersFile, errText: `"disabled"`},
		{name: "duplicate", in: "alice a\n#x\nalice b\n", wantErr: ErrDuplicateUser, errText: "line 3: \"alice\" already defined on line 1"},
		{name: "bad name", in: "al@ce secret\n", wantErr: ErrUsersFile, errText: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUsers(strings.NewReader(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Len() != len(tt.want) {
				t.Fatalf("got %d users, want %d", u.Len(), len(tt.want))
			}
			for i, w := range tt.want {
				got, ok := u.Lookup(w.Name)
				if !ok || got != w {
					t.Errorf("Lookup(%q) = %+v, %v; want %+v", w.Name, got, ok, w)
				}
				if u.Names()[i] != w.Name {
					t.Errorf("Names()[%d] = %q, want %q", i, u.Names()[i], w.Name)
				}
			}
			if _, ok := u.Lookup("nobody"); ok {
				t.Error("Lookup(nobody) found a user")
			}
		})
	}
}

func TestLoadUsers(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users")
	if err := os.WriteFile(p, []byte("alice secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := u.Lookup("alice"); !ok || got.Password != "secret" {
		t.Fatalf("Lookup(alice) = %+v, %v", got, ok)
	}
	if _, err := LoadUsers(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
	if err := os.WriteFile(p, []byte("alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadUsers(p); !errors.Is(err, ErrUsersFile) || !strings.Contains(err.Error(), p) {
		t.Fatalf("bad file: err = %v, want ErrUsersFile naming the path", err)
	}
}

func TestNewUsers(t *testing.T) {
	if _, err := NewUsers(User{Name: "a", Password: "x"}, User{Name: "a", Password: "y"}); !errors.Is(err, ErrDuplicateUser) {
		t.Fatalf("duplicate: err = %v", err)
	}
	if _, err := NewUsers(User{Name: "a"}); !errors.Is(err, ErrUsersFile) {
		t.Fatalf("empty password: err = %v", err)
	}
	var nilUsers *Users
	if _, ok := nilUsers.Lookup("a"); ok || nilUsers.Len() != 0 {
		t.Fatal("nil table must know nobody")
	}
}
