package stunturn

import (
	"encoding/binary"
	"log/slog"
	"net"
	"time"

	"github.com/pion/stun/v3"
)

// bindingRequestType is the STUN message type of a Binding request
// (RFC 5389 §6: method 0x001, class request).
const bindingRequestType = 0x0001

// stunMagicCookie sits at bytes 4-7 of every RFC 5389 message.
const stunMagicCookie = 0x2112A442

// watchConn is the server socket as pion sees it. Reading through it lets
// the server
//   - log each Binding request with the address it will answer (pion
//     answers inside its read loop and offers no hook for Binding);
//   - answer a request whose long-term credentials are wrong with 401
//     Unauthorized itself, as RFC 5389 §10.2.2 says: pion answers 400 Bad
//     Request there, which tells an intern nothing about the password.
type watchConn struct {
	net.PacketConn
	st    *state
	realm string
	key   func(username string) ([]byte, bool)
	log   *slog.Logger
}

func (c *watchConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, from, err
		}
		pkt := b[:n]
		if isBindingRequest(pkt) {
			c.st.binding(addrPortOf(from), time.Now())
		} else if isAuthenticatedRequest(pkt) && c.refuseBadCredentials(pkt, from) {
			continue
		}
		return n, from, err
	}
}

func isBindingRequest(b []byte) bool {
	return len(b) >= 20 &&
		binary.BigEndian.Uint16(b[0:2]) == bindingRequestType &&
		binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie &&
		int(binary.BigEndian.Uint16(b[2:4]))+20 == len(b)
}

// isAuthenticatedRequest is a cheap pre-filter: a STUN request (not
// Binding) — candidates for a credential check. Data (ChannelData, Send
// indications) never matches, so relayed media is not decoded here.
func isAuthenticatedRequest(b []byte) bool {
	if len(b) < 20 || binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return false
	}
	t := binary.BigEndian.Uint16(b[0:2])
	// Class bits C1 C0 are bits 8 and 4 of the type: 00 = request.
	return t&0x0110 == 0 && t != bindingRequestType
}

// refuseBadCredentials answers 401 and reports true when pkt carries
// MESSAGE-INTEGRITY that does not match a known, unblocked user of our realm.
// Requests without integrity go to pion, which challenges them (401 with
// realm and nonce) the normal way.
func (c *watchConn) refuseBadCredentials(pkt []byte, from net.Addr) bool {
	m := &stun.Message{Raw: append([]byte(nil), pkt...)}
	if m.Decode() != nil || !m.Contains(stun.AttrMessageIntegrity) {
		return false
	}
	var user stun.Username
	var realm stun.Realm
	var nonce stun.Nonce
	if user.GetFrom(m) != nil || realm.GetFrom(m) != nil || nonce.GetFrom(m) != nil {
		return false // malformed: pion's 400 Bad Request is right
	}
	key, ok := c.key(user.String())
	why := ""
	switch {
	case !ok:
		why = "unknown or blocked user"
	case realm.String() != c.realm:
		why = "realm " + realm.String() + " is not " + c.realm
	case stun.MessageIntegrity(key).Check(m) != nil:
		why = "wrong password (MESSAGE-INTEGRITY mismatch)"
	default:
		return false
	}
	c.st.authFailed(user.String(), addrString(from), m.Type.Method.String()+": "+why)
	c.log.Info("turn credentials refused", "user", user.String(), "from", addrString(from), "method", m.Type.Method.String(), "why", why)
	res, err := stun.Build(
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeUnauthorized, Reason: []byte("Unauthorized")},
		stun.NewRealm(c.realm),
		&nonce,
		stun.Fingerprint,
	)
	if err == nil {
		_, _ = c.PacketConn.WriteTo(res.Raw, from)
	}
	return true
}
