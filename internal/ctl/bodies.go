package ctl

// The request and reply bodies every daemon's control API shares, so the
// verbs read the same on each: `<daemon> set NAME VALUE` is POST /set with
// a SetRequest, `<daemon> unblock IP` is POST /unblock with an
// UnblockRequest.

// SetRequest changes one setting; the value "default" is the daemon's
// startup value.
type SetRequest struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// UnblockRequest lifts a guard's block of one source address.
type UnblockRequest struct {
	Source string `json:"source"`
}

// UnblockResult says whether the source was blocked (and now is not).
type UnblockResult struct {
	Source    string `json:"source"`
	Unblocked bool   `json:"unblocked"`
}

// String is the result as every daemon's unblock verb prints it.
func (r UnblockResult) String() string {
	if r.Unblocked {
		return r.Source + " unblocked"
	}
	return r.Source + " was not blocked"
}
