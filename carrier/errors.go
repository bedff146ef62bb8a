package carrier

import "errors"

var (
	// ErrConfig wraps every configuration mistake.
	ErrConfig = errors.New("carrier: config")
	// ErrNotE164 is a number that is not "+" and 8-15 digits.
	ErrNotE164 = errors.New("carrier: not an E.164 number")
)
