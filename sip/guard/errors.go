package guard

import "errors"

// ErrInvalidConfig wraps every problem Validate, New and SetConfig report.
var ErrInvalidConfig = errors.New("guard: invalid config")
