package sipauth

import "errors"

var (
	// ErrUsersFile wraps every problem found while reading a users file;
	// the message carries the line number.
	ErrUsersFile = errors.New("sipauth: bad users file")
	// ErrDuplicateUser is a user name listed twice in a users file.
	ErrDuplicateUser = errors.New("sipauth: duplicate user")
	// ErrNoRealm is a Config without a realm.
	ErrNoRealm = errors.New("sipauth: realm is required")
	// ErrNoUsers is a Config without a user table.
	ErrNoUsers = errors.New("sipauth: users are required")
	// ErrBadRealm is a realm that cannot be written inside a quoted string.
	ErrBadRealm = errors.New("sipauth: realm must not contain quotes, backslashes or control characters")
)
