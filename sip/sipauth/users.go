package sipauth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// User is one provisioned account.
type User struct {
	Name     string
	Password string
	// Blocked users can prove who they are but are refused by policy (403):
	// the lab's "right password, still Forbidden" lesson.
	Blocked bool
}

// Users is a user table. It is never modified after it is built, so it is
// safe for concurrent use without locks.
type Users struct {
	byName map[string]User
	names  []string // file order, for stable listings
}

// ParseUsers reads the users file format:
//
//	# comment
//	alice  secret1
//	bob    secret2   blocked
//
// One account per line: a user name, a password, and optionally the word
// "blocked". Fields are separated by spaces or tabs, so neither names nor
// passwords can contain whitespace. A line whose first non-blank character
// is '#' is a comment; '#' elsewhere is part of the field (passwords may
// contain it). Blank lines are ignored. A malformed line or a name listed
// twice is an error naming the line.
func ParseUsers(r io.Reader) (*Users, error) {
	u := &Users{byName: map[string]User{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	firstLine := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("%w: line %d: want \"user password [blocked]\", got %d fields", ErrUsersFile, n, len(f))
		}
		user := User{Name: f[0], Password: f[1]}
		if len(f) == 3 {
			if !strings.EqualFold(f[2], "blocked") {
				return nil, fmt.Errorf("%w: line %d: third field must be \"blocked\", got %q", ErrUsersFile, n, f[2])
			}
			user.Blocked = true
		}
		if err := checkName(user.Name); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrUsersFile, n, err)
		}
		if prev, dup := firstLine[user.Name]; dup {
			return nil, fmt.Errorf("%w: line %d: %q already defined on line %d", ErrDuplicateUser, n, user.Name, prev)
		}
		firstLine[user.Name] = n
		u.byName[user.Name] = user
		u.names = append(u.names, user.Name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsersFile, err)
	}
	return u, nil
}

// checkName keeps names to what can appear both as the user part of a SIP
// URI and inside a quoted digest username without escaping.
func checkName(name string) error {
	for _, c := range []byte(name) {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' || c == '@' || c == ':' || c == ';' || c == ',' || c == '<' || c == '>' {
			return fmt.Errorf("user name %q: character %q not allowed", name, c)
		}
	}
	return nil
}

// LoadUsers reads a users file from disk (see ParseUsers for the format).
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sipauth: users file: %w", err)
	}
	defer f.Close()
	u, err := ParseUsers(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// NewUsers builds a table from a list, with the same rules as ParseUsers.
func NewUsers(list ...User) (*Users, error) {
	u := &Users{byName: make(map[string]User, len(list))}
	for _, user := range list {
		if err := checkName(user.Name); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUsersFile, err)
		}
		if user.Password == "" {
			return nil, fmt.Errorf("%w: user %q has an empty password", ErrUsersFile, user.Name)
		}
		if _, dup := u.byName[user.Name]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateUser, user.Name)
		}
		u.byName[user.Name] = user
		u.names = append(u.names, user.Name)
	}
	return u, nil
}

// Lookup returns the user called name. A nil table knows nobody.
func (u *Users) Lookup(name string) (User, bool) {
	if u == nil {
		return User{}, false
	}
	user, ok := u.byName[name]
	return user, ok
}

// Names lists the user names in the order they were defined.
func (u *Users) Names() []string {
	if u == nil {
		return nil
	}
	return append([]string(nil), u.names...)
}

// Len is the number of users.
func (u *Users) Len() int {
	if u == nil {
		return 0
	}
	return len(u.names)
}
