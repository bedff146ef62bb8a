package sipalg

import (
	"bytes"
	"net/netip"
	"strings"
)

// Field says where in a SIP message an address occurs.
type Field string

// Fields an ALG cares about. Everything else is FieldOther.
const (
	FieldStartLine     Field = "start-line" // Request-URI of a request
	FieldVia           Field = "via"
	FieldContact       Field = "contact"
	FieldCallID        Field = "call-id"
	FieldFrom          Field = "from"
	FieldTo            Field = "to"
	FieldOther         Field = "other-header"
	FieldSDPOrigin     Field = "sdp-o"
	FieldSDPConnection Field = "sdp-c"
	FieldSDPOther      Field = "sdp-other"
)

// Occurrence is one IPv4 address of the LAN found in a message, with the
// ":port" that follows it, if any.
type Occurrence struct {
	Field Field
	Addr  netip.Addr
	// Start and End delimit the address text; PortEnd is End when there is
	// no ":port" after it, else the end of the digits.
	Start, End, PortEnd int
	Port                uint16 // 0 when absent
}

// HasPort reports whether a ":port" follows the address.
func (o Occurrence) HasPort() bool { return o.PortEnd > o.End }

// Message is a SIP message split into what an ALG looks at. It only
// indexes the original bytes; it never re-serialises them, so whatever the
// ALG does not touch stays byte for byte.
type Message struct {
	Raw []byte
	// HeaderEnd is the offset of the blank line's first byte, BodyStart the
	// first body byte; both len(Raw) when the message has no blank line.
	HeaderEnd, BodyStart int
	// Occurrences of LAN addresses, in message order.
	Occurrences []Occurrence
	// IsRequest is false for a response ("SIP/2.0 200 OK").
	IsRequest bool
	// Method is the request method or, for a response, "".
	Method string
}

// LooksLikeSIP reports whether b starts like a SIP request or response. The
// ALG only touches what matches: anything else on port 5060 passes as is.
func LooksLikeSIP(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if bytes.HasPrefix(line, []byte("SIP/2.0 ")) {
		return true
	}
	sp := bytes.LastIndexByte(line, ' ')
	return sp > 0 && bytes.Equal(line[sp+1:], []byte("SIP/2.0")) && bytes.IndexByte(line, ' ') < sp
}

// ParseMessage indexes msg and finds the addresses inside lan.
func ParseMessage(msg []byte, lan netip.Prefix) *Message {
	m := &Message{Raw: msg, HeaderEnd: len(msg), BodyStart: len(msg)}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		m.HeaderEnd, m.BodyStart = i+2, i+4
	} else if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		// Bare LF: RFC 3261 §7 wants CRLF, but real stacks send LF.
		m.HeaderEnd, m.BodyStart = i+1, i+2
	}
	first := true
	field := FieldOther
	forEachLine(msg[:m.HeaderEnd], 0, func(start, end int) {
		line := msg[start:end]
		switch {
		case first:
			first = false
			field = FieldOther
			if !bytes.HasPrefix(line, []byte("SIP/2.0")) {
				m.IsRequest = true
				m.Method, _, _ = strings.Cut(string(line), " ")
				field = FieldStartLine
			}
		case len(line) > 0 && (line[0] == ' ' || line[0] == '\t'):
			// A folded continuation keeps the previous header's field.
		default:
			name, _, _ := bytes.Cut(line, []byte(":"))
			field = headerField(strings.TrimSpace(string(name)))
		}
		m.findAddrs(start, end, field, lan)
	})
	if m.BodyStart < len(msg) {
		forEachLine(msg, m.BodyStart, func(start, end int) {
			f := FieldSDPOther
			switch {
			case bytes.HasPrefix(msg[start:end], []byte("o=")):
				f = FieldSDPOrigin
			case bytes.HasPrefix(msg[start:end], []byte("c=")):
				f = FieldSDPConnection
			}
			m.findAddrs(start, end, f, lan)
		})
	}
	return m
}

func headerField(name string) Field {
	switch strings.ToLower(name) {
	case "via", "v":
		return FieldVia
	case "contact", "m":
		return FieldContact
	case "call-id", "i":
		return FieldCallID
	case "from", "f":
		return FieldFrom
	case "to", "t":
		return FieldTo
	}
	return FieldOther
}

// forEachLine calls fn with the bounds of each line of b[from:] without its
// line ending.
func forEachLine(b []byte, from int, fn func(start, end int)) {
	for start := from; start < len(b); {
		nl := bytes.IndexByte(b[start:], '\n')
		next := len(b)
		end := len(b)
		if nl >= 0 {
			end = start + nl
			next = end + 1
		}
		if end > start && b[end-1] == '\r' {
			end--
		}
		fn(start, end)
		start = next
	}
}

// findAddrs records every dotted-quad in msg[start:end] that lies in lan.
func (m *Message) findAddrs(start, end int, field Field, lan netip.Prefix) {
	b := m.Raw
	for i := start; i < end; i++ {
		if !isDigit(b[i]) || (i > start && (isDigit(b[i-1]) || b[i-1] == '.')) {
			continue
		}
		j := i
		for j < end && (isDigit(b[j]) || b[j] == '.') {
			j++
		}
		// Trailing dots are punctuation, not part of the address.
		k := j
		for k > i && b[k-1] == '.' {
			k--
		}
		addr, err := netip.ParseAddr(string(b[i:k]))
		if err != nil || !addr.Is4() || !lan.Contains(addr) || (k < end && isAlnum(b[k])) {
			i = j
			continue
		}
		occ := Occurrence{Field: field, Addr: addr, Start: i, End: k, PortEnd: k}
		if k == j && k+1 < end && b[k] == ':' && isDigit(b[k+1]) {
			p := k + 1
			port := 0
			for p < end && isDigit(b[p]) && port <= 65535 {
				port = port*10 + int(b[p]-'0')
				p++
			}
			if port > 0 && port <= 65535 && (p == end || !isDigit(b[p])) {
				occ.Port, occ.PortEnd = uint16(port), p
			}
		}
		m.Occurrences = append(m.Occurrences, occ)
		i = occ.PortEnd
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') || c == '-' || c == '_'
}
