package guard

// maxUserAgentScan is how much of a User-Agent is searched for scanner
// patterns: tools put their name first, and an attacker-controlled header
// of many kilobytes must not cost much per request.
const maxUserAgentScan = 512

// scanner returns the pattern (lower case) found earliest in ua,
// ignoring ASCII case, or "". One pass over ua: only positions whose byte
// starts some pattern are compared, so a dozen patterns cost about what one
// does.
func (p *policy) scanner(ua string) string {
	if len(ua) > maxUserAgentScan {
		ua = ua[:maxUserAgentScan]
	}
	if len(p.scanners) == 0 {
		return ""
	}
	for i := 0; i < len(ua); i++ {
		for _, pat := range p.byFirst[toLower(ua[i])] {
			if hasPrefixFold(ua[i:], pat) {
				return pat
			}
		}
	}
	return ""
}

// indexScanners fills byFirst from scanners.
func (p *policy) indexScanners() {
	for _, s := range p.scanners {
		p.byFirst[s[0]] = append(p.byFirst[s[0]], s)
	}
}

func hasPrefixFold(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for j := 0; j < len(lower); j++ {
		if toLower(s[j]) != lower[j] {
			return false
		}
	}
	return true
}

// containsFold reports whether lower (already lower case) occurs in s,
// ignoring ASCII case, without allocating (strings.ToLower would copy
// every phone's User-Agent on every request). scanner is the indexed
// form of it for a list of patterns.
func containsFold(s, lower string) bool {
	n := len(lower)
	if n == 0 {
		return false // compile refuses empty patterns; never match all
	}
	for i := 0; i+n <= len(s); i++ {
		if hasPrefixFold(s[i:], lower) {
			return true
		}
	}
	return false
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
