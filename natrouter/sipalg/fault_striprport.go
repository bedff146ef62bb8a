package sipalg

import (
	"bytes"
	"net/netip"
	"strings"
)

func init() {
	registerFault(Fault{
		Name:    "strip-rport",
		Summary: "removes ;rport from the Via, so the server answers to the port written in the Via instead of the port the request came from",
		Symptom: "the server no longer returns rport= in responses (the phone cannot learn its mapped port); responses go to the Via port, which only works while it equals the mapped port: behind a port-changing NAT (symmetric preset) or with contact-not-via/wrong-port, responses are lost and registration times out",
		Trace:   "the phone's Via has ;rport on the LAN side and not on the WAN side; the server's response Via has received= but no rport=",
		order:   20,
		raw:     stripRport,
	})
}

// stripRport removes every rport parameter from Via header lines.
func stripRport(msg []byte) []byte {
	m := ParseMessage(msg, netip.Prefix{})
	var out bytes.Buffer
	last := 0
	forEachLine(msg[:m.HeaderEnd], 0, func(start, end int) {
		name, _, ok := bytes.Cut(msg[start:end], []byte(":"))
		if !ok || headerField(strings.TrimSpace(string(name))) != FieldVia {
			return
		}
		for i := start; i < end; i++ {
			if msg[i] != ';' {
				continue
			}
			j := i + 1
			for j < end && (msg[j] == ' ' || msg[j] == '\t') {
				j++
			}
			if end-j < 5 || !strings.EqualFold(string(msg[j:j+5]), "rport") {
				continue
			}
			k := j + 5
			if k < end && msg[k] != ';' && msg[k] != '=' && msg[k] != ',' && msg[k] != ' ' {
				continue // a parameter that only starts with "rport"
			}
			if k < end && msg[k] == '=' {
				for k < end && msg[k] != ';' && msg[k] != ',' && msg[k] != ' ' {
					k++
				}
			}
			out.Write(msg[last:i])
			last = k
			i = k - 1
		}
	})
	if last == 0 {
		return msg
	}
	out.Write(msg[last:])
	return out.Bytes()
}
