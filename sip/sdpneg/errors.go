package sdpneg

import "errors"

var (
	// ErrSyntax wraps anything the SDP parser rejects.
	ErrSyntax = errors.New("sdpneg: unparsable SDP")
	// ErrNoAudio means the description has no m=audio line.
	ErrNoAudio = errors.New("sdpneg: no audio m-line")
	// ErrNoConnection means the audio stream has no c= line at media or session level.
	ErrNoConnection = errors.New("sdpneg: no connection address (c=)")
	// ErrBadAddress means a c= or configured address is not a usable IP literal.
	ErrBadAddress = errors.New("sdpneg: bad connection address")
	// ErrBadPort means an m= port is out of range or the audio line lists no formats.
	ErrBadPort = errors.New("sdpneg: bad media port")
	// ErrUnknownCodec is returned by ParseCodecList for a name it does not know.
	ErrUnknownCodec = errors.New("sdpneg: unknown codec")
	// ErrNoCommonCodec means offer and answer share no audio codec; a UAS maps
	// it to 488 Not Acceptable Here.
	ErrNoCommonCodec = errors.New("sdpneg: no common codec")
	// ErrUnsupportedProto means the audio stream is not plain RTP/AVP (e.g.
	// SRTP); also a 488.
	ErrUnsupportedProto = errors.New("sdpneg: unsupported media transport")
	// ErrStreamRejected means the answer set the audio port to 0.
	ErrStreamRejected = errors.New("sdpneg: audio stream rejected (port 0)")
	// ErrInvalidDescription means a Description handed to Build is unusable.
	ErrInvalidDescription = errors.New("sdpneg: invalid description")
)
